# Every target does its own set-up: a fresh clone needs only `make run` or `make test`.
# `make test` runs lint, the type check, the slow (multi-process) tests and the fast tests,
# each whether or not an earlier one failed; its last lines say which passed and which
# failed, and it fails if any did.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run demo docs test test-fast test-slow lint typecheck screenshots bench bench-network bench-anchoring bench-gateway soak clean

# `make run`: a 4-validator AFBFT network on 127.0.0.1 (APIs on 8600-8603), in the
# foreground; Ctrl-C stops it cleanly and keeps its data in $(DEVNET).
DEVNET ?= medchain-devnet

$(STAMP): pyproject.toml package-lock.json
	@# ristretto255 (ring signatures) comes from the system libsodium, via pysodium
	@ldconfig -p | grep -q 'libsodium\.so' || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && apt-get install -y -qq libsodium23; \
	  else echo "medchain needs libsodium (Debian: apt-get install libsodium23)"; exit 1; fi; }
	@# Node.js + npm run Ganache, the local verification chain
	@command -v npm >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && apt-get install -y -qq nodejs npm; \
	  else echo "medchain needs Node.js 18+ with npm for Ganache (Debian: apt-get install nodejs npm)"; \
	  exit 1; fi; }
	@# Debian's Chromium: the web app's browser tests drive it (Playwright, executable_path)
	@command -v chromium >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && apt-get install -y -qq chromium; \
	  else echo "medchain's browser tests need Chromium (Debian: apt-get install chromium)"; \
	  exit 1; fi; }
	@# Mosquitto is the MQTT broker devices publish readings to (the gateway tests start
	@# their own on a free port; the system service is not started here)
	@command -v mosquitto >/dev/null || [ -x /usr/sbin/mosquitto ] || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && apt-get install -y -qq mosquitto; \
	  else echo "medchain needs the Mosquitto MQTT broker (Debian: apt-get install mosquitto)"; \
	  exit 1; fi; }
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	@# Ganache (npm, pinned by package-lock.json) is the local verification chain; axe-core
	@# checks the web app's pages for accessibility inside the browser tests
	npm ci --no-audit --no-fund
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/medchain devnet up --nodes 4 --consensus afbft --home $(DEVNET)

demo: $(STAMP)
	$(BIN)/medchain demo

# `make docs`: every figure the simulator produces in docs/*.md sits between
# `<!-- generated: medchain … -->` and `<!-- end generated -->`; rewrite each block (and
# the plots it names) from its command. Deterministic: a second run changes nothing.
# `make test` checks that the pages still say what their commands say.
docs: $(STAMP)
	$(BIN)/medchain docs

TEST_STEPS := lint typecheck test-slow test-fast

test: $(STAMP)
	@failed=""; for step in $(TEST_STEPS); do \
	  $(MAKE) --no-print-directory $$step || failed="$$failed $$step"; \
	done; \
	echo; for step in $(TEST_STEPS); do \
	  case " $$failed " in *" $$step "*) echo "make test: $$step FAILED";; \
	  *) echo "make test: $$step passed";; esac; \
	done; \
	[ -z "$$failed" ] || { echo "make test: FAILED:$$failed"; exit 1; }

test-fast: $(STAMP)
	$(BIN)/pytest -m "not slow"

test-slow: $(STAMP)
	$(BIN)/pytest -m slow -n 2; rc=$$?; if [ $$rc -eq 5 ]; then exit 0; else exit $$rc; fi

# ruff (rules, then formatting), then the layering: import-linter's contracts in
# pyproject.toml ([tool.importlinter])
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-logo

# mypy --strict over medchain/ and tests/ (pyproject.toml [tool.mypy])
typecheck: $(STAMP)
	$(BIN)/mypy

# the web app's main pages photographed into docs/img/ (for docs/APP.md) by its browser
# tests; a plain test run takes no screenshot
screenshots: $(STAMP)
	MEDCHAIN_SCREENSHOTS=docs/img $(BIN)/pytest -m slow tests/web/test_in_browser.py tests/web/test_roles_in_browser.py

bench: $(STAMP)
	$(BIN)/medchain bench ledger
	$(BIN)/medchain bench fhir
	$(BIN)/medchain bench app
	$(BIN)/medchain bench sim
	$(BIN)/medchain bench state
	$(BIN)/medchain bench state-growth
	$(BIN)/medchain bench ring
	$(BIN)/medchain bench search
	$(BIN)/medchain bench --clients 100 --duration 30
	$(BIN)/medchain bench --clients 100 --duration 30 --anchoring
	$(BIN)/medchain bench gateway --duration 30

bench-network: $(STAMP)
	$(BIN)/medchain bench --clients 100 --duration 30

# the same load with checkpoints anchored on the devnet's Ganache: compare with bench-network
bench-anchoring: $(STAMP)
	$(BIN)/medchain bench --clients 100 --duration 30 --anchoring

# one edge gateway carrying 200 patients' bedside hubs (1,000 devices) into a devnet
bench-gateway: $(STAMP)
	$(BIN)/medchain bench gateway --duration 30

# the soak (not part of `make test`): the edge gateway into a 4-validator devnet for an
# hour at a steady load, every process's memory sampled each minute; the samples go to
# $(SOAK_OUT) as they are taken. SOAK_ARGS="--minutes 10" for a shorter run.
SOAK_OUT ?= soak-samples.jsonl
SOAK_ARGS ?=
soak: $(STAMP)
	$(BIN)/medchain bench soak --minutes 60 --rate 100 --sample-s 60 --out $(SOAK_OUT) $(SOAK_ARGS)

clean:
	rm -rf $(VENV) $(DEVNET) node_modules build *.egg-info .pytest_cache .mypy_cache .ruff_cache

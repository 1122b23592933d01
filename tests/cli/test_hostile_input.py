"""Every command of the CLI, walked from typer's own command tree, with hostile values
for each of its options and arguments: a number out of range, zero, a huge number,
an empty value, non-ASCII text, a directory where a file is expected and more. Each
answer must be a usage error (exit 2) or one line `error (code): …` (exit 1), never a
traceback; a command may succeed (exit 0) only when the value is truly valid for its
type. A command added later is walked too: a required option the walk has no valid
value for fails the test, naming it.

The walk stays on this machine and bounded: commands work on a copy of a small local
chain (--data) or on a node URL where nothing listens; a command that accepted its
input and goes on to start a process or an event loop (a devnet, a node, a gateway)
is stopped there, which counts as having accepted it."""

from __future__ import annotations

import asyncio
import contextlib
import enum
import inspect
import itertools
import math
import shutil
import signal
import socket
import subprocess
import sys
import types
import typing
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType, NoneType, UnionType
from typing import Any

import pytest
import typer
import typer.main
import typer.models
from typer.testing import CliRunner

from medchain.cli import app

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
ROOT = typer.main.get_command(app)
runner = CliRunner()

# -- the command tree -------------------------------------------------------------------


@dataclass(frozen=True)
class Param:
    """One option or argument of a command, as the walk sees it."""

    name: str
    flag: str | None
    """The option's first spelling (--amount); None for an argument."""
    kind: str
    """int, float, str, path, bool or enum (of a repeatable option: of each value)."""
    required: bool
    low: float | None
    high: float | None
    file_okay: bool
    dir_okay: bool
    choices: tuple[str, ...]


@dataclass(frozen=True)
class Command:
    path: tuple[str, ...]
    params: tuple[Param, ...]

    @property
    def name(self) -> str:
        return " ".join(self.path) or "medchain"


def _leaves(command: Any, path: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], Any]]:
    subcommands = getattr(command, "commands", None)
    if subcommands is None:
        yield path, command
        return
    if command.callback is not None and command.params:
        yield path, command  # a group that runs without a subcommand (`medchain bench`)
    for name, sub in sorted(subcommands.items()):
        yield from _leaves(sub, (*path, name))


def _info(callback: Callable[..., Any], name: str) -> tuple[Any, typer.models.ParameterInfo]:
    """The parameter's type, without Annotated, and its typer declaration."""
    hints = typing.get_type_hints(callback, include_extras=True)
    annotation = hints[name]
    info: typer.models.ParameterInfo | None = None
    if typing.get_origin(annotation) is typing.Annotated:
        annotation, *metadata = typing.get_args(annotation)
        info = next((m for m in metadata if isinstance(m, typer.models.ParameterInfo)), None)
    if info is None:
        default = inspect.signature(callback).parameters[name].default
        info = default if isinstance(default, typer.models.ParameterInfo) else typer.Option()
    return annotation, info


def _kind(annotation: Any) -> tuple[str, tuple[str, ...]]:
    if typing.get_origin(annotation) in (typing.Union, UnionType):
        (annotation,) = [a for a in typing.get_args(annotation) if a is not NoneType]
    if typing.get_origin(annotation) is list:
        (annotation,) = typing.get_args(annotation)
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return "enum", tuple(str(m.value) for m in annotation)
    kinds = {bool: "bool", int: "int", float: "float", str: "str", Path: "path"}
    if annotation not in kinds:
        raise AssertionError(f"the walk does not know parameters of type {annotation!r}")
    return kinds[annotation], ()


def _command(path: tuple[str, ...], command: Any) -> Command:
    params = []
    for param in command.params:
        if param.name == "help" or not param.expose_value:
            continue
        annotation, info = _info(command.callback, param.name)
        kind, choices = _kind(annotation)
        is_option = param.param_type_name == "option"
        params.append(
            Param(
                name=param.name,
                flag=param.opts[0] if is_option else None,
                kind=kind,
                required=param.required,
                low=info.min,
                high=info.max,
                file_okay=info.file_okay,
                dir_okay=info.dir_okay,
                choices=choices,
            )
        )
    return Command(path, tuple(params))


COMMANDS = [_command(path, command) for path, command in _leaves(ROOT, ())]


def test_the_walk_finds_every_command() -> None:
    names = {c.name for c in COMMANDS}
    # a few of each family, so a change in how the tree is read cannot empty the walk
    for name in ("transfer", "sim", "staking stake", "record get", "anon open", "bench"):
        assert name in names
    assert len(COMMANDS) >= 70


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c.name)
def test_every_number_has_a_range(command: Command) -> None:
    for param in command.params:
        if param.kind in ("int", "float"):
            assert param.low is not None and param.high is not None, (
                f"`medchain {command.name}` {param.flag or param.name}: give it min= and max="
            )


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c.name)
def test_every_path_says_whether_it_names_a_file_or_a_directory(command: Command) -> None:
    for param in command.params:
        if param.kind == "path":
            assert param.file_okay != param.dir_okay, (
                f"`medchain {command.name}` {param.flag or param.name}: declare "
                "dir_okay=False (a file) or file_okay=False (a directory)"
            )


# -- the world the walk runs in ---------------------------------------------------------


@dataclass(frozen=True)
class World:
    """A small local chain: its validator, a patient, a doctor and an institution that
    holds tokens and may read a record of the patient's, a device key not registered
    yet, and a key file for each."""

    chain: Path
    keys: dict[str, Path]
    addresses: dict[str, str]
    record_id: str
    closed_url: str
    """A loopback URL where nothing listens: connections are refused at once."""


def _cli(*args: str) -> str:
    outcome = _run(list(args))
    assert outcome.exit_code == 0 and outcome.exception is None, outcome
    return outcome.stdout


def _closed_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    root = tmp_path_factory.mktemp("world")
    chain = root / "chain"
    _cli("init", "--data", str(chain))
    keys = {"validator": chain / "validator.key"}
    addresses = {"validator": _cli("keys", "show", "--key", str(keys["validator"])).split()[1]}
    for who in ("patient", "doctor", "device"):
        keys[who] = root / f"{who}.key"
        addresses[who] = _cli("keys", "new", "--out", str(keys[who])).strip()
    # the institution is a founding research organisation's account (`medchain init`
    # writes its key file); the doctor registers as a patient and is credentialed
    keys["institution"] = chain / "orgs" / "northlab" / "org.key"
    addresses["institution"] = _cli("keys", "show", "--key", str(keys["institution"])).split()[1]
    for who in ("patient", "doctor"):
        _cli("register", "--key", str(keys[who]), "--role", "patient", "--name", who,
             "--data", str(chain))  # fmt: skip
    _cli("org", "credential", addresses["doctor"], "--role", "doctor", "--name", "Dr. Walk",
         "--key", str(chain / "orgs" / "st-mary" / "admin.key"), "--data", str(chain))  # fmt: skip
    record_id = _cli(
        "record", "put", "--key", str(keys["doctor"]), "--patient", addresses["patient"],
        "--file", str(EXAMPLES / "observation-heart-rate.json"),
        "--reader", addresses["institution"], "--data", str(chain),
    ).split()[-1]  # fmt: skip
    _cli("transfer", "--key", str(keys["validator"]), "--to", addresses["institution"],
         "--amount", "1000000", "--data", str(chain))  # fmt: skip
    return World(chain, keys, addresses, record_id, _closed_url())


# -- valid values, so that a hostile one reaches as deep as it can ----------------------

Valid = Callable[[World, Path], str]
FRESH = itertools.count()

VALID: dict[str, Valid] = {
    # keys and files
    "key": lambda w, case: str(w.keys["institution"]),
    "device_key": lambda w, case: str(w.keys["device"]),
    "faucet": lambda w, case: str(w.keys["institution"]),
    "file": lambda w, case: str(EXAMPLES / "observation-heart-rate.json"),
    "evidence_file": lambda w, case: str(EXAMPLES / "observation-heart-rate.json"),
    "cert": lambda w, case: str(EXAMPLES / "observation-heart-rate.json"),
    "genesis": lambda w, case: str(w.chain / "genesis.json"),
    "out": lambda w, case: str(case / "out"),
    "plot_path": lambda w, case: str(case / "plot.png"),
    "capability": lambda w, case: str(case / "capability"),
    # places: a copy of the chain, a home not made yet, a node nobody runs
    "data": lambda w, case: str(case / "chain"),
    "init:data": lambda w, case: str(case / f"new-chain-{next(FRESH)}"),  # a new one each run
    "home": lambda w, case: str(case / "home"),
    "node": lambda w, case: w.closed_url,
    "gateway": lambda w, case: w.closed_url,
    "eth_url": lambda w, case: w.closed_url,
    # addresses and ids on the chain
    "to": lambda w, case: w.addresses["patient"],
    "patient": lambda w, case: w.addresses["patient"],
    "candidate": lambda w, case: w.addresses["validator"],
    "reader": lambda w, case: w.addresses["doctor"],
    "institution": lambda w, case: w.addresses["institution"],
    "owner": lambda w, case: w.addresses["patient"],
    "guardian": lambda w, case: w.addresses["doctor"],
    "address": lambda w, case: w.addresses["device"],
    "device": lambda w, case: w.addresses["device"],
    "record_id": lambda w, case: w.record_id,
    "record_ids": lambda w, case: w.record_id,
    "reading_id": lambda w, case: "ab" * 32,
    # words
    "name": lambda w, case: "hospital-a",
    "role": lambda w, case: "patient",
    "kind": lambda w, case: "thermometer",
    "label": lambda w, case: "left wrist",
    "state": lambda w, case: "restricted",
    "reason": lambda w, case: "lost",
    "scope": lambda w, case: "cardio",
    "keyword": lambda w, case: "cardio",
    "chain_id": lambda w, case: "medchain-walk",
    "validator": lambda w, case: "a=" + "11" * 32,
    "submitter": lambda w, case: "0x" + "22" * 20,
    "from_": lambda w, case: "2024-05-01",
    "reading list:to": lambda w, case: "2024-05-02",  # a time there, an address elsewhere
    # the consortium
    "org_id": lambda w, case: "st-mary",
    "join": lambda w, case: str(EXAMPLES / "observation-heart-rate.json"),
    "update": lambda w, case: str(EXAMPLES / "observation-heart-rate.json"),
    "leave": lambda w, case: "northlab",
    "proxy": lambda w, case: w.addresses["doctor"],
    "relation": lambda w, case: "parent",
    "org": lambda w, case: "st-mary",
    "types": lambda w, case: "Condition",
    "request_id": lambda w, case: "ab" * 16,
    "emergency serve:key": lambda w, case: str(w.keys["patient"]),  # not an organisation's
    # key recovery
    "account": lambda w, case: w.addresses["patient"],
    "delay": lambda w, case: "24h",
}


def _valid(world: World, case: Path, command: Command, param: Param) -> str:
    if param.kind in ("int", "float"):
        return str(1 if param.low is None else param.low)  # small: a quick run
    if param.kind == "enum":
        return param.choices[0]
    make = VALID.get(f"{command.name}:{param.name}") or VALID.get(param.name)
    if make is None:
        raise AssertionError(
            f"`medchain {command.name}` {param.flag or param.name}: the walk knows no valid "
            "value for it; add one to VALID"
        )
    return make(world, case)


# -- hostile values, by type --------------------------------------------------------------

HUGE = "99999999999999999999999"
NUMBERS = {"negative": "-5", "zero": "0", "huge": HUGE, "empty": "", "non-ASCII": "五"}
FLOATS = {**NUMBERS, "infinite": "1e999", "not a number": "nan"}
TEXTS = {
    "empty": "",
    "non-ASCII": "Zoë 漢字 \u202etxt",
    "huge": "x" * 100_000,
    "markup": "[/]",
    "two lines": "one\ntwo",
}


def _hostile(param: Param, case: Path) -> dict[str, str]:
    if param.kind == "int":
        return NUMBERS
    if param.kind == "float":
        return FLOATS
    if param.kind == "path":
        return {
            "empty": "",
            "non-ASCII": str(case / "Zoë-漢字"),
            "a directory": str(case),
            "huge": "x" * 5000,
        }
    if param.kind in ("str", "enum"):
        return TEXTS
    return {}  # a flag has no value to spoil


def _truly_valid(param: Param, label: str, value: str) -> bool:
    """Whether a command may succeed with this hostile value of this parameter."""
    if param.kind in ("int", "float"):
        try:
            number = float(value)
        except ValueError:
            return False
        low = -math.inf if param.low is None else param.low
        high = math.inf if param.high is None else param.high
        whole = param.kind == "float" or number == int(number)
        return math.isfinite(number) and low <= number <= high and whole
    if param.kind == "path":
        if label in ("a directory", "empty"):  # typer reads "" as "." too
            return param.dir_okay
        return label == "non-ASCII"  # a name like any other; 5,000 bytes are not
    if param.kind == "enum":
        return value in param.choices
    return label != "empty"  # free text may be anything, but not nothing


# -- running a command, bounded -------------------------------------------------------------


class Started(BaseException):
    """The command accepted its input and went on to start a process or event loop."""


class TookTooLong(BaseException):
    """The command was still running at the deadline: it waits on something, or works
    through a value it should have refused."""


DEADLINE_S = 60  # generous: only a command that waits on something never coming hits it


@contextlib.contextmanager
def _bounded() -> Iterator[None]:
    """No process, no event loop, no name lookup off this machine, and a deadline."""

    def no_process(self: subprocess.Popen[bytes], args: Any, *rest: Any) -> None:
        raise Started(f"a process: {args}")

    def no_loop(coro: types.CoroutineType[Any, Any, Any], *args: Any, **kwargs: Any) -> None:
        coro.close()
        raise Started(f"an event loop: {coro.__qualname__}")

    real_getaddrinfo = socket.getaddrinfo

    def loopback_only(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host not in ("127.0.0.1", "localhost", "::1", None):
            raise socket.gaierror(socket.EAI_NONAME, "the walk stays on this machine")
        return real_getaddrinfo(host, *args, **kwargs)

    def too_long(signum: int, frame: FrameType | None) -> None:
        raise TookTooLong(f"no answer within {DEADLINE_S} s")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(subprocess.Popen, "_execute_child", no_process)
        patch.setattr(asyncio, "run", no_loop)
        patch.setattr(socket, "getaddrinfo", loopback_only)
        for name in ("MEDCHAIN_DATA", "MEDCHAIN_NODE", "MEDCHAIN_PASSPHRASE", "MEDCHAIN_DEVNET",
                     "MEDCHAIN_GATEWAY"):  # fmt: skip
            patch.delenv(name, raising=False)
        previous = signal.signal(signal.SIGALRM, too_long)
        try:
            yield
        finally:
            signal.alarm(0)
            signal.signal(signal.SIGALRM, previous)


@dataclass
class Outcome:
    exit_code: int
    stdout: str
    stderr: str
    exception: BaseException | None


def _run(args: list[str]) -> Outcome:
    """`medchain ARGS` in this process, as CliRunner runs it, on the command tree built
    once (building it again for every run would cost more than most runs)."""
    exit_code, exception = 0, None
    signal.alarm(DEADLINE_S)
    try:
        with runner.isolation(env={"COLUMNS": "10000"}) as (stdout, stderr, _):
            try:
                ROOT.main(args=args, prog_name="medchain")
            except SystemExit as exit_:
                exit_code = exit_.code if isinstance(exit_.code, int) else 1
            except Exception as error:
                exit_code, exception = 1, error
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                out, err = stdout.getvalue(), stderr.getvalue()
    except Started:
        return Outcome(0, "", "", None)
    except TookTooLong as late:
        return Outcome(1, "", "", late)
    finally:
        signal.alarm(0)
    return Outcome(exit_code, out.decode(), err.decode(errors="replace"), exception)


def _problem(outcome: Outcome, accepted: bool) -> str | None:
    """What is wrong with the answer to a hostile value, or None."""
    if isinstance(outcome.exception, TookTooLong):
        return str(outcome.exception)
    if outcome.exception is not None:
        return f"a traceback: {outcome.exception!r}"
    if "Traceback" in outcome.stdout + outcome.stderr:
        return "a traceback in the output"
    if outcome.exit_code == 0:
        return None if accepted else "success with an invalid value"
    lines = [line for line in outcome.stderr.splitlines() if line.strip()]
    if outcome.exit_code == 1:
        errors = [line for line in lines if line.startswith("error")]
        if len(errors) != 1 or lines[-1] != errors[0] or not errors[0].startswith("error ("):
            return f"exit 1 without one line `error (code): ...`: {lines!r}"
        return None
    if outcome.exit_code == 2:
        # typer's usage error: usage, a hint, and one message in a box (one line, unless
        # it quotes a value wider than the box)
        if sum(line.startswith("╭─ Error") for line in lines) != 1:
            return f"exit 2 without one usage error: {lines!r}"
        return None
    return f"exit status {outcome.exit_code}"


PLACES = ("node", "data", "gateway", "eth_url")
"""Optional options the walk always sets, to keep every command on this machine."""
SUPERSEDES = {"data": "node"}
"""--data takes the place of --node: walking --node, --data is left out."""


def _args(world: World, case: Path, command: Command, target: Param, value: str) -> list[str]:
    options: list[str] = []
    arguments: list[str] = []
    for param in command.params:
        if param is target:
            given = value
        elif SUPERSEDES.get(param.name) == target.name or param.kind == "bool":
            continue
        elif param.required or param.kind in ("int", "float") or param.name in PLACES:
            given = _valid(world, case, command, param)
        else:
            continue
        if param.flag is None:
            arguments.append(given)
        else:
            options += [param.flag, given]
    return [*command.path, *options, "--", *arguments]


def _case(world: World, base: Path, command: Command) -> Path:
    """A directory for the command's runs, with a copy of the chain if it takes --data."""
    case = base / "case"
    case.mkdir()
    if any(p.name == "data" for p in command.params):
        shutil.copytree(world.chain, case / "chain")
    return case


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c.name)
def test_hostile_values_get_a_one_line_refusal(
    command: Command, world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    case = _case(world, tmp_path, command)
    problems = []
    with _bounded():
        for target in command.params:
            for label, value in _hostile(target, case).items():
                outcome = _run(_args(world, case, command, target, value))
                problem = _problem(outcome, _truly_valid(target, label, value))
                if problem:
                    problems.append(f"{target.flag or target.name} {label}: {problem}")
    assert not problems, f"`medchain {command.name}`:\n" + "\n".join(problems)


REPORTED = [
    (["transfer", "--key", "k", "--to", "mc1x", "--amount", "-5"], "'--amount'"),
    (["staking", "stake", "--key", "k", "--", "-5"], "'amount'"),
    (["staking", "unstake", "--key", "k", "--", "-5"], "'amount'"),
    (["staking", "vote", "--key", "k", "--candidate", "mc1x", "--amount", "-3"], "'--amount'"),
    (["anon", "open", "--key", "k", "--scope", "s", "--min-ring", "-1"], "'--min-ring'"),
    (["record", "get", "--key", "k", "00" * 16, "--version", "-1"], "'--version'"),
    (["record", "get", "--key", "k", "00" * 16, "--version", HUGE], "'--version'"),
    (["sim", "--nodes", "-4"], "'--nodes'"),
]


@pytest.mark.parametrize(("args", "option"), REPORTED, ids=[" ".join(a) for a, _ in REPORTED])
def test_the_reported_tracebacks_are_usage_errors(
    args: list[str], option: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with _bounded():
        outcome = _run(args)
    assert outcome.exception is None and "Traceback" not in outcome.stderr
    assert outcome.exit_code == 2
    assert f"Invalid value for {option}" in outcome.stderr

"""A schema-driven fuzz run over the node's OpenAPI document: schemathesis generates
requests for every operation from /openapi.json (valid and invalid ones, in its
coverage, fuzzing and stateful phases) and no answer may be a 5xx.

Against what: a real node process (a one-validator devnet, the `medchain node` the
devnet runs, over HTTP on 127.0.0.1), not the in-process FakeNode of the other API
tests, so the fuzzer meets the app exactly as served, with the networked node's
NodeService (its chain queries, its blob store that asks peers, its status). One
validator is the cheapest such node: it commits alone, in a few seconds. It holds
some of everything (patients, a record with two versions, a research grant, an
anonymous scope with an entry, a device, a guardian, a gateway and its batch of
readings), and schemathesis's fuzz dictionaries mix the real addresses, ids, CIDs,
hashes and times into half of the generated values, so requests get past "not
found" into the code that reads real state.

How: schemathesis's own command (`st run`), with its settings in a schemathesis.toml
written here, the documented way to run it; its report, with a curl command for each
failure, is the test's output. (Its pytest plugin wants the schema at import time, or
a lazy fixture that does not work with the pytest this project uses.)

Bounded and repeatable: a fixed seed, at most MAX_EXAMPLES cases per operation, a
timeout on each request (a hang fails the run rather than stalling it) and one on
the whole run. It takes one to two minutes. This run is what found that a block
height over 2^63 - 1 in POST /v1/chain/hashes reached SQLite and answered 500: with
that fix reverted it fails within its first minute."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from medchain.app import MS_PER_DAY, Bundle, CredentialRole, DeviceKind, Role, TransferArgs
from medchain.client import HttpChain, MedchainClient
from medchain.client._anon import anon_submit, open_scope
from medchain.crypto import AccountKeys, format_address, signed_tx
from medchain.offchain import cid_for
from medchain.types import tx_id
from tests.node.netharness import LiveNet, live_net

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SEED = 20_260_614
MAX_EXAMPLES = 150
"""Per operation: about 6,600 requests in all."""
REQUEST_TIMEOUT_S = 30
RUN_TIMEOUT_S = 900
"""The run takes one to two minutes; this stops a hung one."""
SCOPE = "cardio/2026"
DAY = 20_600  # a UTC day (days since the epoch) for the batch of readings


def _person(chain: HttpChain, keys: AccountKeys, role: Role, name: str) -> MedchainClient:
    client = MedchainClient(keys, chain)
    client.register(role, name)
    return client


def _populate(net: LiveNet, chain: HttpChain) -> dict[str, list[Any]]:
    """Some of everything on the chain; the values a fuzzer could not guess."""
    keys = net.fund(9)
    patient = _person(chain, keys[0], Role.PATIENT, "Jane Roe")
    doctor = _person(chain, keys[1], Role.PATIENT, "Dr. Who")  # a doctor's own account,
    hospital = MedchainClient(net.founder_admin(), chain)  # credentialed by a hospital
    hospital.issue_credential(doctor.address, CredentialRole.DOCTOR, "Dr. Who")
    lab = MedchainClient(net.founder_account(), chain)  # a research institute's account
    others = [_person(chain, k, Role.PATIENT, f"P{i}") for i, k in enumerate(keys[4:7])]
    guardian = _person(chain, keys[7], Role.PATIENT, "A guardian")
    gateway = MedchainClient(keys[8], chain)

    condition = json.loads((EXAMPLES / "condition.json").read_text())
    record_id = doctor.put_record(patient.address, condition, keywords=["diabetes"])
    doctor.add_version(record_id, condition)
    patient.research_grant(record_id, lab.address)
    open_scope(lab, SCOPE, Role.PATIENT, 3)
    anon_submit(others[0], SCOPE, condition, ring_size=3)

    device = AccountKeys.generate()
    patient.register_device(device, patient.address, DeviceKind.THERMOMETER, "ear")
    patient.add_guardian(guardian.address)
    patient.share_vitals(doctor.address)
    hospital.register_gateway(gateway.address, "ward 3")
    t0 = DAY * MS_PER_DAY
    bundle = b"a sealed bundle of readings"
    bundle_cid = chain.bulk_blobs(keys[8]).put(bundle)  # the gateway's signed upload
    batch_id = gateway.commit_batch(
        hashlib.sha256(b"root").digest(),
        2,
        [
            Bundle(
                patient.address,
                bundle_cid,
                hashlib.sha256(bundle).digest(),
                2,
                t0 + 1_000,
                t0 + 9_000,
                (device.address,),
            )
        ],
    )
    assert chain.batch(batch_id) is not None

    # a committed transaction, for POST /v1/txs to meet one it already holds
    transfer = signed_tx(
        net.faucet,
        net.devnet.chain_id,
        chain.account(net.faucet.address).nonce,
        "accounts.transfer",
        TransferArgs(patient.address, 1, ""),
        net.min_fee,
    )
    chain.submit(transfer)

    people = [patient, doctor, lab, hospital, *others, guardian, gateway]
    versions = [patient.chain.record_version(record_id, n) for n in (1, 2)]
    return {
        "addresses": [format_address(p.address) for p in people] + [format_address(device.address)],
        "record_ids": [record_id.hex()],
        "batch_ids": [batch_id.hex()],
        "cids": [v.cid for v in versions if v is not None] + [bundle_cid, cid_for(b"absent")],
        "tx_hashes": [tx_id(transfer).hex()],
        "txs": [transfer.encoded.hex()],
        "scopes": [SCOPE],
        "times": [t0, t0 + 5_000, t0 + MS_PER_DAY],
    }


def _config(known: dict[str, list[Any]]) -> str:
    """The run's schemathesis.toml: seed, bounds, and the real values mixed into half
    of the generated ones (JSON's strings, numbers and arrays are TOML's too)."""
    bindings = {
        "path.address": "addresses",
        "path.institution": "addresses",
        "path.record_id": "record_ids",
        "path.batch_id": "batch_ids",
        "path.cid": "cids",
        "path.tx_hash": "tx_hashes",
        "path.scope": "scopes",
        "query.device": "addresses",
        "query.from_ms": "times",
        "query.to_ms": "times",
        "body.owner": "addresses",
        "body.devices[*]": "addresses",
        "body.patients[*]": "addresses",
        "body.tx": "txs",
    }
    lines = [
        f"seed = {SEED}",
        "[generation]",
        f"max-examples = {MAX_EXAMPLES}",
        'database = "none"',
    ]
    for name, values in known.items():
        lines += [f"[dictionaries.{name}]", f"values = {json.dumps(values)}"]
    lines.append("[parameters]")
    for key, name in bindings.items():
        lines.append(f'"{key}" = {{ dictionary = "{name}", probability = 0.5 }}')
    return "\n".join(lines) + "\n"


@pytest.mark.slow
def test_no_request_makes_the_node_answer_a_server_error(tmp_path: Path) -> None:
    with live_net(tmp_path / "net", 1, "pbft") as net:
        net.start()
        url = net.url(net.names[0])
        with HttpChain(url) as chain:
            known = _populate(net, chain)
        config = tmp_path / "schemathesis.toml"
        config.write_text(_config(known))
        run = subprocess.run(
            [
                *(sys.executable, "-m", "schemathesis.cli", "--config-file", str(config)),
                *("run", f"{url}/openapi.json", "--checks", "not_a_server_error"),
                *("--workers", "1", "--request-timeout", str(REQUEST_TIMEOUT_S), "--no-color"),
            ],
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT_S,
            cwd=tmp_path,
        )
        print(run.stdout[-20_000:], run.stderr[-5_000:])
        assert run.returncode == 0, "a request made the node answer 5xx (the run is above)"
        generated = re.search(r"(\d+) generated", run.stdout)
        assert generated is not None and int(generated.group(1)) > 1_000
        assert f"Seed: {SEED}" in run.stdout

"""What a stranger learns: after a story with something of everything in it (a named
patient, a guardian, doctors, records and grants, research and anonymous copies, a
keyword search, labelled devices, readings), every route of the node's OpenAPI
document is called without any key, its path parameters filled from the story, and
no answer may hold a name, label or other free text of a patient: not in clear, not
as hex or base64 of its UTF-8. docs/PRIVACY.md lists, route by route, what they do
hold."""

from __future__ import annotations

import base64
import copy
import json
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import product
from pathlib import Path
from typing import Any

import httpx
import pytest

from medchain.api import create_api
from medchain.app import (
    MS_PER_DAY,
    Bundle,
    CreateRecordArgs,
    CredentialRole,
    DeviceKind,
    DeviceState,
    OrgKind,
    ProposalAction,
    Role,
)
from medchain.client import (
    LabelStatus,
    MedchainClient,
    answer_pending,
    open_emergency,
    organisation_spec,
    set_up_emergency_policy,
)
from medchain.client._anon import anon_submit, open_scope
from medchain.crypto import AccountKeys, SearchToken, format_address, sha256
from medchain.gateway import DeviceKind as SimulatedKind
from medchain.gateway import SimulatedDevice
from medchain.gateway._batch import Batch, BatchEntry
from medchain.gateway._service import seal_bundle
from medchain.node import DISCLOSURES_FILE, LocalChain, SqliteDisclosureLog
from medchain.offchain import MemoryBlobStore
from medchain.store import ChainStore
from medchain.types import decode, decode_tx_bytes, encode, tx_id
from tests.api.harness import (
    HOSPITAL,
    Org,
    SyncASGITransport,
    admin,
    clinician,
    institution,
    make_chain,
)
from tests.api.logging_nodes import LoggingNode

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

PATIENT_NAME = "Philippa Quarrington"
GUARDIAN_NAME = "Agnès Quarrington"
BIRTH_DATE = "1961-04-17"
HOME = "14 Larkspur Mews"
PUMP_LABEL = "insulin pump, Philippa"
BAND_LABEL = "Philippa's wrist band"
NOTE = "fell from the ladder at Larkspur Mews; lives alone since March"
KEYWORD = "brittle asthma"
DOCTOR_NAME = "Dr. Hortensia Vell"
HOSPITAL_NAME = "St. Swithun Infirmary"
SCOPE = "asthma-2026"

SECRETS = (
    PATIENT_NAME,
    "Philippa",
    "Quarrington",
    GUARDIAN_NAME,
    "Agnès",
    BIRTH_DATE,
    HOME,
    "Larkspur",
    PUMP_LABEL,
    "insulin pump",
    BAND_LABEL,
    "wrist band",
    NOTE,
    "ladder",
    KEYWORD,
)
"""What the story's patient, guardian and carers wrote about the patient: names,
profile details, device labels, a record's free text, a search keyword."""


class RecordingBlobStore(MemoryBlobStore):
    """Remembers every CID stored, so the walk can ask for each."""

    def __init__(self) -> None:
        super().__init__()
        self.cids: list[str] = []

    def put(self, data: bytes) -> str:
        cid = super().put(data)
        self.cids.append(cid)
        return cid

    def put_many(self, blobs: Any) -> list[str]:
        cids = super().put_many(blobs)
        self.cids.extend(cids)
        return cids


@dataclass
class Story:
    chain: LocalChain
    blobs: RecordingBlobStore
    doctor: MedchainClient
    addresses: list[bytes]
    devices: list[bytes]
    record_ids: list[bytes]
    batch_ids: list[bytes]
    token: SearchToken
    readings_from_ms: int
    readings_to_ms: int
    recovery_ids: list[bytes] = field(default_factory=list)
    txs: list[bytes] = field(default_factory=list)


def _person(chain: LocalChain, role: Role, name: str, **details: str) -> MedchainClient:
    client = MedchainClient(AccountKeys.generate(), chain)
    client.register(role, name, details or None)
    return client


@pytest.fixture(scope="module")
def story() -> Story:
    validator_keys = AccountKeys.generate()
    genesis = make_chain(validator_keys).genesis
    blobs = RecordingBlobStore()
    chain = LocalChain(genesis, validator_keys, ChainStore(Path(":memory:")), blobs)
    validator = MedchainClient(validator_keys, chain)

    patient = _person(chain, Role.PATIENT, PATIENT_NAME, birthDate=BIRTH_DATE, address=HOME)
    guardian = _person(chain, Role.PATIENT, GUARDIAN_NAME, relation="daughter")
    others = [_person(chain, Role.PATIENT, f"Decoy {i}") for i in range(2)]  # ring members
    doctor = clinician(chain, DOCTOR_NAME)
    nurse = clinician(chain, "Nurse Ottoline Brack", CredentialRole.NURSE)
    hospital = admin(chain)  # the founding hospital's admin
    lab = institution(chain)  # the founding research institute's account
    gateway = MedchainClient(AccountKeys.generate(), chain)
    validator.transfer(gateway.address, 10_000, "gateway fees")

    # records: written by the doctor, shared with a nurse, for research, searched
    condition = json.loads((EXAMPLES / "condition.json").read_text())
    condition["subject"]["display"] = PATIENT_NAME
    condition["note"][0]["text"] = NOTE
    record_id = doctor.put_record(patient.address, condition, keywords=[KEYWORD])
    patient.grant(record_id, nurse.address)
    changed = copy.deepcopy(condition)
    changed["note"][0]["text"] = NOTE + "; inhaler twice a day"
    doctor.add_version(record_id, changed)
    patient.research_grant(record_id, lab.address)
    patient.grant_consent(nurse.address, ["Condition"])  # a standing consent, re-wrapping
    tokens: list[SearchToken] = []
    search = chain.search

    def recording(owner: bytes, token: SearchToken) -> list[list[bytes]]:
        tokens.append(token)
        return search(owner, token)

    chain.search = recording  # type: ignore[method-assign]
    assert doctor.search(KEYWORD).record_ids == (record_id,)
    chain.search = search  # type: ignore[method-assign]
    open_scope(lab, SCOPE, Role.PATIENT, 3)
    anon_submit(patient, SCOPE, condition, ring_size=3)

    # devices: a guardian, labelled devices, a state change, a gateway's batch of readings
    patient.add_guardian(guardian.address)
    patient.share_vitals(doctor.address)
    pump = AccountKeys.generate()
    guardian.register_device(pump, patient.address, DeviceKind.GLUCOSE_METER, PUMP_LABEL)
    band = SimulatedDevice(SimulatedKind.HEART_RATE_BAND, patient.keys.address_text, seed=3)
    hospital.register_device(band.keys, patient.address, DeviceKind.HEART_RATE, BAND_LABEL)
    # only the organisation that registered a device (or its patient) changes its state
    hospital.set_device_state(band.keys.address, DeviceState.RESTRICTED, "firmware recall")
    hospital.set_device_state(band.keys.address, DeviceState.ACTIVE, "firmware updated")
    hospital.register_gateway(gateway.address, "ward 3 edge")
    readings = list(band.stream(3))
    batch = Batch(BatchEntry(patient.keys.address_text, r) for r in readings)
    (bundle,) = batch.bundles
    readers = {c.address: c.keys.encryption_public_key for c in (patient, guardian, doctor)}
    blob = seal_bundle(bundle, batch.root, readers)
    chained = Bundle(
        patient.address,
        chain.blobs.put(blob),
        sha256(blob),
        len(readings),
        bundle.time_from_ms,
        bundle.time_to_ms,
        bundle.devices,
    )
    batch_id = gateway.commit_batch(batch.root, len(batch), [chained])

    # the consortium: a patient's identity attested, a proposal still open
    hospital.attest_patient(patient.address)
    joining = Org.generate("blackthorn", OrgKind.RESEARCH)
    spec = organisation_spec(
        joining.org_id, "Blackthorn Institute", joining.kind, [joining.admin], joining.account
    )
    hospital.propose_organisation(ProposalAction.JOIN, spec, "a second research institute")

    # break-glass: the patient's policy, a doctor's opening, the hospital's answer
    set_up_emergency_policy(patient)
    open_emergency(doctor, patient.address, "found unconscious")
    answer_pending(MedchainClient(HOSPITAL.account, chain))

    # key recovery: the patient's guardians, and a request from a new key
    patient.set_up_recovery([guardian.address, others[0].address], 2)
    recovery_id = MedchainClient(AccountKeys.generate(), chain).request_recovery(patient.address)

    label = guardian.device_label(guardian.device(pump.address))
    assert (label.status, label.text) == (LabelStatus.OPENED, PUMP_LABEL)
    assert patient.my_profile()["name"] == PATIENT_NAME

    accounts = [validator, patient, guardian, *others, doctor, nurse, hospital, lab, gateway]
    found = Story(
        chain=chain,
        blobs=blobs,
        doctor=doctor,
        addresses=[c.address for c in accounts],
        devices=[pump.address, band.keys.address],
        record_ids=[record_id],
        recovery_ids=[recovery_id],
        batch_ids=[batch_id],
        token=tokens[-1],
        readings_from_ms=bundle.time_from_ms - MS_PER_DAY,
        readings_to_ms=bundle.time_to_ms + MS_PER_DAY,
    )
    for height in range(1, chain.height + 1):
        block = chain.block_at(height)
        assert block is not None
        found.txs.extend(tx.encoded for tx in block.txs)
    return found


# -- filling the OpenAPI document's parameters from the story ---------------------------


def _path_values(story: Story) -> dict[str, list[str]]:
    """Every value the story gives each path parameter, by its name."""
    chain = story.chain
    addresses = [format_address(a) for a in [*story.addresses, *story.devices]]
    max_role = max(chain.role_count(role) for role in Role)
    versions = max(r.version_count for r in map(chain.record, story.record_ids) if r)
    return {
        "address": addresses,
        "institution": addresses,
        "tx_hash": [tx_id(decode_tx_bytes(raw)).hex() for raw in story.txs],
        "height": [str(h) for h in range(chain.height + 1)],
        "role": [role.value for role in Role],
        "index": [str(i) for i in range(max_role)],
        "record_id": [r.hex() for r in story.record_ids],
        "number": [str(n) for n in range(1, versions + 1)],
        "scope": [SCOPE],
        "cid": list(dict.fromkeys(story.blobs.cids)),
        "batch_id": [b.hex() for b in story.batch_ids],
        "org_id": [org.org_id for org in chain.organisations()],
        "proposal_id": [str(p.proposal_id) for p in chain.proposals()],
        "consent_id": [str(c.consent_id) for a in story.addresses for c in chain.consents_of(a)],
        "request_id": [
            r.request_id.hex()
            for org in chain.organisations()
            for r in chain.emergency_requests_by_org(org.org_id)
        ]
        + [r.hex() for r in story.recovery_ids],
    }


def _query_values(story: Story) -> dict[str, str]:
    return {
        "from_ms": str(story.readings_from_ms),
        "to_ms": str(story.readings_to_ms),
        "device": format_address(story.devices[1]),
        "org": HOSPITAL.org_id,
        "patient": format_address(story.addresses[1]),
        "node": format_address(story.addresses[0]),
    }


def _json_bodies(story: Story) -> dict[str, list[Any]]:
    """Request bodies by the name of their schema, from the story."""
    uploads = []
    for raw in story.txs:
        tx = decode_tx_bytes(raw)
        if tx.method == "records.create":
            args = decode(CreateRecordArgs, tx.args)
            uploads.append({"tx": raw.hex(), "ciphertext": story.blobs.get(args.cid).hex()})
    everyone = [format_address(a) for a in [*story.addresses, *story.devices]]
    return {
        "TxBody": [{"tx": raw.hex()} for raw in story.txs],
        "TxBatchBody": [{"txs": [raw.hex() for raw in story.txs]}],
        "UploadBody": uploads,
        "SearchBody": [
            {"owner": format_address(story.doctor.address), "token": encode(story.token).hex()}
        ],
        "RecipientsLookupBody": [{"patients": everyone}],
        "DeviceLookupBody": [{"devices": everyone}],
        "HeightsModel": [{"heights": list(range(story.chain.height + 1))}],
    }


@dataclass(frozen=True)
class Call:
    operation: str
    """METHOD /path as the OpenAPI document names it."""
    method: str
    url: str
    params: dict[str, str]
    json: Any = None
    content: bytes | None = None


def _calls(doc: dict[str, Any], story: Story) -> Iterator[Call]:
    """Every operation of `doc`, called with every combination of the story's values
    for its path parameters, its required query parameters (and each optional one the
    story has a value for), and each body the story has for its schema."""
    paths = _path_values(story)
    queries = _query_values(story)
    bodies = _json_bodies(story)
    for path, operations in doc["paths"].items():
        for method, op in operations.items():
            name = f"{method.upper()} {path}"
            parameters = op.get("parameters", [])
            in_path = [p["name"] for p in parameters if p["in"] == "path"]
            for missing in (p for p in in_path if p not in paths):
                pytest.fail(f"the walk cannot fill {missing!r} of {name}: add it to _path_values")
            required = {p["name"] for p in parameters if p["in"] == "query" and p["required"]}
            for missing in (p for p in required if p not in queries):
                pytest.fail(f"the walk cannot fill {missing!r} of {name}: add it to _query_values")
            optional = [
                p["name"]
                for p in parameters
                if p["in"] == "query" and not p["required"] and p["name"] in queries
            ]
            query_sets = [{q: queries[q] for q in required}]
            query_sets += [{**query_sets[0], q: queries[q]} for q in optional]
            payloads = _payloads(op, bodies, name)
            for values in product(*(paths[p] for p in in_path)):
                url = path.format(**dict(zip(in_path, values, strict=True)))
                for params in query_sets:
                    for payload in payloads:
                        yield Call(name, method.upper(), url, params, *payload)


def _payloads(
    op: dict[str, Any], bodies: dict[str, list[Any]], name: str
) -> list[tuple[Any, bytes | None]]:
    """(json, content) pairs to send: none without a request body."""
    body = op.get("requestBody")
    if body is None:
        return [(None, None)]
    content = body["content"]
    if "application/json" in content:
        schema = content["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
        if schema not in bodies:
            pytest.fail(f"the walk has no {schema} for {name}: add one to _json_bodies")
        return [(b, None) for b in bodies[schema]]
    if "application/octet-stream" in content:
        return [(None, b"a stranger's bytes")]
    pytest.fail(f"the walk cannot send {sorted(content)} to {name}")


# -- what counts as a secret in an answer -------------------------------------------------


def _forms(secret: str) -> tuple[list[str], list[str]]:
    """The secret as text and as hex of its UTF-8 (both sought in any case), and base64
    of its UTF-8, plain and URL-safe, at each of the three alignments it can start at
    (the characters that depend on the secret alone; sought as they are)."""
    raw = secret.encode()
    encoded = []
    for shift in range(3):
        full = base64.b64encode(bytes(shift) + raw).decode()
        core = full[-(-8 * shift // 6) : 8 * (shift + len(raw)) // 6]
        encoded += [core, core.replace("+", "-").replace("/", "_")]
    return [secret.lower(), raw.hex()], encoded


def _leaks(response: httpx.Response) -> list[str]:
    text = response.text + "\n" + "\n".join(f"{k}: {v}" for k, v in response.headers.items())
    json_body = response.headers.get("content-type", "").startswith("application/json")
    if json_body and response.content:
        text += "\n" + json.dumps(response.json(), ensure_ascii=False)  # \\u escapes undone
    lowered = text.lower()
    found = []
    for secret in SECRETS:
        any_case, exact = _forms(secret)
        found += [f"{secret!r} as {f!r}" for f in any_case if f in lowered]
        found += [f"{secret!r} as {f!r}" for f in exact if f in text]
    return found


# -- the walk ---------------------------------------------------------------------------


def _stranger(story: Story) -> tuple[httpx.Client, dict[str, Any]]:
    log = SqliteDisclosureLog(Path(tempfile.mkdtemp()) / DISCLOSURES_FILE, story.addresses[0])
    app = create_api(LoggingNode(story.chain, log, "http://node"))
    return httpx.Client(transport=SyncASGITransport(app), base_url="http://node"), app.openapi()


def test_a_stranger_learns_no_name_label_or_free_text_of_a_patient(story: Story) -> None:
    api, doc = _stranger(story)
    answered: dict[str, list[int]] = {}
    leaks = []
    for call in _calls(doc, story):
        response = api.request(
            call.method, call.url, params=call.params, json=call.json, content=call.content
        )
        assert response.status_code < 500, f"{call.method} {call.url}: {response.text}"
        answered.setdefault(call.operation, []).append(response.status_code)
        leaks += [f"{call.method} {call.url}: {leak}" for leak in _leaks(response)]
    assert not leaks, "\n".join(leaks)
    operations = {f"{m.upper()} {p}" for p, ops in doc["paths"].items() for m in ops}
    assert set(answered) == operations  # every route was walked
    # the routes serving sealed data take a signed read: a stranger is answered 401
    signed = {
        f"{m.upper()} {p}"
        for p, ops in doc["paths"].items()
        for m, op in ops.items()
        if "410" in op.get("responses", {})
    }
    assert {"GET /v1/blobs/{cid}", "POST /v1/search"} <= signed
    assert {op: set(answered[op]) for op in signed} == {op: {401} for op in signed}
    # a patient's accounting of disclosures answers only their signed request
    assert set(answered["GET /v1/disclosures"]) == {401}
    # and every other read answered something, so the walk saw the story's data
    unread = [
        op
        for op, codes in answered.items()
        if op.split()[0] in ("GET", "HEAD")
        and op not in signed
        and op != "GET /v1/disclosures"
        and not any(200 <= c < 300 for c in codes)
    ]
    assert not unread, unread


def test_the_walk_finds_what_is_in_clear(story: Story) -> None:
    """The search itself works: what PRIVACY.md says is public (a doctor's credentialed
    name, a gateway's label, a record's resource type) is found in clear."""
    api, _ = _stranger(story)
    doctor = api.get(f"/v1/accounts/{format_address(story.doctor.address)}/credentials")
    assert doctor.json()["credentials"][0]["name"] == DOCTOR_NAME
    record = api.get(f"/v1/records/{story.record_ids[0].hex()}").json()
    assert record["resource_type"] == "Condition"
    device = api.get(f"/v1/devices/{format_address(story.devices[0])}").json()
    assert device["kind"] == "glucose_meter" and device["label"]["sealed"] is True
    assert len(device["label"]["readers"]) == 2  # the patient and the guardian
    # a label in clear, in any of its encodings, would have been caught
    any_case, exact = _forms(PUMP_LABEL)
    for form in [*any_case, *(f.upper() for f in any_case), *exact]:
        planted = httpx.Response(200, json={"encoded": form}, headers={"x": "y"})
        assert _leaks(planted), form


@pytest.mark.parametrize("secret", [PATIENT_NAME, GUARDIAN_NAME, "Lä"])
def test_every_base64_alignment_is_searched(secret: str) -> None:
    raw = secret.encode()
    for prefix in (b"", b"x", b"xy", b"xyz"):
        for suffix in (b"", b"!", b"!?"):
            encoded = base64.b64encode(prefix + raw + suffix).decode()
            assert any(form in encoded for form in _forms(secret)[1]), (prefix, suffix)

"""Encrypted keyword search through the SDK on a LocalChain: results, deletions, forward
privacy, capabilities, namespaces, padding, the client's state, and that keywords never
appear in clear anywhere the chain, a node or the network could see."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from medchain.app import IndexArgs, Role
from medchain.client import (
    InvalidCapability,
    MedchainClient,
    NoSearchCapability,
    RecordNotIndexed,
    SearchStateError,
    keywords_of,
    search_state_path,
)
from medchain.crypto import (
    AccountKeys,
    InvalidKeyword,
    SearchToken,
    entry_label,
    epoch_keys,
    search_key,
)
from medchain.node import LocalChain
from medchain.types import (
    Genesis,
    MedchainError,
    Receipt,
    Tx,
    decode,
    encode,
)
from tests.api.harness import enlist, make_chain

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _example(name: str) -> dict[str, Any]:
    return dict(json.loads((EXAMPLES / name).read_text()))


class Spy:
    """A ChainBackend in front of a LocalChain that keeps every transaction and search
    request it forwards: what a node (or the network) sees of the client."""

    def __init__(self, chain: LocalChain) -> None:
        self._chain = chain
        self.txs: list[Tx] = []
        self.requests: list[tuple[bytes, SearchToken]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._chain, name)

    def submit(self, tx: Tx) -> Receipt:
        self.txs.append(tx)
        return self._chain.submit(tx)

    def search(self, owner: bytes, token: SearchToken) -> list[list[bytes]]:
        self.requests.append((owner, token))
        return self._chain.search(owner, token)

    def index_labels(self) -> list[bytes]:
        return [
            e.label
            for tx in self.txs
            if tx.method == "search.index"
            for e in decode(IndexArgs, tx.args).entries
        ]


def _genesis(validator: AccountKeys) -> Genesis:
    return make_chain(validator).genesis  # founded by the test hospital and institute


@pytest.fixture
def chain() -> LocalChain:
    return make_chain()


@pytest.fixture
def spy(chain: LocalChain) -> Spy:
    return Spy(chain)


def _person(backend: Any, role: Role, name: str, state: Path | None = None) -> MedchainClient:
    return enlist(MedchainClient(AccountKeys.generate(), backend, state), role, name)


@pytest.fixture
def people(spy: Spy) -> dict[str, MedchainClient]:
    return {
        "patient": _person(spy, Role.PATIENT, "Jane Roe"),
        "doctor": _person(spy, Role.DOCTOR, "Dr. Who"),
        "doctor2": _person(spy, Role.DOCTOR, "Dr. Strange"),
        "stranger": _person(spy, Role.DOCTOR, "Dr. Nobody"),
    }


def _three_records(doctor: MedchainClient, patient: MedchainClient) -> list[bytes]:
    condition = _example("condition.json")
    return [
        doctor.put_record(patient.address, condition, keywords=["diabetes", "hba1c"]),
        doctor.put_record(patient.address, condition, keywords=["diabetes", "hypertension"]),
        doctor.put_record(patient.address, condition, keywords=["hypertension", "statin"]),
    ]


def test_search_finds_exactly_the_matching_records(people: dict[str, MedchainClient]) -> None:
    doctor, patient = people["doctor"], people["patient"]
    r1, r2, r3 = _three_records(doctor, patient)
    assert doctor.search("diabetes").record_ids == (r1, r2)
    assert doctor.search("hypertension").record_ids == (r2, r3)
    assert doctor.search("hba1c").record_ids == (r1,)
    assert doctor.search("statin").record_ids == (r3,)
    assert doctor.search("asthma").record_ids == ()
    assert doctor.search("diabetes").record_ids == (r1, r2)  # searching again changes nothing


def test_search_normalises_keywords(people: dict[str, MedchainClient]) -> None:
    doctor, patient = people["doctor"], people["patient"]
    record = doctor.put_record(
        patient.address, _example("condition.json"), keywords=["  Type 2   DIABETES "]
    )
    for spelling in ("type 2 diabetes", "TYPE 2 DIABETES", "type\t2 diabetes\n"):
        assert doctor.search(spelling).record_ids == (record,)
    with pytest.raises(InvalidKeyword):
        doctor.search("   ")


def test_a_patient_indexes_its_own_records(people: dict[str, MedchainClient]) -> None:
    doctor, patient = people["doctor"], people["patient"]
    r1, r2, _ = _three_records(doctor, patient)
    assert patient.search("diabetes").record_ids == ()  # the doctor's index, not hers
    patient.index_records({r1: ["my-sugar"], r2: ["my-sugar", "my-heart"]})
    assert patient.search("MY-SUGAR").record_ids == (r1, r2)
    assert patient.search("my-heart").record_ids == (r2,)
    assert doctor.search("my-sugar").record_ids == ()


def test_tombstones_remove_a_record_until_it_is_added_again(
    people: dict[str, MedchainClient],
) -> None:
    doctor, patient = people["doctor"], people["patient"]
    r1, r2, r3 = _three_records(doctor, patient)
    doctor.delete_from_index(r2, ["hypertension"])
    assert doctor.search("hypertension").record_ids == (r3,)
    assert doctor.search("diabetes").record_ids == (r1, r2)  # other keywords untouched
    doctor.index_record(r2, ["hypertension"])
    assert doctor.search("hypertension").record_ids == (r3, r2)


def test_forward_privacy_an_old_token_misses_later_entries(
    spy: Spy, people: dict[str, MedchainClient]
) -> None:
    doctor, patient = people["doctor"], people["patient"]
    r1, r2, _ = _three_records(doctor, patient)
    assert doctor.search("diabetes").record_ids == (r1, r2)
    owner, old_token = spy.requests[-1]
    old_answer = spy.search(owner, old_token)
    labels_before = set(spy.index_labels())

    r4 = doctor.put_record(patient.address, _example("condition.json"), keywords=["diabetes"])
    new_labels = set(spy.index_labels()) - labels_before
    assert len(new_labels) == 1
    # what the node could do with the old token: replay it, or derive labels from it
    assert spy.search(owner, old_token) == old_answer
    derivable = {entry_label(k, i) for k in old_token.label_keys for i in range(1_000)}
    assert not new_labels & derivable
    # the owner still finds everything, with a token the node has not seen before
    assert doctor.search("diabetes").record_ids == (r1, r2, r4)
    _, new_token = spy.requests[-1]
    assert len(new_token.label_keys) == len(old_token.label_keys) + 1
    assert new_token.label_keys[: len(old_token.label_keys)] == old_token.label_keys


def test_the_node_gets_label_keys_only(spy: Spy, people: dict[str, MedchainClient]) -> None:
    doctor, patient = people["doctor"], people["patient"]
    _three_records(doctor, patient)
    doctor.search("diabetes")
    owner, token = spy.requests[-1]
    key = search_key(doctor.keys)
    assert owner == doctor.address
    assert token.label_keys == (epoch_keys(key, "diabetes", 0).label_key,)
    assert epoch_keys(key, "diabetes", 0).value_key not in encode(token)


def test_capability_is_scoped_to_its_keywords(spy: Spy, people: dict[str, MedchainClient]) -> None:
    doctor, patient, doctor2 = people["doctor"], people["patient"], people["doctor2"]
    r1, r2, r3 = _three_records(doctor, patient)
    capability = doctor.grant_search(doctor2.address, ["Diabetes"])
    assert doctor2.search_with_capability(capability, "diabetes").record_ids == (r1, r2)
    with pytest.raises(NoSearchCapability, match="does not cover"):
        doctor2.search_with_capability(capability, "hypertension")
    # the label keys it holds find nothing under another keyword's labels
    _, token = spy.requests[-1]
    hypertension = doctor.search("hypertension")
    assert hypertension.record_ids == (r2, r3)
    _, other = spy.requests[-1]
    assert not set(token.label_keys) & set(other.label_keys)
    # entries added after the grant are not covered
    doctor.put_record(patient.address, _example("condition.json"), keywords=["diabetes"])
    assert doctor2.search_with_capability(capability, "diabetes").record_ids == (r1, r2)


def test_only_the_reader_opens_a_capability(people: dict[str, MedchainClient]) -> None:
    doctor, patient = people["doctor"], people["patient"]
    doctor2, stranger = people["doctor2"], people["stranger"]
    _three_records(doctor, patient)
    capability = doctor.grant_search(doctor2.address, ["diabetes"])
    with pytest.raises(InvalidCapability, match="granted to"):
        stranger.search_with_capability(capability, "diabetes")
    # rewriting the reader field does not help: the key is sealed to doctor2
    forged = capability.replace(doctor2.address, stranger.address)
    with pytest.raises(InvalidCapability, match="does not open"):
        stranger.search_with_capability(forged, "diabetes")
    with pytest.raises(InvalidCapability, match="not a medchain search capability"):
        doctor2.search_with_capability(b"garbage", "diabetes")
    with pytest.raises(NoSearchCapability, match="only your own index"):
        doctor2.search("diabetes", owner=doctor.address)


def test_decrypt_opens_what_the_caller_may_read(people: dict[str, MedchainClient]) -> None:
    doctor, patient, doctor2 = people["doctor"], people["patient"], people["doctor2"]
    r1, r2, _ = _three_records(doctor, patient)
    mine = doctor.search("diabetes", decrypt=True)
    assert [o.record_id for o in mine.opened] == [r1, r2] and not mine.skipped
    assert mine.opened[0].resource["resourceType"] == "Condition"
    patient.grant(r2, doctor2.address)
    theirs = doctor2.search_with_capability(
        doctor.grant_search(doctor2.address, ["diabetes"]), "diabetes", decrypt=True
    )
    assert [o.record_id for o in theirs.opened] == [r2]
    assert [s.record_id for s in theirs.skipped] == [r1]
    assert "ask the patient to grant access" in theirs.skipped[0].reason


def test_namespaces_one_account_cannot_touch_anothers_index(
    spy: Spy, people: dict[str, MedchainClient]
) -> None:
    doctor, patient, doctor2 = people["doctor"], people["patient"], people["doctor2"]
    r1, r2, _ = _three_records(doctor, patient)
    assert doctor2.search("diabetes").record_ids == ()
    # doctor2 replays doctor's very entries: they land in doctor2's namespace
    theirs = [decode(IndexArgs, tx.args) for tx in spy.txs if tx.method == "search.index"]
    for args in theirs:
        doctor2.send("search.index", args)
    assert doctor.search("diabetes").record_ids == (r1, r2)
    assert doctor2.search("diabetes").record_ids == ()  # under its own key: other labels


def test_padding_hides_counts_within_a_bucket(spy: Spy, people: dict[str, MedchainClient]) -> None:
    doctor, patient = people["doctor"], people["patient"]
    records = [doctor.put_record(patient.address, _example("condition.json")) for _ in range(7)]
    batch = {
        r: [w for n, w in ((5, "five"), (6, "six"), (7, "seven")) if i < n]
        for i, r in enumerate(records)
    }
    doctor.index_records(batch, pad=True)
    sizes = []
    for word, count in (("five", 5), ("six", 6), ("seven", 7)):
        assert len(doctor.search(word).record_ids) == count
        owner, token = spy.requests[-1]
        sizes.append(sum(len(v) for v in spy.search(owner, token)))
    assert sizes == [8, 8, 8]


def test_without_padding_result_sizes_are_exact(
    spy: Spy, people: dict[str, MedchainClient]
) -> None:
    doctor, patient = people["doctor"], people["patient"]
    records = [doctor.put_record(patient.address, _example("condition.json")) for _ in range(5)]
    doctor.index_records({r: ["five"] for r in records})
    doctor.search("five")
    owner, token = spy.requests[-1]
    assert sum(len(v) for v in spy.search(owner, token)) == 5


def test_padding_one_record_at_a_time_stays_under_double(
    spy: Spy, people: dict[str, MedchainClient]
) -> None:
    doctor, patient = people["doctor"], people["patient"]
    for n in range(1, 21):
        doctor.put_record(patient.address, _example("condition.json"), keywords=["w"], pad=True)
        assert len(doctor.search("w").record_ids) == n
        owner, token = spy.requests[-1]
        assert n <= sum(len(v) for v in spy.search(owner, token)) < 2 * n + 1


def test_state_file_persists_encrypted(tmp_path: Path, spy: Spy) -> None:
    state = search_state_path(tmp_path / "doctor.key")
    assert state == tmp_path / "doctor.key.search"
    doctor = _person(spy, Role.DOCTOR, "Dr. Who", state)
    patient = _person(spy, Role.PATIENT, "Jane")
    record = doctor.put_record(
        patient.address, _example("condition.json"), keywords=["hypertension-xyzzy"]
    )
    assert oct(state.stat().st_mode & 0o777) == "0o600"
    assert b"xyzzy" not in state.read_bytes()
    again = MedchainClient(doctor.keys, spy, state)
    before = len(spy.requests)
    assert again.search("hypertension-xyzzy").record_ids == (record,)
    assert len(spy.requests) == before + 1  # one lookup: no probing, the state was known
    stranger = MedchainClient(AccountKeys.generate(), spy, state)
    with pytest.raises(SearchStateError, match="another account"):
        stranger.search("hypertension-xyzzy")


def test_lost_state_is_rebuilt_by_probing(tmp_path: Path, spy: Spy) -> None:
    state = tmp_path / "doctor.key.search"
    doctor = _person(spy, Role.DOCTOR, "Dr. Who", state)
    patient = _person(spy, Role.PATIENT, "Jane")
    condition = _example("condition.json")
    r1 = doctor.put_record(patient.address, condition, keywords=["asthma", "copd"])
    assert doctor.search("asthma").record_ids == (r1,)  # epoch 0 revealed
    r2 = doctor.put_record(patient.address, condition, keywords=["asthma"])  # epoch 1
    state.unlink()

    rebuilt = MedchainClient(doctor.keys, spy, state)
    assert rebuilt.search("asthma").record_ids == (r1, r2)
    assert rebuilt.search("copd").record_ids == (r1,)
    assert rebuilt.search("never-indexed").record_ids == ()
    labels_seen = {
        entry_label(k, i) for _, t in spy.requests for k in t.label_keys for i in range(50)
    }
    labels_before = set(spy.index_labels())
    r3 = rebuilt.put_record(patient.address, condition, keywords=["asthma", "never-indexed"])
    new_labels = set(spy.index_labels()) - labels_before
    assert new_labels and not new_labels & labels_seen  # fresh epochs, nobody saw their keys
    assert rebuilt.search("asthma").record_ids == (r1, r2, r3)
    assert rebuilt.search("never-indexed").record_ids == (r3,)
    # and a third client, starting from nothing again, agrees
    assert MedchainClient(doctor.keys, spy).search("asthma").record_ids == (r1, r2, r3)


def test_a_stale_state_is_repaired_when_its_labels_are_taken(tmp_path: Path, spy: Spy) -> None:
    desk, laptop = tmp_path / "desk.key.search", tmp_path / "laptop.key.search"
    doctor = _person(spy, Role.DOCTOR, "Dr. Who", desk)
    patient = _person(spy, Role.PATIENT, "Jane")
    condition = _example("condition.json")
    r1 = doctor.put_record(patient.address, condition, keywords=["asthma"])
    laptop.write_bytes(desk.read_bytes())  # the state copied to a second device
    r2 = MedchainClient(doctor.keys, spy, laptop).put_record(
        patient.address, condition, keywords=["asthma"]
    )
    # the desk's next label for "asthma" is the one the laptop just used
    r3 = doctor.put_record(patient.address, condition, keywords=["asthma"])
    assert doctor.search("asthma").record_ids == (r1, r2, r3)
    laptop.unlink()  # the laptop is now the stale one; without a state it rebuilds
    assert MedchainClient(doctor.keys, spy, laptop).search("asthma").record_ids == (r1, r2, r3)


def test_put_record_refuses_bad_keywords_before_writing(
    spy: Spy, people: dict[str, MedchainClient]
) -> None:
    doctor, patient = people["doctor"], people["patient"]
    before = len(spy.txs)
    with pytest.raises(InvalidKeyword):
        doctor.put_record(patient.address, _example("condition.json"), keywords=["ok", " "])
    assert len(spy.txs) == before


def test_a_record_that_could_not_be_indexed_is_named(
    spy: Spy, people: dict[str, MedchainClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    doctor, patient = people["doctor"], people["patient"]

    def refuse(*_: object) -> None:
        raise MedchainError("the node is gone")

    monkeypatch.setattr(doctor.search_index, "write", refuse)
    with pytest.raises(RecordNotIndexed, match="is on chain but was not indexed") as caught:
        doctor.put_record(patient.address, _example("condition.json"), keywords=["asthma"])
    assert spy.record(caught.value.record_id) is not None
    monkeypatch.undo()
    doctor.index_record(caught.value.record_id, ["asthma"])
    assert doctor.search("asthma").record_ids == (caught.value.record_id,)


def test_a_refused_write_leaves_the_state_as_it_was(spy: Spy) -> None:
    doctor = _person(spy, Role.DOCTOR, "Dr. Who")
    patient = _person(spy, Role.PATIENT, "Jane")
    record = doctor.put_record(patient.address, _example("condition.json"), keywords=["asthma"])
    unregistered = MedchainClient(AccountKeys.generate(), spy)
    with pytest.raises(MedchainError, match="not registered"):
        unregistered.index_records({record: ["asthma"]})
    assert unregistered.search_index._states == {}
    assert doctor.search("asthma").record_ids == (record,)


def test_keywords_of_a_fhir_resource() -> None:
    condition = keywords_of(_example("condition.json"))
    assert condition[0] == "condition"
    for expected in ("44054006", "diabetes mellitus type 2", "4548-4", "active", "moderate"):
        assert expected in condition
    assert not any("quibbleworth" in k or "fairweather" in k for k in condition)
    observation = keywords_of(_example("observation-heart-rate.json"))
    assert {"observation", "8867-4", "heart rate", "vital-signs"} <= set(observation)
    bundle = keywords_of(_example("bundle-encounter.json"))
    assert "bundle" in bundle and len(bundle) > 3


# -- keywords never appear in clear -------------------------------------------------------

SECRET = "Hypertension-XYZZY"


def _forms(word: str) -> list[bytes]:
    spellings = {word, word.lower(), word.upper(), "xyzzy", "XYZZY"}
    return [s.encode(codec) for s in spellings for codec in ("utf-8", "utf-16-le", "utf-16-be")]


def _assert_absent(data: bytes, where: str) -> None:
    for form in _forms(SECRET):
        assert form not in data, f"{form!r} found in {where}"


def test_keywords_never_appear_in_clear(tmp_path: Path) -> None:
    validator = AccountKeys.generate()
    home = tmp_path / "chain"
    chain = LocalChain.create(home, _genesis(validator), validator)
    spy = Spy(chain)
    state = tmp_path / "doctor.key.search"
    doctor = _person(spy, Role.DOCTOR, "Dr. Who", state)
    patient = _person(spy, Role.PATIENT, "Jane")
    reader = _person(spy, Role.DOCTOR, "Dr. Reader")
    resource = _example("condition.json")
    resource["code"]["coding"][0]["display"] = SECRET  # in the record too, encrypted
    r1 = doctor.put_record(patient.address, resource, keywords=[SECRET, "other"])
    r2 = doctor.put_record(patient.address, resource, keywords=[SECRET], pad=True)
    patient.index_record(r1, [SECRET.lower()])
    doctor.delete_from_index(r2, [SECRET])
    assert doctor.search(SECRET).record_ids == (r1,)
    capability = doctor.grant_search(reader.address, [SECRET])
    assert reader.search_with_capability(capability, SECRET).record_ids == (r1,)
    assert patient.search(SECRET).record_ids == (r1,)

    def everything_on_disk(while_open: bool) -> None:
        files = [p for p in home.rglob("*") if p.is_file()]
        assert any(p.name.endswith("-wal") for p in files) is while_open
        assert any("blobs" in p.parts for p in files)
        for path in files:
            _assert_absent(path.read_bytes(), str(path))

    everything_on_disk(while_open=True)  # the WAL holds the latest blocks
    for tx in spy.txs:
        _assert_absent(encode(tx), f"transaction {tx.method}")
    for owner, token in spy.requests:
        _assert_absent(owner + encode(token), "a search request")
    _assert_absent(state.read_bytes(), "the search state file")
    _assert_absent(capability, "the capability")
    height = chain.height
    chain.close()
    everything_on_disk(while_open=False)  # the WAL was checkpointed into the database
    reopened = LocalChain.open(home)
    assert reopened.height == height
    for h in range(1, height + 1):
        block = reopened.block_at(h)
        assert block is not None
        _assert_absent(encode(block), f"block {h}")
    reopened.close()

"""Break-glass: four organisations share a patient's emergency key 3-of-4; a credentialed
clinician opens the set and reads it after three answers, never with two, never a record
written after the opening, never after the expiry, and no organisation alone can open it.
Every refusal leaves the state as it was (balances and nonces aside)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Any

import pytest

from medchain.app import (
    AddProxyArgs,
    AddVersionArgs,
    AnswerArgs,
    CreateRecordArgs,
    CredentialActionArgs,
    CredentialRole,
    EmergencyPolicyArgs,
    EmergencyRequest,
    EmergencyWrapArgs,
    OpenArgs,
    ProxyRelation,
    ProxyScope,
    Role,
    WrapRecordArgs,
    emergency_answers,
    emergency_context,
    emergency_entries,
    emergency_requests_by_org,
    emergency_requests_of,
    get_emergency_request,
    get_policy,
    get_record,
    new_record_id,
    new_request_id,
    notifications_of,
    pending_emergency_requests,
)
from medchain.client import (
    EmergencyNotOpen,
    answer_args,
    emergency_content_keys,
    policy_args,
    valid_partials,
)
from medchain.client._emergency import answer_context, open_share, share_context
from medchain.client._emergency_wraps import emergency_wrap_args
from medchain.client._envelope import unwrap_for, version_context
from medchain.crypto import (
    AccountKeys,
    DecryptionFailed,
    EmergencyWrap,
    combine_points,
    decrypt_content,
    encrypt_content,
    format_address,
    interpolate_points,
    new_content_key,
    open_emergency_wrap,
    partial_decrypt,
    sha256,
    unwrap_key,
)
from medchain.offchain import cid_for
from medchain.types import ChainParams, Receipt

from .conftest import OrgKeys, World, fake_wraps, make_org, make_world

ORG_IDS = ("clinic-c", "hospital-a", "hospital-b", "lab-d")
REASON = "unconscious on arrival, suspected anaphylaxis"
WINDOW_MS = 50
"""The test chain's answer window: blocks are 1 ms apart in the test world."""


@dataclass
class BreakGlass:
    world: World
    orgs: dict[str, OrgKeys]
    patient: AccountKeys
    clinician: AccountKeys
    ciphertexts: dict[bytes, bytes] = field(default_factory=dict)
    """What each record's CID names (a blob store would hold it)."""
    resources: dict[bytes, dict[str, Any]] = field(default_factory=dict)
    content_keys: dict[bytes, bytes] = field(default_factory=dict)

    @property
    def state(self) -> Any:
        return self.world.ledger.state

    def put(self, resource_type: str, code: str, wrap: bool = True) -> bytes:
        """The patient writes a record as the client does: encrypted under a fresh key,
        wrapped (when `wrap`) to the emergency key."""
        record_id = new_record_id(self.patient.address, self.world.nonces[self.patient.address])
        key = new_content_key()
        resource = {"resourceType": resource_type, "code": code}
        ciphertext = encrypt_content(
            key, json.dumps(resource).encode(), version_context(record_id, 1)
        )
        policy = get_policy(self.state, self.patient.address)
        on = wrap and policy is not None and policy.enabled
        emergency = (emergency_wrap_args(policy, key, record_id, 1),) if on and policy else ()
        self.world.ok(
            self.patient, "records.create", self.create_args(resource_type, ciphertext, emergency)
        )
        self.ciphertexts[record_id] = ciphertext
        self.resources[record_id] = resource
        self.content_keys[record_id] = key
        return record_id

    def create_args(
        self, resource_type: str, ciphertext: bytes, emergency: tuple[EmergencyWrapArgs, ...]
    ) -> CreateRecordArgs:
        return CreateRecordArgs(
            self.patient.address,
            resource_type,
            cid_for(ciphertext),
            sha256(ciphertext),
            fake_wraps(self.patient.address),
            emergency,
        )

    def open(self, opener: AccountKeys | None = None) -> EmergencyRequest:
        opener = opener or self.clinician
        request_id = new_request_id(opener.address, self.world.nonces.get(opener.address, 0))
        self.world.ok(opener, "emergency.open", OpenArgs(self.patient.address, REASON))
        return self.request(request_id)

    def policy(self, threshold: int, *org_ids: str) -> EmergencyPolicyArgs:
        """A fresh policy sharing the key among `org_ids` (all four by default)."""
        orgs = [self.orgs[o] for o in org_ids or ORG_IDS]
        keys = {o.org_id: o.account.encryption_public_key for o in orgs}
        return policy_args(self.patient.address, keys, threshold)

    def request(self, request_id: bytes) -> EmergencyRequest:
        found = get_emergency_request(self.state, request_id)
        assert found is not None
        return found

    def answer(self, request: EmergencyRequest, org_id: str) -> Receipt:
        org = self.orgs[org_id]
        args = answer_args(org.account, request, org_id, self.clinician.encryption_public_key)
        return self.world.call(org.account, "emergency.answer", args)

    def read(self, request: EmergencyRequest) -> list[dict[str, Any]]:
        """What the clinician decrypts from the chain's answers and the records' blobs."""
        request = self.request(request.request_id)
        keys = emergency_content_keys(
            self.clinician, request, emergency_answers(self.state, request)
        )
        return [
            json.loads(
                decrypt_content(
                    key,
                    self.ciphertexts[item.record_id],
                    version_context(item.record_id, item.version),
                )
            )
            for item, key in zip(request.items, keys, strict=True)
        ]


@pytest.fixture
def bg(validator: AccountKeys, rich: AccountKeys) -> BreakGlass:
    orgs = {org_id: make_org(org_id) for org_id in ORG_IDS}
    params = ChainParams(unbonding_blocks=3, emergency_window_ms=WINDOW_MS)
    world = make_world(tuple(orgs[o] for o in ORG_IDS), validator, rich, params)
    patient = AccountKeys.generate()
    world.register(patient, Role.PATIENT)
    clinician = world.staff(CredentialRole.DOCTOR, "Dr Ana Ruiz, emergency medicine")
    bg = BreakGlass(world, orgs, patient, clinician)
    world.ok(patient, "emergency.set_policy", bg.policy(3))
    return bg


def refused(world: World, keys: AccountKeys, method: str, args: object, code: str) -> str:
    """Call, expect a refusal with `code`, check that nothing but balances and nonces
    changed, and return the message."""
    before = world.entries_but_accounts()
    receipt = world.call(keys, method, args)
    assert not receipt.ok and receipt.code == code, (receipt.code, receipt.message)
    assert world.entries_but_accounts() == before
    return receipt.message


# -- opening and reading ----------------------------------------------------------------


def test_three_of_four_answers_open_the_set(bg: BreakGlass) -> None:
    allergy = bg.put("AllergyIntolerance", "penicillin")
    condition = bg.put("Condition", "asthma")
    request = bg.open()
    assert [i.record_id for i in request.items] == [allergy, condition]
    assert request.threshold == 3
    assert request.clinician_org == bg.world.orgs[0].org_id
    for org_id in ("hospital-a", "clinic-c", "lab-d"):
        assert bg.answer(request, org_id).ok
    assert bg.read(request) == [bg.resources[allergy], bg.resources[condition]]


def test_two_answers_do_not_open_the_set(bg: BreakGlass) -> None:
    bg.put("AllergyIntolerance", "penicillin")
    request = bg.open()
    for org_id in ("hospital-a", "hospital-b"):
        assert bg.answer(request, org_id).ok
    with pytest.raises(EmergencyNotOpen, match="2 of the 3"):
        bg.read(request)
    request = bg.request(request.request_id)
    partials = valid_partials(bg.clinician, request, emergency_answers(bg.state, request))
    assert sorted(partials) == [2, 3]  # both answers are valid, just too few
    item = request.items[0]
    guess = combine_points({i: p[0] for i, p in partials.items()}, 2)
    with pytest.raises(DecryptionFailed):
        open_emergency_wrap(
            guess,
            EmergencyWrap(item.ephemeral, item.sealed_key),
            emergency_context(item.record_id, item.version),
        )


def test_a_record_written_after_the_opening_stays_closed(bg: BreakGlass) -> None:
    before = bg.put("AllergyIntolerance", "penicillin")
    request = bg.open()
    after = bg.put("MedicationStatement", "warfarin")
    for org_id in ("hospital-a", "hospital-b", "lab-d"):
        assert bg.answer(request, org_id).ok
    assert [i.record_id for i in bg.request(request.request_id).items] == [before]
    assert bg.read(request) == [bg.resources[before]]
    # every point the clinician can combine opens only the snapshotted wrap
    request = bg.request(request.request_id)
    partials = valid_partials(bg.clinician, request, emergency_answers(bg.state, request))
    shared = combine_points({i: p[0] for i, p in partials.items()}, 3)
    (late,) = [e for e in emergency_entries(bg.state, bg.patient.address) if e.record_id == after]
    with pytest.raises(DecryptionFailed):
        open_emergency_wrap(
            shared, EmergencyWrap(late.ephemeral, late.sealed_key), emergency_context(after, 1)
        )


def test_the_opening_is_audited_for_patient_and_organisation(bg: BreakGlass) -> None:
    bg.put("Condition", "epilepsy")
    request = bg.open()
    assert bg.answer(request, "lab-d").ok
    assert emergency_requests_of(bg.state, bg.patient.address) == [bg.request(request.request_id)]
    org_id = bg.world.orgs[0].org_id
    assert [r.request_id for r in emergency_requests_by_org(bg.state, org_id)] == [
        request.request_id
    ]
    assert emergency_requests_by_org(bg.state, "lab-d") == []
    notes = notifications_of(bg.state, bg.patient.address)
    assert [(n.kind, n.actor, n.org_id) for n in notes] == [
        ("emergency.opened", bg.clinician.address, org_id),
        ("emergency.answered", bg.orgs["lab-d"].account.address, "lab-d"),
    ]
    assert notes[0].detail == REASON and notes[1].detail == "1 of 3"
    now = bg.world.now_ms()
    assert [r.request_id for r in pending_emergency_requests(bg.state, "hospital-a", now)] == [
        request.request_id
    ]
    assert pending_emergency_requests(bg.state, "lab-d", now) == []


def test_the_open_and_answer_events_name_everyone(bg: BreakGlass) -> None:
    bg.put("Immunization", "tetanus")
    opener = bg.clinician
    receipt = bg.world.ok(opener, "emergency.open", OpenArgs(bg.patient.address, REASON))
    (event,) = [e for e in receipt.events if e.kind == "emergency.opened"]
    shown = {a.key: a.value for a in event.attributes}
    assert shown["items"] == "1" and shown["org"] == bg.world.orgs[0].org_id


# -- refusals ---------------------------------------------------------------------------


def test_answers_after_the_expiry_are_refused(bg: BreakGlass) -> None:
    bg.put("AllergyIntolerance", "latex")
    request = bg.open()
    assert bg.answer(request, "hospital-a").ok
    bg.world.empty_blocks(WINDOW_MS)
    org = bg.orgs["hospital-b"]
    args = answer_args(org.account, request, "hospital-b", bg.clinician.encryption_public_key)
    message = refused(bg.world, org.account, "emergency.answer", args, "emergency_error")
    assert "expired" in message
    assert pending_emergency_requests(bg.state, "hospital-b", bg.world.now_ms()) == []


def test_a_clinician_without_a_valid_credential_cannot_open(bg: BreakGlass) -> None:
    bg.put("AllergyIntolerance", "latex")
    stranger = AccountKeys.generate()
    bg.world.register(stranger, Role.PATIENT)
    args = OpenArgs(bg.patient.address, REASON)
    refused(bg.world, stranger, "emergency.open", args, "not_credentialed")
    admin = bg.world.orgs[0].admin
    bg.world.ok(admin, "credentials.suspend", CredentialActionArgs(bg.clinician.address, "leave"))
    message = refused(bg.world, bg.clinician, "emergency.open", args, "not_credentialed")
    assert "suspended" in message


def test_answers_stop_when_the_opener_loses_the_credential(bg: BreakGlass) -> None:
    bg.put("AllergyIntolerance", "latex")
    request = bg.open()
    admin = bg.world.orgs[0].admin
    bg.world.ok(admin, "credentials.revoke", CredentialActionArgs(bg.clinician.address, "fraud"))
    org = bg.orgs["hospital-b"]
    args = answer_args(org.account, request, "hospital-b", bg.clinician.encryption_public_key)
    message = refused(bg.world, org.account, "emergency.answer", args, "emergency_error")
    assert "no longer holds a valid credential" in message


def test_each_organisation_answers_once_and_only_its_account(bg: BreakGlass) -> None:
    bg.put("AllergyIntolerance", "latex")
    request = bg.open()
    assert bg.answer(request, "hospital-a").ok
    org = bg.orgs["hospital-a"]
    args = answer_args(org.account, request, "hospital-a", bg.clinician.encryption_public_key)
    message = refused(bg.world, org.account, "emergency.answer", args, "emergency_error")
    assert "already answered" in message
    refused(bg.world, org.admin, "emergency.answer", args, "emergency_error")
    refused(bg.world, bg.clinician, "emergency.answer", args, "emergency_error")


def test_an_answer_of_the_wrong_size_is_refused(bg: BreakGlass) -> None:
    bg.put("AllergyIntolerance", "latex")
    bg.put("Condition", "asthma")
    request = bg.open()
    org = bg.orgs["lab-d"]
    args = answer_args(org.account, request, "lab-d", bg.clinician.encryption_public_key)
    short = replace(args, sealed_partials=args.sealed_partials[:-96])
    message = refused(bg.world, org.account, "emergency.answer", short, "emergency_error")
    assert "2 partials" in message
    bad_wrap = AnswerArgs(args.request_id, args.wrapped_key[:-1], args.sealed_partials)
    refused(bg.world, org.account, "emergency.answer", bad_wrap, "emergency_error")


def test_there_is_nothing_to_open_without_a_policy_or_records(bg: BreakGlass) -> None:
    args = OpenArgs(bg.patient.address, REASON)
    message = refused(bg.world, bg.clinician, "emergency.open", args, "emergency_error")
    assert "holds no records" in message
    refused(
        bg.world,
        bg.clinician,
        "emergency.open",
        OpenArgs(bg.patient.address, " "),
        "emergency_error",
    )
    bg.put("AllergyIntolerance", "latex")
    bg.world.ok(bg.patient, "emergency.set_policy", EmergencyPolicyArgs(False, (), b"", 0, ()))
    message = refused(bg.world, bg.clinician, "emergency.open", args, "emergency_error")
    assert "no emergency policy on" in message


# -- no single organisation -------------------------------------------------------------


def test_one_organisation_with_everything_on_chain_cannot_open(bg: BreakGlass) -> None:
    """hospital-a holds its share and reads the whole state: the policy's public key and
    commitments, the request's wraps, every sealed share and even the other answers'
    ciphertexts. Nothing it can compute from them opens the wrap."""
    bg.put("AllergyIntolerance", "penicillin")
    request = bg.open()
    for org_id in ("hospital-b", "lab-d"):
        assert bg.answer(request, org_id).ok
    request = bg.request(request.request_id)
    org = bg.orgs["hospital-a"]
    index = [s.org_id for s in request.shares].index("hospital-a") + 1
    share = open_share(org.account, bg.patient.address, index, request.shares[index - 1])
    item = request.items[0]
    wrap = EmergencyWrap(item.ephemeral, item.sealed_key)
    context = emergency_context(item.record_id, item.version)
    own_partial, _ = partial_decrypt(share, item.ephemeral)
    commitments = {i: s.commitment for i, s in enumerate(request.shares, start=1)}
    others = [i for i in commitments if i != index]
    candidates = [
        own_partial,  # its share as if it were the key
        combine_points({index: own_partial}, 1),
        # its partial interpolated with two public commitments in place of partials
        combine_points({index: own_partial, **{i: commitments[i] for i in others[:2]}}, 3),
        interpolate_points(commitments, 3, at=0),  # the public key itself
    ]
    for candidate in candidates:
        with pytest.raises(DecryptionFailed):
            open_emergency_wrap(candidate, wrap, context)
    for other in request.shares:  # the other shares are sealed to other accounts
        if other.org_id != "hospital-a":
            with pytest.raises(DecryptionFailed):
                unwrap_key(
                    other.sealed,
                    org.account.encryption_private_key,
                    share_context(bg.patient.address, other.org_id),
                )
    for answer in emergency_answers(bg.state, request):  # answers are the clinician's
        with pytest.raises(DecryptionFailed):
            valid_partials_for(org.account, request, answer)


def valid_partials_for(keys: AccountKeys, request: EmergencyRequest, answer: Any) -> None:
    """Open one answer with `keys` as the clinician would; DecryptionFailed if not theirs."""
    context = answer_context(request.request_id, answer.org_id)
    decrypt_content(unwrap_for(keys, answer.wrapped_key, context), answer.sealed_partials, context)


@pytest.mark.parametrize("threshold", [1, 5, 0])
def test_the_policy_refuses_a_threshold_one_party_could_meet_or_none_could(
    bg: BreakGlass, threshold: int
) -> None:
    bad = replace(bg.policy(3), threshold=threshold)
    message = refused(bg.world, bg.patient, "emergency.set_policy", bad, "emergency_error")
    assert "no single organisation can open it alone" in message


def test_the_policy_must_share_among_exactly_the_members(bg: BreakGlass) -> None:
    three = bg.policy(2, *ORG_IDS[:3])
    message = refused(bg.world, bg.patient, "emergency.set_policy", three, "emergency_error")
    assert "exactly the member organisations" in message
    full = bg.policy(3)
    swapped = replace(full, shares=(full.shares[1], full.shares[0], *full.shares[2:]))
    refused(bg.world, bg.patient, "emergency.set_policy", swapped, "emergency_error")


def test_the_policy_refuses_commitments_off_the_sharing(bg: BreakGlass) -> None:
    one, other = bg.policy(3), bg.policy(3)
    mixed = replace(one, shares=(other.shares[0], *one.shares[1:]))
    message = refused(bg.world, bg.patient, "emergency.set_policy", mixed, "emergency_error")
    assert "do not lie on one 3-of-4 sharing" in message
    for bad in (
        replace(one, public_key=other.public_key),
        replace(one, resource_types=("Condition", "AllergyIntolerance")),
        replace(one, enabled=False),
    ):
        refused(bg.world, bg.patient, "emergency.set_policy", bad, "emergency_error")
    refused(bg.world, AccountKeys.generate(), "emergency.set_policy", one, "not_registered")


# -- records and the set ----------------------------------------------------------------


def test_a_record_of_a_set_type_needs_its_emergency_wrap(bg: BreakGlass) -> None:
    args = bg.create_args("AllergyIntolerance", b"sealed", ())
    message = refused(bg.world, bg.patient, "records.create", args, "emergency_error")
    assert "wrap this version's content key for the emergency key" in message
    bg.put("Observation", "heart rate", wrap=False)  # observations join only when wrapped
    bg.put("Observation", "blood group")
    assert bg.put("Patient", "demographics", wrap=False)


def test_a_new_version_needs_its_own_wrap_and_replaces_the_old_in_the_set(
    bg: BreakGlass,
) -> None:
    record_id = bg.put("AllergyIntolerance", "penicillin")
    key = new_content_key()
    resource = {"resourceType": "AllergyIntolerance", "code": "penicillin, severe"}
    ciphertext = encrypt_content(key, json.dumps(resource).encode(), version_context(record_id, 2))
    cid, digest = cid_for(ciphertext), sha256(ciphertext)
    bare = AddVersionArgs(record_id, cid, digest, fake_wraps(bg.patient.address))
    refused(bg.world, bg.patient, "records.add_version", bare, "emergency_error")
    policy = get_policy(bg.state, bg.patient.address)
    assert policy is not None
    wrapped = replace(bare, emergency=(emergency_wrap_args(policy, key, record_id, 2),))
    bg.world.ok(bg.patient, "records.add_version", wrapped)
    bg.ciphertexts[record_id] = ciphertext
    request = bg.open()
    assert [(i.record_id, i.version) for i in request.items] == [(record_id, 2)]
    for org_id in ORG_IDS[1:]:
        assert bg.answer(request, org_id).ok
    assert bg.read(request) == [resource]


def test_a_wrap_outside_the_set_or_malformed_is_refused(bg: BreakGlass) -> None:
    policy = get_policy(bg.state, bg.patient.address)
    assert policy is not None
    record_id = new_record_id(bg.patient.address, bg.world.nonces[bg.patient.address])
    wrap = emergency_wrap_args(policy, new_content_key(), record_id, 1)
    outside = bg.create_args("Patient", b"sealed", (wrap,))
    refused(bg.world, bg.patient, "records.create", outside, "emergency_error")
    for bad in (
        replace(wrap, ephemeral=bytes(32)),
        replace(wrap, sealed_key=wrap.sealed_key[:-1]),
    ):
        args = bg.create_args("Condition", b"sealed", (bad,))
        refused(bg.world, bg.patient, "records.create", args, "emergency_error")
    twice = bg.create_args("Condition", b"sealed", (wrap, wrap))
    refused(bg.world, bg.patient, "records.create", twice, "emergency_error")


def test_the_owner_wraps_an_existing_record_into_the_set(bg: BreakGlass) -> None:
    bg.world.ok(bg.patient, "emergency.set_policy", EmergencyPolicyArgs(False, (), b"", 0, ()))
    old = bg.put("MedicationStatement", "insulin")
    bg.world.ok(bg.patient, "emergency.set_policy", bg.policy(3))
    policy = get_policy(bg.state, bg.patient.address)
    assert policy is not None
    assert get_record(bg.state, old) is not None
    args = WrapRecordArgs(old, emergency_wrap_args(policy, bg.content_keys[old], old, 1))
    refused(bg.world, bg.clinician, "emergency.wrap", args, "not_owner")
    bg.world.ok(bg.patient, "emergency.wrap", args)
    request = bg.open()
    for org_id in ORG_IDS[:3]:
        assert bg.answer(request, org_id).ok
    assert bg.read(request) == [bg.resources[old]]


# -- proxies ----------------------------------------------------------------------------


def _proxy(bg: BreakGlass, *scopes: ProxyScope) -> AccountKeys:
    parent = AccountKeys.generate()
    bg.world.register(parent, Role.PATIENT)
    args = AddProxyArgs(parent.address, ProxyRelation.PARENT, tuple(scopes), 0)
    bg.world.ok(bg.patient, "proxies.add", args)
    return parent


def test_a_grant_proxy_sets_the_policy_and_wraps_for_the_patient(bg: BreakGlass) -> None:
    bg.world.ok(bg.patient, "emergency.set_policy", EmergencyPolicyArgs(False, (), b"", 0, ()))
    record_id = bg.put("Immunization", "measles", wrap=False)  # before the policy
    parent = _proxy(bg, ProxyScope.GRANT)
    args = replace(bg.policy(2), patient=bg.patient.address)
    receipt = bg.world.ok(parent, "emergency.set_policy", args)
    (event,) = [e for e in receipt.events if e.kind == "emergency.policy_set"]
    shown = {a.key: a.value for a in event.attributes}
    assert (shown["proxy"], shown["threshold"]) == (format_address(parent.address), "2")
    policy = get_policy(bg.state, bg.patient.address)
    assert policy is not None and policy.set_by == parent.address
    assert get_policy(bg.state, parent.address) is None
    key = bg.content_keys[record_id]
    wrap = WrapRecordArgs(record_id, emergency_wrap_args(policy, key, record_id, 1))
    bg.world.ok(parent, "emergency.wrap", wrap)
    request = bg.open()
    assert [i.record_id for i in request.items] == [record_id]


def test_a_proxy_without_grant_cannot_set_the_policy(bg: BreakGlass) -> None:
    reader = _proxy(bg, ProxyScope.READ)
    args = replace(bg.policy(3), patient=bg.patient.address)
    message = refused(bg.world, reader, "emergency.set_policy", args, "not_a_proxy")
    assert "grant" in message
    stranger = AccountKeys.generate()
    bg.world.register(stranger, Role.PATIENT)
    refused(bg.world, stranger, "emergency.set_policy", args, "not_a_proxy")

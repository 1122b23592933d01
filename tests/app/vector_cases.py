"""The cases of the contract state-transition vectors (`make_vectors` writes them):
for every contract method its success and its main refusals, each building its
pre-state with ordinary transactions on a fresh ledger from fixed keys and returning
the transaction under test."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from medchain.app import (
    DEFAULT_EMERGENCY_TYPES,
    PARTIAL_SIZE,
    AddProxyArgs,
    AddVersionArgs,
    AmountArgs,
    AnonSubmitArgs,
    AnswerArgs,
    ApproveArgs,
    ApproveRecoveryArgs,
    AttestArgs,
    Bundle,
    ClearRecoveryPolicyArgs,
    CloseScopeArgs,
    CommitBatchArgs,
    CommitHeadArgs,
    CreateRecordArgs,
    CredentialActionArgs,
    CredentialRole,
    DeviceKind,
    DeviceOffence,
    DeviceState,
    EmergencyPolicyArgs,
    EmergencyWrapArgs,
    EraseArgs,
    GrantConsentArgs,
    IndexArgs,
    IndexEntry,
    IssueArgs,
    Ledger,
    NoArgs,
    OpenArgs,
    OpenScopeArgs,
    OrganisationSpec,
    OrgKind,
    ProposalAction,
    ProposeArgs,
    ProxyRelation,
    ProxyScope,
    PurposeOfUse,
    RecoveryRequestArgs,
    RegisterArgs,
    RegisterDeviceArgs,
    RegisterGatewayArgs,
    RelabelArgs,
    RemoveProxyArgs,
    ReportArgs,
    RequestRecoveryArgs,
    ResearchGrantArgs,
    ResearchRevokeArgs,
    RevokeConsentArgs,
    RevokeGatewayArgs,
    RewrapArgs,
    Role,
    RotateArgs,
    SealedShare,
    SetRecoveryPolicyArgs,
    SetStateArgs,
    SetTermsArgs,
    ShareRef,
    TransferArgs,
    UnwarrantArgs,
    UpdateProfileArgs,
    VersionWrap,
    VitalsReaderArgs,
    VoteArgs,
    WarrantArgs,
    WrapRecordArgs,
    new_record_id,
    new_recovery_id,
    new_request_id,
    registration_message,
    rotation_message,
)
from medchain.crypto import (
    CONTENT_OVERHEAD,
    LABEL_SIZE,
    SEALED_EMERGENCY_KEY_SIZE,
    VALUE_SIZE,
    WRAPPED_KEY_SIZE,
    AccountKeys,
    _threshold,
    ring_sign,
    sha256,
    share_commitment,
)
from medchain.crypto._ristretto import base_mul
from medchain.types import (
    Accusation,
    Allocation,
    ChainParams,
    EquivocationEvidence,
    Genesis,
    GenesisValidator,
    InvalidProposalEvidence,
    SignedProposal,
    Tx,
    accusation_signing_bytes,
    encode,
    proposal_signing_bytes,
)
from tests.app.conftest import CHAIN_ID, OrgKeys, World, fake_blob, fake_label, fake_wraps

NODE_URL = "http://127.0.0.1:8600"
"""Where the vectors' validators serve their disclosure logs."""

T0 = 19_844 * 86_400_000
"""2024-05-01T00:00:00Z: the day device bundles are from."""


def keys(name: str) -> AccountKeys:
    """The keys of a named actor, the same on every run."""
    seed = name.encode()
    return AccountKeys(sha256(b"vector signing " + seed), sha256(b"vector encryption " + seed))


VALIDATORS = [keys(f"validator {i}") for i in range(4)]
RICH = keys("rich")


def org_keys(org_id: str, kind: str) -> OrgKeys:
    return OrgKeys(org_id, kind, keys(f"{org_id} admin"), keys(f"{org_id} account"))


HOSPITAL = org_keys("st-mary", "hospital")
CLINIC = org_keys("north-clinic", "clinic")
"""The founding organisations: two, so a proposal needs both."""


def fresh_world() -> World:
    genesis = Genesis(
        CHAIN_ID,
        0,
        ChainParams(unbonding_blocks=3),
        (Allocation(RICH.address, 1_000_000),),
        tuple(
            GenesisValidator(k.public_key, f"v{i}", 1, HOSPITAL.org_id)
            for i, k in enumerate(VALIDATORS)
        ),
        organisations=(HOSPITAL.genesis_entry(), CLINIC.genesis_entry()),
    )
    return World(Ledger(genesis), orgs=(HOSPITAL, CLINIC))


@dataclasses.dataclass
class Case:
    method: str
    name: str
    expect: str
    """"" for success, else the receipt's refusal code or the rejection's code."""
    build: Callable[[World], Tx]


CASES: list[Case] = []


def case(method: str, name: str, expect: str = "") -> Callable[[Callable[[World], Tx]], None]:
    def register(build: Callable[[World], Tx]) -> None:
        CASES.append(Case(method, name, expect, build))

    return register


# -- actors ----------------------------------------------------------------------------


def member(world: World, name: str, role: Role) -> AccountKeys:
    """An account of `role` as the chain makes one: a patient registers itself (with a
    ring key, for anonymous scopes); a doctor is a patient the hospital credentials; a
    validator registers with the hospital's validator credential; an institution is
    the account of a research organisation that joins by proposal."""
    who = keys(name)
    if role is Role.INSTITUTION:
        world.admit(OrgKeys(name.replace(" ", "-"), "research", keys(f"{name} admin"), who))
        return who
    if role is Role.VALIDATOR:
        world.credential(who, CredentialRole.VALIDATOR, name)
        args = RegisterArgs(role, name, who.encryption_public_key, b"", who.ring_public_key)
    else:
        args = RegisterArgs(Role.PATIENT, "", who.encryption_public_key, b"", who.ring_public_key)
    world.ok(who, "registry.register", args)
    if role is Role.DOCTOR:
        world.credential(who, CredentialRole.DOCTOR, name)
    return who


def funded(world: World, name: str, amount: int = 10_000) -> AccountKeys:
    who = keys(name)
    world.ok(RICH, "accounts.transfer", TransferArgs(who.address, amount))
    return who


def record(world: World) -> tuple[AccountKeys, AccountKeys, bytes]:
    """A patient, their doctor, and a record the doctor wrote for the patient."""
    patient, doctor = member(world, "patient", Role.PATIENT), member(world, "doctor", Role.DOCTOR)
    cid, digest = fake_blob(b"record v1")
    nonce = world.nonces.get(doctor.address, 0)
    args = CreateRecordArgs(
        patient.address, "Observation", cid, digest, fake_wraps(patient.address)
    )
    world.ok(doctor, "records.create", args)
    return patient, doctor, new_record_id(doctor.address, nonce)


def wrap() -> tuple[VersionWrap, ...]:
    return (VersionWrap(1, b"\x02" * WRAPPED_KEY_SIZE),)


# -- accounts --------------------------------------------------------------------------


@case("accounts.transfer", "ok")
def _(w: World) -> Tx:
    return w.tx(RICH, "accounts.transfer", TransferArgs(keys("alice").address, 250, "rent"))


@case("accounts.transfer", "balance_too_low", "balance_too_low")
def _(w: World) -> Tx:
    return w.tx(RICH, "accounts.transfer", TransferArgs(keys("alice").address, 2_000_000))


@case("accounts.transfer", "nonce_reused", "nonce_reused")
def _(w: World) -> Tx:
    w.ok(RICH, "accounts.transfer", TransferArgs(keys("alice").address, 1))
    return w.tx(RICH, "accounts.transfer", TransferArgs(keys("alice").address, 1), nonce=0)


@case("accounts.transfer", "wrong_chain", "wrong_chain")
def _(w: World) -> Tx:
    tx = w.tx(RICH, "accounts.transfer", TransferArgs(keys("alice").address, 1))
    return dataclasses.replace(tx, chain_id="another-chain")


# -- registry (RC) ---------------------------------------------------------------------


@case("registry.register", "ok")
def _(w: World) -> Tx:
    who = keys("patient")
    args = RegisterArgs(Role.PATIENT, "", who.encryption_public_key)
    return w.tx(who, "registry.register", args)


@case("registry.register", "self_declared_doctor", "wrong_role")
def _(w: World) -> Tx:
    who = keys("doctor")
    args = RegisterArgs(Role.DOCTOR, "Dr. Grey", who.encryption_public_key)
    return w.tx(who, "registry.register", args)


@case("registry.register", "validator_without_credential", "not_credentialed")
def _(w: World) -> Tx:
    who = keys("new validator")
    return w.tx(who, "registry.register", RegisterArgs(Role.VALIDATOR, "node", b""))


@case("registry.register", "already_registered", "already_registered")
def _(w: World) -> Tx:
    who = member(w, "patient", Role.PATIENT)
    return w.tx(who, "registry.register", RegisterArgs(Role.PATIENT, "", who.encryption_public_key))


@case("registry.register", "patient_named_in_clear", "invalid_argument")
def _(w: World) -> Tx:
    who = keys("patient")
    args = RegisterArgs(Role.PATIENT, "Jane Doe", who.encryption_public_key)
    return w.tx(who, "registry.register", args)


@case("registry.update_profile", "ok")
def _(w: World) -> Tx:
    patient = member(w, "patient", Role.PATIENT)
    return w.tx(patient, "registry.update_profile", UpdateProfileArgs("", b"sealed profile"))


@case("registry.update_profile", "not_registered", "not_registered")
def _(w: World) -> Tx:
    return w.tx(keys("nobody"), "registry.update_profile", UpdateProfileArgs("x", b""))


# -- records (MRC) ---------------------------------------------------------------------


@case("records.create", "ok")
def _(w: World) -> Tx:
    patient, doctor = member(w, "patient", Role.PATIENT), member(w, "doctor", Role.DOCTOR)
    cid, digest = fake_blob(b"record v1")
    wraps = fake_wraps(patient.address, doctor.address)
    args = CreateRecordArgs(patient.address, "Observation", cid, digest, wraps)
    return w.tx(doctor, "records.create", args)


@case("records.create", "owner_not_wrapped", "key_wrap_mismatch")
def _(w: World) -> Tx:
    patient, doctor = member(w, "patient", Role.PATIENT), member(w, "doctor", Role.DOCTOR)
    cid, digest = fake_blob(b"record v1")
    args = CreateRecordArgs(patient.address, "Observation", cid, digest, fake_wraps(doctor.address))
    return w.tx(doctor, "records.create", args)


@case("records.create", "patient_not_registered", "not_registered")
def _(w: World) -> Tx:
    doctor = member(w, "doctor", Role.DOCTOR)
    cid, digest = fake_blob(b"record v1")
    stranger = keys("stranger").address
    args = CreateRecordArgs(stranger, "Observation", cid, digest, fake_wraps(stranger))
    return w.tx(doctor, "records.create", args)


@case("records.warrant", "ok")
def _(w: World) -> Tx:
    patient, _, record_id = record(w)
    reader = member(w, "second doctor", Role.DOCTOR)
    return w.tx(patient, "records.warrant", WarrantArgs(record_id, reader.address, wrap()))


@case("records.warrant", "not_owner", "not_owner")
def _(w: World) -> Tx:
    _, doctor, record_id = record(w)
    reader = member(w, "second doctor", Role.DOCTOR)
    return w.tx(doctor, "records.warrant", WarrantArgs(record_id, reader.address, wrap()))


@case("records.unwarrant", "ok")
def _(w: World) -> Tx:
    patient, _, record_id = record(w)
    reader = member(w, "second doctor", Role.DOCTOR)
    w.ok(patient, "records.warrant", WarrantArgs(record_id, reader.address, wrap()))
    return w.tx(patient, "records.unwarrant", UnwarrantArgs(record_id, reader.address))


@case("records.unwarrant", "not_owner", "not_owner")
def _(w: World) -> Tx:
    patient, doctor, record_id = record(w)
    reader = member(w, "second doctor", Role.DOCTOR)
    w.ok(patient, "records.warrant", WarrantArgs(record_id, reader.address, wrap()))
    return w.tx(doctor, "records.unwarrant", UnwarrantArgs(record_id, reader.address))


@case("records.erase", "ok")
def _(w: World) -> Tx:
    patient, _, record_id = record(w)
    return w.tx(patient, "records.erase", EraseArgs(record_id, "no longer wanted"))


@case("records.erase", "not_owner", "not_owner")
def _(w: World) -> Tx:
    _, doctor, record_id = record(w)
    return w.tx(doctor, "records.erase", EraseArgs(record_id))


@case("records.erase", "already_erased", "record_erased")
def _(w: World) -> Tx:
    patient, _, record_id = record(w)
    w.ok(patient, "records.erase", EraseArgs(record_id))
    return w.tx(patient, "records.erase", EraseArgs(record_id))


def new_version(w: World, author: str, record_id: bytes | None = None) -> Tx:
    """A second version of the doctor's record for the patient, sent by `author`."""
    patient, doctor, created = record(w)
    cid, digest = fake_blob(b"record v2")
    target = created if record_id is None else record_id
    args = AddVersionArgs(target, cid, digest, fake_wraps(patient.address))
    return w.tx(patient if author == "patient" else doctor, "records.add_version", args)


@case("records.add_version", "ok")
def _(w: World) -> Tx:
    return new_version(w, "patient")


@case("records.add_version", "by_an_unauthorised_clinician", "not_authorised")
def _(w: World) -> Tx:
    return new_version(w, "doctor")


@case("records.add_version", "unknown_record", "unknown_record")
def _(w: World) -> Tx:
    return new_version(w, "patient", record_id=b"\x09" * 32)


@case("records.warrant", "by_a_proxy_without_grant", "not_a_proxy")
def _(w: World) -> Tx:
    patient, _, record_id = record(w)
    parent = with_proxy(w, patient, ProxyScope.READ)
    reader = member(w, "second doctor", Role.DOCTOR)
    return w.tx(parent, "records.warrant", WarrantArgs(record_id, reader.address, wrap()))


@case("records.create", "leaves_out_a_read_proxy", "reader_required")
def _(w: World) -> Tx:
    patient, doctor = member(w, "patient", Role.PATIENT), member(w, "doctor", Role.DOCTOR)
    with_proxy(w, patient, ProxyScope.READ)
    cid, digest = fake_blob(b"record v1")
    args = CreateRecordArgs(
        patient.address, "Observation", cid, digest, fake_wraps(patient.address)
    )
    return w.tx(doctor, "records.create", args)


@case("records.set_terms", "ok")
def _(w: World) -> Tx:
    patient, _, record_id = record(w)
    reader = member(w, "second doctor", Role.DOCTOR)
    w.ok(patient, "records.warrant", WarrantArgs(record_id, reader.address, wrap()))
    terms = SetTermsArgs(record_id, reader.address, (PurposeOfUse.PAYMENT,), T0)
    return w.tx(patient, "records.set_terms", terms)


@case("records.set_terms", "not_a_reader", "not_authorised")
def _(w: World) -> Tx:
    patient, _, record_id = record(w)
    stranger = member(w, "second doctor", Role.DOCTOR)
    terms = SetTermsArgs(record_id, stranger.address, (), 0)
    return w.tx(patient, "records.set_terms", terms)


# -- standing consents -----------------------------------------------------------------


def gp_consent(w: World) -> tuple[AccountKeys, AccountKeys]:
    """A patient and the GP their standing consent lets read every Observation."""
    patient, gp = member(w, "patient", Role.PATIENT), member(w, "doctor", Role.DOCTOR)
    args = GrantConsentArgs(patient.address, gp.address, ("Observation",))
    w.ok(patient, "consents.grant", args)
    return patient, gp


@case("consents.grant", "ok")
def _(w: World) -> Tx:
    patient, gp = member(w, "patient", Role.PATIENT), member(w, "doctor", Role.DOCTOR)
    args = GrantConsentArgs(
        patient.address, gp.address, ("Condition", "Observation"), expires_ms=T0
    )
    return w.tx(patient, "consents.grant", args)


@case("consents.grant", "by_a_stranger", "not_a_proxy")
def _(w: World) -> Tx:
    patient, gp = member(w, "patient", Role.PATIENT), member(w, "doctor", Role.DOCTOR)
    return w.tx(gp, "consents.grant", GrantConsentArgs(patient.address, gp.address))


@case("consents.revoke", "ok")
def _(w: World) -> Tx:
    patient, _ = gp_consent(w)
    return w.tx(patient, "consents.revoke", RevokeConsentArgs(1))


@case("consents.revoke", "by_its_reader", "not_a_proxy")
def _(w: World) -> Tx:
    _, gp = gp_consent(w)
    return w.tx(gp, "consents.revoke", RevokeConsentArgs(1))


@case("records.create", "leaves_out_a_consent_reader", "reader_required")
def _(w: World) -> Tx:
    patient, _ = gp_consent(w)
    nurse = member(w, "nurse", Role.DOCTOR)
    cid, digest = fake_blob(b"record v1")
    args = CreateRecordArgs(
        patient.address, "Observation", cid, digest, fake_wraps(patient.address, nurse.address)
    )
    return w.tx(nurse, "records.create", args)


# -- proxies ---------------------------------------------------------------------------


def with_proxy(w: World, patient: AccountKeys, *scopes: ProxyScope) -> AccountKeys:
    """A parent the patient named proxy with `scopes`, never expiring."""
    parent = member(w, "parent", Role.PATIENT)
    args = AddProxyArgs(parent.address, ProxyRelation.PARENT, scopes, 0)
    w.ok(patient, "proxies.add", args)
    return parent


@case("proxies.add", "ok")
def _(w: World) -> Tx:
    patient, parent = member(w, "patient", Role.PATIENT), member(w, "parent", Role.PATIENT)
    scopes = (ProxyScope.GRANT, ProxyScope.READ)
    args = AddProxyArgs(parent.address, ProxyRelation.PARENT, scopes, T0)
    return w.tx(patient, "proxies.add", args)


@case("proxies.add", "unregistered_proxy", "not_registered")
def _(w: World) -> Tx:
    patient = member(w, "patient", Role.PATIENT)
    args = AddProxyArgs(keys("parent").address, ProxyRelation.PARENT, (ProxyScope.READ,), 0)
    return w.tx(patient, "proxies.add", args)


@case("proxies.remove", "ok")
def _(w: World) -> Tx:
    patient = member(w, "patient", Role.PATIENT)
    parent = with_proxy(w, patient, ProxyScope.DEVICES)
    return w.tx(patient, "proxies.remove", RemoveProxyArgs(parent.address))


@case("proxies.remove", "not_a_proxy", "not_a_proxy")
def _(w: World) -> Tx:
    patient, parent = member(w, "patient", Role.PATIENT), member(w, "parent", Role.PATIENT)
    return w.tx(patient, "proxies.remove", RemoveProxyArgs(parent.address))


# -- research (ALC) --------------------------------------------------------------------


def grant_args(w: World, patient: AccountKeys, record_id: bytes, to: bytes) -> ResearchGrantArgs:
    cid, digest = fake_blob(b"deidentified " + record_id)
    return ResearchGrantArgs(record_id, to, cid, digest, fake_wraps(patient.address, to))


@case("research.grant", "ok")
def _(w: World) -> Tx:
    patient, _, record_id = record(w)
    lab = member(w, "institute", Role.INSTITUTION)
    return w.tx(patient, "research.grant", grant_args(w, patient, record_id, lab.address))


@case("research.grant", "to_a_doctor", "unknown_organisation")
def _(w: World) -> Tx:
    patient, doctor, record_id = record(w)
    return w.tx(patient, "research.grant", grant_args(w, patient, record_id, doctor.address))


@case("research.revoke", "ok")
def _(w: World) -> Tx:
    patient, _, record_id = record(w)
    lab = member(w, "institute", Role.INSTITUTION)
    w.ok(patient, "research.grant", grant_args(w, patient, record_id, lab.address))
    return w.tx(patient, "research.revoke", ResearchRevokeArgs(record_id, lab.address))


@case("research.revoke", "never_granted", "not_authorised")
def _(w: World) -> Tx:
    patient, _, record_id = record(w)
    lab = member(w, "institute", Role.INSTITUTION)
    return w.tx(patient, "research.revoke", ResearchRevokeArgs(record_id, lab.address))


# -- staking ---------------------------------------------------------------------------


@case("staking.stake", "ok")
def _(w: World) -> Tx:
    return w.tx(funded(w, "staker"), "staking.stake", AmountArgs(4_000))


@case("staking.stake", "more_than_balance", "balance_too_low")
def _(w: World) -> Tx:
    return w.tx(funded(w, "staker"), "staking.stake", AmountArgs(20_000))


@case("staking.unstake", "ok")
def _(w: World) -> Tx:
    staker = funded(w, "staker")
    w.ok(staker, "staking.stake", AmountArgs(4_000))
    return w.tx(staker, "staking.unstake", AmountArgs(1_000))


@case("staking.unstake", "more_than_staked", "stake_error")
def _(w: World) -> Tx:
    staker = funded(w, "staker")
    w.ok(staker, "staking.stake", AmountArgs(4_000))
    return w.tx(staker, "staking.unstake", AmountArgs(5_000))


@case("staking.withdraw", "ok")
def _(w: World) -> Tx:
    staker = funded(w, "staker")
    w.ok(staker, "staking.stake", AmountArgs(4_000))
    w.ok(staker, "staking.unstake", AmountArgs(1_000))
    w.empty_blocks(3)
    return w.tx(staker, "staking.withdraw", NoArgs())


@case("staking.withdraw", "still_unbonding", "stake_error")
def _(w: World) -> Tx:
    staker = funded(w, "staker")
    w.ok(staker, "staking.stake", AmountArgs(4_000))
    w.ok(staker, "staking.unstake", AmountArgs(1_000))
    return w.tx(staker, "staking.withdraw", NoArgs())


@case("staking.declare_candidate", "ok")
def _(w: World) -> Tx:
    newcomer = member(w, "new validator", Role.VALIDATOR)
    return w.tx(newcomer, "staking.declare_candidate", NoArgs())


@case("staking.declare_candidate", "already_a_candidate", "stake_error")
def _(w: World) -> Tx:
    return w.tx(VALIDATORS[1], "staking.declare_candidate", NoArgs())


@case("staking.declare_candidate", "not_a_validator", "wrong_role")
def _(w: World) -> Tx:
    patient = member(w, "patient", Role.PATIENT)
    return w.tx(patient, "staking.declare_candidate", NoArgs())


@case("staking.vote", "ok")
def _(w: World) -> Tx:
    staker = funded(w, "staker")
    w.ok(staker, "staking.stake", AmountArgs(4_000))
    return w.tx(staker, "staking.vote", VoteArgs(VALIDATORS[1].address, 3_000))


@case("staking.vote", "more_than_bonded", "stake_error")
def _(w: World) -> Tx:
    staker = funded(w, "staker")
    w.ok(staker, "staking.stake", AmountArgs(4_000))
    return w.tx(staker, "staking.vote", VoteArgs(VALIDATORS[1].address, 5_000))


@case("staking.unvote", "ok")
def _(w: World) -> Tx:
    staker = funded(w, "staker")
    w.ok(staker, "staking.stake", AmountArgs(4_000))
    w.ok(staker, "staking.vote", VoteArgs(VALIDATORS[1].address, 3_000))
    return w.tx(staker, "staking.unvote", VoteArgs(VALIDATORS[1].address, 1_000))


@case("staking.unvote", "more_than_voted", "stake_error")
def _(w: World) -> Tx:
    staker = funded(w, "staker")
    w.ok(staker, "staking.stake", AmountArgs(4_000))
    w.ok(staker, "staking.vote", VoteArgs(VALIDATORS[1].address, 3_000))
    return w.tx(staker, "staking.unvote", VoteArgs(VALIDATORS[1].address, 3_001))


# -- evidence and penalties -------------------------------------------------------------


def signed_proposal(who: AccountKeys, block: bytes, height: int = 3) -> SignedProposal:
    digest = sha256(block)
    signature = who.sign(proposal_signing_bytes(CHAIN_ID, height, 0, digest))
    return SignedProposal(height, 0, digest, who.public_key, signature)


@case("consensus.report_equivocation", "ok")
def _(w: World) -> Tx:
    w.empty_blocks(3)
    cheat = VALIDATORS[0]
    evidence = EquivocationEvidence(signed_proposal(cheat, b"A"), signed_proposal(cheat, b"B"))
    return w.tx(VALIDATORS[1], "consensus.report_equivocation", evidence)


@case("consensus.report_equivocation", "one_block_twice", "invalid_evidence")
def _(w: World) -> Tx:
    w.empty_blocks(3)
    same = signed_proposal(VALIDATORS[0], b"A")
    return w.tx(VALIDATORS[1], "consensus.report_equivocation", EquivocationEvidence(same, same))


def accusations(proposal: SignedProposal, accusers: list[AccountKeys]) -> tuple[Accusation, ...]:
    data = accusation_signing_bytes(CHAIN_ID, proposal.height, proposal.round, proposal.block_hash)
    found = [Accusation(k.public_key, k.sign(data)) for k in accusers]
    return tuple(sorted(found, key=lambda a: a.validator))


@case("consensus.report_invalid_proposal", "ok")
def _(w: World) -> Tx:
    w.empty_blocks(3)
    bad = signed_proposal(VALIDATORS[0], b"bad block")
    evidence = InvalidProposalEvidence(bad, accusations(bad, VALIDATORS[1:]))
    return w.tx(VALIDATORS[1], "consensus.report_invalid_proposal", evidence)


@case("consensus.report_invalid_proposal", "too_few_accusers", "not_enough_accusations")
def _(w: World) -> Tx:
    w.empty_blocks(3)
    bad = signed_proposal(VALIDATORS[0], b"bad block")
    evidence = InvalidProposalEvidence(bad, accusations(bad, VALIDATORS[1:2]))
    return w.tx(VALIDATORS[1], "consensus.report_invalid_proposal", evidence)


# -- anonymous submissions --------------------------------------------------------------

SCOPE = "cohort-2024"


@case("anon.open_scope", "ok")
def _(w: World) -> Tx:
    lab = member(w, "institute", Role.INSTITUTION)
    return w.tx(lab, "anon.open_scope", OpenScopeArgs(SCOPE, Role.PATIENT, 3))


@case("anon.open_scope", "by_a_patient", "unknown_organisation")
def _(w: World) -> Tx:
    patient = member(w, "patient", Role.PATIENT)
    return w.tx(patient, "anon.open_scope", OpenScopeArgs(SCOPE, Role.PATIENT, 3))


@case("anon.close_scope", "ok")
def _(w: World) -> Tx:
    lab = member(w, "institute", Role.INSTITUTION)
    w.ok(lab, "anon.open_scope", OpenScopeArgs(SCOPE, Role.PATIENT, 3))
    return w.tx(lab, "anon.close_scope", CloseScopeArgs(SCOPE))


@case("anon.close_scope", "not_its_owner", "not_owner")
def _(w: World) -> Tx:
    lab = member(w, "institute", Role.INSTITUTION)
    other = member(w, "other institute", Role.INSTITUTION)
    w.ok(lab, "anon.open_scope", OpenScopeArgs(SCOPE, Role.PATIENT, 3))
    return w.tx(other, "anon.close_scope", CloseScopeArgs(SCOPE))


def scope_with_ring(w: World, ring_size: int) -> list[AccountKeys]:
    """An open scope for patients and `ring_size` registered patients, by address."""
    lab = member(w, "institute", Role.INSTITUTION)
    w.ok(lab, "anon.open_scope", OpenScopeArgs(SCOPE, Role.PATIENT, 3))
    ring = [member(w, f"patient {i}", Role.PATIENT) for i in range(ring_size)]
    return sorted(ring, key=lambda k: k.address)


def ring_submission(ring: list[AccountKeys], tag: bytes) -> Tx:
    """An anonymous submission to the scope, signed by patient 0 within `ring`."""
    cid, digest = fake_blob(tag)
    members = tuple(k.address for k in ring)
    wraps = fake_wraps(keys("institute").address)
    unsigned = Tx(
        CHAIN_ID,
        0,
        b"",
        0,
        "anon.submit",
        encode(AnonSubmitArgs(SCOPE, members, cid, digest, wraps)),
    )
    ring_keys = [k.ring_public_key for k in ring]
    signature = ring_sign(unsigned.signing_bytes(), ring_keys, keys("patient 0").ring_secret)
    return dataclasses.replace(unsigned, signature=encode(signature))


@case("anon.submit", "ok")
def _(w: World) -> Tx:
    return ring_submission(scope_with_ring(w, 3), b"answers")


@case("anon.submit", "ring_too_small", "ring_rejected")
def _(w: World) -> Tx:
    return ring_submission(scope_with_ring(w, 2), b"answers")


@case("anon.submit", "key_image_reused", "key_image_reused")
def _(w: World) -> Tx:
    ring = scope_with_ring(w, 3)
    w.run(ring_submission(ring, b"first"))
    return ring_submission(ring, b"second")


# -- the encrypted search index ---------------------------------------------------------


def entry(i: int) -> IndexEntry:
    return IndexEntry(sha256(b"label %d" % i)[:LABEL_SIZE], bytes([i]) * VALUE_SIZE)


@case("search.index", "ok")
def _(w: World) -> Tx:
    doctor = member(w, "doctor", Role.DOCTOR)
    return w.tx(doctor, "search.index", IndexArgs((entry(0), entry(1))))


@case("search.index", "label_taken", "label_taken")
def _(w: World) -> Tx:
    doctor = member(w, "doctor", Role.DOCTOR)
    w.ok(doctor, "search.index", IndexArgs((entry(0),)))
    return w.tx(doctor, "search.index", IndexArgs((entry(1), entry(0))))


# -- devices and gateways ---------------------------------------------------------------


def device_args(patient: AccountKeys, device: AccountKeys) -> RegisterDeviceArgs:
    proof = device.sign(registration_message(CHAIN_ID, patient.address))
    label = fake_label(patient.address)
    return RegisterDeviceArgs(
        device.public_key, patient.address, DeviceKind.PULSE_OXIMETER, label, proof
    )


def with_device(w: World) -> tuple[AccountKeys, AccountKeys]:
    patient, device = member(w, "patient", Role.PATIENT), keys("oximeter")
    w.ok(patient, "devices.register", device_args(patient, device))
    return patient, device


def with_gateway(w: World) -> tuple[AccountKeys, AccountKeys]:
    hospital, gateway = HOSPITAL.admin, keys("gateway")
    w.ok(hospital, "devices.register_gateway", RegisterGatewayArgs(gateway.address, "ward 3"))
    return hospital, gateway


@case("devices.register", "ok")
def _(w: World) -> Tx:
    patient = member(w, "patient", Role.PATIENT)
    return w.tx(patient, "devices.register", device_args(patient, keys("oximeter")))


@case("devices.register", "by_a_stranger", "not_authorised")
def _(w: World) -> Tx:
    patient, stranger = member(w, "patient", Role.PATIENT), member(w, "stranger", Role.PATIENT)
    return w.tx(stranger, "devices.register", device_args(patient, keys("oximeter")))


@case("devices.relabel", "ok")
def _(w: World) -> Tx:
    patient, device = with_device(w)
    args = RelabelArgs(device.address, fake_label(patient.address, blocks=2))
    return w.tx(patient, "devices.relabel", args)


@case("devices.relabel", "unknown_device", "unknown_device")
def _(w: World) -> Tx:
    patient = member(w, "patient", Role.PATIENT)
    args = RelabelArgs(keys("oximeter").address, fake_label(patient.address))
    return w.tx(patient, "devices.relabel", args)


@case("devices.set_state", "ok")
def _(w: World) -> Tx:
    patient, device = with_device(w)
    args = SetStateArgs(device.address, DeviceState.RESTRICTED, "battery swap")
    return w.tx(patient, "devices.set_state", args)


@case("devices.set_state", "by_a_stranger", "not_authorised")
def _(w: World) -> Tx:
    _, device = with_device(w)
    doctor = member(w, "doctor", Role.DOCTOR)
    args = SetStateArgs(device.address, DeviceState.BANNED, "lost")
    return w.tx(doctor, "devices.set_state", args)


@case("devices.report", "ok")
def _(w: World) -> Tx:
    _, device = with_device(w)
    _, gateway = with_gateway(w)
    args = ReportArgs(device.address, DeviceOffence.RATE_LIMIT, b"log 1")
    return w.tx(gateway, "devices.report", args)


@case("devices.report", "not_a_gateway", "unknown_gateway")
def _(w: World) -> Tx:
    patient, device = with_device(w)
    args = ReportArgs(device.address, DeviceOffence.RATE_LIMIT, b"log 1")
    return w.tx(patient, "devices.report", args)


@case("devices.register_gateway", "ok")
def _(w: World) -> Tx:
    args = RegisterGatewayArgs(keys("gateway").address, "ward 3")
    return w.tx(HOSPITAL.admin, "devices.register_gateway", args)


@case("devices.register_gateway", "by_a_patient", "not_an_admin")
def _(w: World) -> Tx:
    patient = member(w, "patient", Role.PATIENT)
    args = RegisterGatewayArgs(keys("gateway").address, "ward 3")
    return w.tx(patient, "devices.register_gateway", args)


@case("devices.revoke_gateway", "ok")
def _(w: World) -> Tx:
    hospital, gateway = with_gateway(w)
    return w.tx(hospital, "devices.revoke_gateway", RevokeGatewayArgs(gateway.address))


@case("devices.revoke_gateway", "not_its_operator", "not_authorised")
def _(w: World) -> Tx:
    _, gateway = with_gateway(w)
    return w.tx(CLINIC.admin, "devices.revoke_gateway", RevokeGatewayArgs(gateway.address))


def batch(patient: AccountKeys, device: AccountKeys) -> CommitBatchArgs:
    cid, digest = fake_blob(b"bundle " + patient.address)
    bundle = Bundle(patient.address, cid, digest, 2, T0 + 10, T0 + 20, (device.address,))
    return CommitBatchArgs(sha256(b"readings root"), 2, (bundle,))


@case("devices.commit_batch", "ok")
def _(w: World) -> Tx:
    patient, device = with_device(w)
    _, gateway = with_gateway(w)
    return w.tx(gateway, "devices.commit_batch", batch(patient, device))


@case("devices.commit_batch", "not_a_gateway", "unknown_gateway")
def _(w: World) -> Tx:
    patient, device = with_device(w)
    return w.tx(patient, "devices.commit_batch", batch(patient, device))


def patient_lists_doctor(add: str, remove: str, args: Callable[[bytes], Any]) -> None:
    """The cases of a pair of methods by which a patient lists a doctor (as reader of
    their vitals) and takes them off: each succeeds, listing twice and removing one
    never listed are refused."""

    def listing(w: World, *steps: str) -> Tx:
        patient, doctor = member(w, "patient", Role.PATIENT), member(w, "doctor", Role.DOCTOR)
        for method in steps[:-1]:
            w.ok(patient, method, args(doctor.address))
        return w.tx(patient, steps[-1], args(doctor.address))

    case(add, "ok")(lambda w: listing(w, add))
    case(add, "twice", "invalid_argument")(lambda w: listing(w, add, add))
    case(remove, "ok")(lambda w: listing(w, add, remove))
    case(remove, "never_listed", "invalid_argument")(lambda w: listing(w, remove))


patient_lists_doctor("devices.share_vitals", "devices.unshare_vitals", VitalsReaderArgs)


# -- organisations ---------------------------------------------------------------------


def join_lab() -> ProposeArgs:
    lab = org_keys("city-lab", "laboratory")
    spec = OrganisationSpec(
        lab.org_id,
        "City Laboratory",
        OrgKind.LABORATORY,
        (lab.admin.public_key,),
        lab.account.public_key,
        lab.account.encryption_public_key,
    )
    return ProposeArgs(ProposalAction.JOIN, spec, "blood tests for the north")


@case("orgs.propose", "ok")
def _(w: World) -> Tx:
    return w.tx(HOSPITAL.admin, "orgs.propose", join_lab())


@case("orgs.propose", "not_an_admin", "not_an_admin")
def _(w: World) -> Tx:
    return w.tx(keys("outsider"), "orgs.propose", join_lab())


@case("orgs.propose", "id_taken", "proposal_error")
def _(w: World) -> Tx:
    args = join_lab()
    taken = dataclasses.replace(args, spec=dataclasses.replace(args.spec, org_id=CLINIC.org_id))
    return w.tx(HOSPITAL.admin, "orgs.propose", taken)


@case("orgs.approve", "ok")
def _(w: World) -> Tx:
    w.ok(HOSPITAL.admin, "orgs.propose", join_lab())
    return w.tx(CLINIC.admin, "orgs.approve", ApproveArgs(1))


@case("orgs.approve", "twice", "proposal_error")
def _(w: World) -> Tx:
    w.ok(HOSPITAL.admin, "orgs.propose", join_lab())
    return w.tx(HOSPITAL.admin, "orgs.approve", ApproveArgs(1))


@case("orgs.attest", "ok")
def _(w: World) -> Tx:
    patient = member(w, "patient", Role.PATIENT)
    return w.tx(CLINIC.admin, "orgs.attest", AttestArgs(patient.address))


@case("orgs.attest", "not_an_admin", "not_an_admin")
def _(w: World) -> Tx:
    patient = member(w, "patient", Role.PATIENT)
    return w.tx(patient, "orgs.attest", AttestArgs(patient.address))


@case("orgs.unattest", "ok")
def _(w: World) -> Tx:
    patient = member(w, "patient", Role.PATIENT)
    w.ok(CLINIC.admin, "orgs.attest", AttestArgs(patient.address))
    return w.tx(CLINIC.admin, "orgs.unattest", AttestArgs(patient.address))


@case("orgs.unattest", "never_attested", "invalid_argument")
def _(w: World) -> Tx:
    patient = member(w, "patient", Role.PATIENT)
    return w.tx(CLINIC.admin, "orgs.unattest", AttestArgs(patient.address))


# -- credentials -----------------------------------------------------------------------


def issue_args(name: str = "nurse") -> IssueArgs:
    return IssueArgs(keys(name).address, CredentialRole.NURSE, "Nurse Joy, ward 3", 0)


@case("credentials.issue", "ok")
def _(w: World) -> Tx:
    return w.tx(HOSPITAL.admin, "credentials.issue", issue_args())


@case("credentials.issue", "not_an_admin", "not_an_admin")
def _(w: World) -> Tx:
    return w.tx(keys("nurse"), "credentials.issue", issue_args())


def credential_steps(final: str, *before: str) -> Callable[[World], Tx]:
    """Issue a credential, run `before`, then the transaction of `final`."""

    def build(w: World) -> Tx:
        w.ok(HOSPITAL.admin, "credentials.issue", issue_args())
        args = CredentialActionArgs(keys("nurse").address, "rota dispute")
        for method in before:
            w.ok(HOSPITAL.admin, method, args)
        return w.tx(HOSPITAL.admin, final, args)

    return build


case("credentials.suspend", "ok")(credential_steps("credentials.suspend"))
case("credentials.suspend", "revoked", "invalid_argument")(
    credential_steps("credentials.suspend", "credentials.revoke")
)
case("credentials.reinstate", "ok")(
    credential_steps("credentials.reinstate", "credentials.suspend")
)
case("credentials.reinstate", "active", "invalid_argument")(
    credential_steps("credentials.reinstate")
)
case("credentials.revoke", "ok")(credential_steps("credentials.revoke"))


@case("credentials.revoke", "by_another_org", "invalid_argument")
def _(w: World) -> Tx:
    w.ok(HOSPITAL.admin, "credentials.issue", issue_args())
    args = CredentialActionArgs(keys("nurse").address, "")
    return w.tx(CLINIC.admin, "credentials.revoke", args)


# -- break-glass -----------------------------------------------------------------------


def emergency_policy(threshold: int = 2) -> EmergencyPolicyArgs:
    """A fixed 2-of-2 sharing among the two founding organisations (the chain sees only
    the commitments; the sealed shares are opaque to it)."""
    secret = sha256(b"vector emergency key")[:31] + b"\x00"
    slope = sha256(b"vector emergency slope")[:31] + b"\x00"
    shares = _threshold._shares_of_polynomial([secret, slope], 2)
    sealed = tuple(
        SealedShare(org.org_id, share_commitment(share), bytes([i + 5]) * WRAPPED_KEY_SIZE)
        for i, (org, share) in enumerate(zip((CLINIC, HOSPITAL), shares, strict=True))
    )
    return EmergencyPolicyArgs(True, DEFAULT_EMERGENCY_TYPES, base_mul(secret), threshold, sealed)


def emergency_wrap_of(tag: bytes) -> EmergencyWrapArgs:
    return EmergencyWrapArgs(
        base_mul(sha256(tag)[:31] + b"\x00"), b"\x04" * SEALED_EMERGENCY_KEY_SIZE
    )


def allergy_args(patient: AccountKeys, emergency: tuple[EmergencyWrapArgs, ...]) -> Any:
    cid, digest = fake_blob(b"allergy v1")
    return CreateRecordArgs(
        patient.address, "AllergyIntolerance", cid, digest, fake_wraps(patient.address), emergency
    )


def emergency_opened(w: World) -> tuple[AccountKeys, AccountKeys, bytes]:
    """A patient with a policy and one wrapped allergy record, and a doctor who opened
    the patient's emergency set: (patient, doctor, request id)."""
    patient, doctor = member(w, "patient", Role.PATIENT), member(w, "doctor", Role.DOCTOR)
    w.ok(patient, "emergency.set_policy", emergency_policy())
    w.ok(patient, "records.create", allergy_args(patient, (emergency_wrap_of(b"allergy"),)))
    nonce = w.nonces.get(doctor.address, 0)
    w.ok(doctor, "emergency.open", OpenArgs(patient.address, "unconscious on arrival"))
    return patient, doctor, new_request_id(doctor.address, nonce)


def emergency_answer(request_id: bytes) -> AnswerArgs:
    return AnswerArgs(
        request_id, b"\x06" * WRAPPED_KEY_SIZE, b"\x07" * (CONTENT_OVERHEAD + PARTIAL_SIZE)
    )


@case("emergency.set_policy", "ok")
def _(w: World) -> Tx:
    patient = member(w, "patient", Role.PATIENT)
    return w.tx(patient, "emergency.set_policy", emergency_policy())


@case("emergency.set_policy", "one_organisation_could_open", "emergency_error")
def _(w: World) -> Tx:
    patient = member(w, "patient", Role.PATIENT)
    return w.tx(patient, "emergency.set_policy", emergency_policy(threshold=1))


@case("emergency.wrap", "ok")
def _(w: World) -> Tx:
    patient = member(w, "patient", Role.PATIENT)
    nonce = w.nonces.get(patient.address, 0)
    w.ok(patient, "records.create", allergy_args(patient, ()))
    w.ok(patient, "emergency.set_policy", emergency_policy())
    args = WrapRecordArgs(new_record_id(patient.address, nonce), emergency_wrap_of(b"allergy"))
    return w.tx(patient, "emergency.wrap", args)


@case("emergency.wrap", "outside_the_set", "emergency_error")
def _(w: World) -> Tx:
    patient, _doctor, record_id = record(w)  # an Observation: optional in the set
    w.ok(
        patient,
        "emergency.set_policy",
        dataclasses.replace(emergency_policy(), resource_types=("AllergyIntolerance",)),
    )
    return w.tx(patient, "emergency.wrap", WrapRecordArgs(record_id, emergency_wrap_of(b"obs")))


@case("emergency.open", "ok")
def _(w: World) -> Tx:
    patient, doctor = member(w, "patient", Role.PATIENT), member(w, "doctor", Role.DOCTOR)
    w.ok(patient, "emergency.set_policy", emergency_policy())
    w.ok(patient, "records.create", allergy_args(patient, (emergency_wrap_of(b"allergy"),)))
    return w.tx(doctor, "emergency.open", OpenArgs(patient.address, "unconscious on arrival"))


@case("emergency.open", "not_credentialed", "not_credentialed")
def _(w: World) -> Tx:
    patient = member(w, "patient", Role.PATIENT)
    w.ok(patient, "emergency.set_policy", emergency_policy())
    stranger = member(w, "stranger", Role.PATIENT)
    return w.tx(stranger, "emergency.open", OpenArgs(patient.address, "curious"))


@case("emergency.answer", "ok")
def _(w: World) -> Tx:
    _patient, _doctor, request_id = emergency_opened(w)
    return w.tx(CLINIC.account, "emergency.answer", emergency_answer(request_id))


@case("emergency.answer", "twice", "emergency_error")
def _(w: World) -> Tx:
    _patient, _doctor, request_id = emergency_opened(w)
    w.ok(CLINIC.account, "emergency.answer", emergency_answer(request_id))
    return w.tx(CLINIC.account, "emergency.answer", emergency_answer(request_id))


# -- disclosure heads -------------------------------------------------------------------


@case("disclosures.commit", "ok")
def _(w: World) -> Tx:
    w.ok(VALIDATORS[0], "disclosures.commit", CommitHeadArgs(2, sha256(b"head 2"), NODE_URL))
    return w.tx(VALIDATORS[0], "disclosures.commit", CommitHeadArgs(5, sha256(b"head 5"), NODE_URL))


@case("disclosures.commit", "seq_not_increasing", "invalid_argument")
def _(w: World) -> Tx:
    w.ok(VALIDATORS[0], "disclosures.commit", CommitHeadArgs(5, sha256(b"head 5"), NODE_URL))
    return w.tx(VALIDATORS[0], "disclosures.commit", CommitHeadArgs(5, sha256(b"other"), NODE_URL))


@case("disclosures.commit", "not_a_validator", "wrong_role")
def _(w: World) -> Tx:
    patient = member(w, "patient", Role.PATIENT)
    return w.tx(patient, "disclosures.commit", CommitHeadArgs(1, sha256(b"head 1"), NODE_URL))


# -- key rotation ----------------------------------------------------------------------


def rotation_to(account: bytes, new: AccountKeys) -> RotateArgs:
    message = rotation_message(
        CHAIN_ID, account, new.public_key, new.encryption_public_key, new.ring_public_key
    )
    return RotateArgs(
        new.public_key, new.encryption_public_key, new.ring_public_key, new.sign(message)
    )


@case("keys.rotate", "ok")
def _(w: World) -> Tx:
    patient = member(w, "patient", Role.PATIENT)
    return w.tx(patient, "keys.rotate", rotation_to(patient.address, keys("patient key 2")))


@case("keys.rotate", "proof_for_another_account", "invalid_argument")
def _(w: World) -> Tx:
    patient = member(w, "patient", Role.PATIENT)
    return w.tx(patient, "keys.rotate", rotation_to(RICH.address, keys("patient key 2")))


@case("keys.rotate", "retired_key", "key_retired")
def _(w: World) -> Tx:
    patient = member(w, "patient", Role.PATIENT)
    w.ok(patient, "keys.rotate", rotation_to(patient.address, keys("patient key 2")))
    return w.tx(patient, "keys.rotate", rotation_to(patient.address, keys("patient key 3")))


@case("records.rewrap", "ok")
def _(w: World) -> Tx:
    patient, _doctor, record_id = record(w)
    return w.tx(patient, "records.rewrap", RewrapArgs(record_id, wrap()))


@case("records.rewrap", "not_owner", "not_owner")
def _(w: World) -> Tx:
    _patient, doctor, record_id = record(w)
    return w.tx(doctor, "records.rewrap", RewrapArgs(record_id, wrap()))


# -- key recovery ----------------------------------------------------------------------

DAY_MS = 24 * 3_600_000


def guarded(w: World) -> tuple[AccountKeys, list[AccountKeys]]:
    """A patient whose recovery policy names three guardians, two to approve."""
    patient = member(w, "patient", Role.PATIENT)
    guardians = sorted(
        (member(w, f"guardian {i}", Role.PATIENT) for i in range(3)), key=lambda k: k.address
    )
    w.ok(patient, "recovery.set_policy", recovery_policy(guardians))
    return patient, guardians


def recovery_policy(guardians: list[AccountKeys]) -> SetRecoveryPolicyArgs:
    shares = tuple(ShareRef(g.address, *fake_blob(b"share " + g.address)) for g in guardians)
    return SetRecoveryPolicyArgs(
        tuple(g.address for g in guardians), 2, DAY_MS, *fake_blob(b"kit"), shares
    )


def recovery_requested(w: World) -> tuple[AccountKeys, list[AccountKeys], AccountKeys, bytes]:
    patient, guardians = guarded(w)
    new = keys("patient recovered key")
    args = rotation_to(patient.address, new)
    w.ok(new, "recovery.request", RequestRecoveryArgs(patient.address, *dataclasses.astuple(args)))
    return patient, guardians, new, new_recovery_id(new.address, 0)


def recovery_approval(request_id: bytes, guardian: AccountKeys) -> ApproveRecoveryArgs:
    return ApproveRecoveryArgs(request_id, *fake_blob(b"resealed " + guardian.address))


@case("recovery.set_policy", "ok")
def _(w: World) -> Tx:
    patient = member(w, "patient", Role.PATIENT)
    guardians = sorted(
        (member(w, f"guardian {i}", Role.PATIENT) for i in range(3)), key=lambda k: k.address
    )
    return w.tx(patient, "recovery.set_policy", recovery_policy(guardians))


@case("recovery.set_policy", "own_guardian", "invalid_argument")
def _(w: World) -> Tx:
    patient = member(w, "patient", Role.PATIENT)
    other = member(w, "guardian 0", Role.PATIENT)
    both = sorted((patient, other), key=lambda k: k.address)
    return w.tx(patient, "recovery.set_policy", recovery_policy(both))


@case("recovery.clear_policy", "ok")
def _(w: World) -> Tx:
    patient, _guardians = guarded(w)
    return w.tx(patient, "recovery.clear_policy", ClearRecoveryPolicyArgs())


@case("recovery.clear_policy", "no_policy", "recovery_error")
def _(w: World) -> Tx:
    patient = member(w, "patient", Role.PATIENT)
    return w.tx(patient, "recovery.clear_policy", ClearRecoveryPolicyArgs())


@case("recovery.request", "ok")
def _(w: World) -> Tx:
    patient, _guardians = guarded(w)
    new = keys("patient recovered key")
    args = rotation_to(patient.address, new)
    return w.tx(
        new, "recovery.request", RequestRecoveryArgs(patient.address, *dataclasses.astuple(args))
    )


@case("recovery.request", "no_policy", "recovery_error")
def _(w: World) -> Tx:
    patient = member(w, "patient", Role.PATIENT)
    new = keys("patient recovered key")
    args = rotation_to(patient.address, new)
    return w.tx(
        new, "recovery.request", RequestRecoveryArgs(patient.address, *dataclasses.astuple(args))
    )


@case("recovery.approve", "ok")
def _(w: World) -> Tx:
    _patient, guardians, _new, request_id = recovery_requested(w)
    return w.tx(guardians[0], "recovery.approve", recovery_approval(request_id, guardians[0]))


@case("recovery.approve", "not_a_guardian", "recovery_error")
def _(w: World) -> Tx:
    patient, _guardians, _new, request_id = recovery_requested(w)
    return w.tx(patient, "recovery.approve", recovery_approval(request_id, patient))


@case("recovery.cancel", "ok")
def _(w: World) -> Tx:
    patient, _guardians, _new, request_id = recovery_requested(w)
    return w.tx(patient, "recovery.cancel", RecoveryRequestArgs(request_id))


@case("recovery.cancel", "by_the_new_key", "recovery_error")
def _(w: World) -> Tx:
    _patient, _guardians, new, request_id = recovery_requested(w)
    return w.tx(new, "recovery.cancel", RecoveryRequestArgs(request_id))


@case("recovery.complete", "ok")
def _(w: World) -> Tx:
    _patient, guardians, new, request_id = recovery_requested(w)
    for guardian in guardians[:2]:
        w.ok(guardian, "recovery.approve", recovery_approval(request_id, guardian))
    w.height += DAY_MS  # block time is 1 000 + height in the test world: a day later
    return w.tx(new, "recovery.complete", RecoveryRequestArgs(request_id))


@case("recovery.complete", "too_soon", "recovery_not_ready")
def _(w: World) -> Tx:
    _patient, guardians, new, request_id = recovery_requested(w)
    for guardian in guardians[:2]:
        w.ok(guardian, "recovery.approve", recovery_approval(request_id, guardian))
    return w.tx(new, "recovery.complete", RecoveryRequestArgs(request_id))

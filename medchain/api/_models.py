"""The JSON the API speaks, as pydantic models (they make the OpenAPI schema at
/docs) and the functions that build them from chain objects.

Bytes are lower-case hex and account addresses bech32 (mc1...). Every chain object
also carries `encoded`, the hex of its canonical encoding: the JSON fields are for
people and other languages, `encoded` is what the Python client decodes, so nothing
is lost or reinterpreted on the way."""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from medchain.app import (
    Account,
    AnonEntry,
    AnonScope,
    AuditEntry,
    Candidate,
    Identity,
    KeyWrap,
    Record,
    RecordVersion,
    ResearchEntry,
    StakeAccount,
)
from medchain.crypto import ADDRESS_SIZE, address_from_public_key, format_address
from medchain.node import NodeStatus, genesis_hash
from medchain.store import MAX_HEIGHT
from medchain.types import Block, Event, Genesis, Receipt, block_hash, encode, tx_id

Hex = Annotated[str, Field(description="Bytes as lower-case hex.")]
Address = Annotated[str, Field(description="Account address, bech32 (mc1...).")]
Encoded = Annotated[
    str,
    Field(
        description="Hex of the object's canonical encoding (medchain.types.encode); "
        "the Python client decodes this."
    ),
]


# -- the integers the API takes, bounded to what the layers below accept ---------------
# Every integer in a path, a query or a body is declared with these bounds, so a value
# outside them is refused with 400 `out_of_range` (see _errors.py) before it reaches a
# store or a state key that could not hold it. MAX_HEIGHT (the chain store's SQLite
# INTEGERs) and MAX_TIME_MS (the devices contract's times) come from those layers.

MAX_ROLE_INDEX = 2**64 - 1
"""Positions in a role's list of holders: 8 bytes, big-endian, in the state's keys."""
MAX_VERSION_NUMBER = 2**32 - 1
"""Record version numbers (from 1): 4 bytes, big-endian, in the state's keys."""

Height = Annotated[int, Field(ge=0, le=MAX_HEIGHT, description="A block height.")]


def hex_of(data: bytes) -> str:
    return data.hex()


def address_of(raw: bytes) -> str:
    """bech32 for a 20-byte address, '' for none; hex for anything else rather than fail."""
    if not raw:
        return ""
    return format_address(raw) if len(raw) == ADDRESS_SIZE else raw.hex()


def encoded(obj: object) -> str:
    return encode(obj).hex()


# -- errors -------------------------------------------------------------------------


class ErrorDetail(BaseModel):
    code: str = Field(description="Stable machine-readable name, e.g. `nonce_reused`.")
    message: str = Field(description="What went wrong and what to do, for people.")


class ErrorBody(BaseModel):
    """Every failure, whatever its status."""

    error: ErrorDetail


# -- transactions and receipts ----------------------------------------------------------


class EventModel(BaseModel):
    kind: str
    attributes: dict[str, str]


class ReceiptModel(BaseModel):
    """Outcome of a committed transaction; `ok` false means the call was refused (its
    fee and nonce were still consumed)."""

    tx_id: Hex
    ok: bool
    code: str
    message: str
    events: list[EventModel]
    encoded: Encoded


def receipt_model(receipt: Receipt) -> ReceiptModel:
    return ReceiptModel(
        tx_id=hex_of(receipt.tx_id),
        ok=receipt.ok,
        code=receipt.code,
        message=receipt.message,
        events=[_event(e) for e in receipt.events],
        encoded=encoded(receipt),
    )


def _event(event: Event) -> EventModel:
    return EventModel(kind=event.kind, attributes={a.key: a.value for a in event.attributes})


class TxBody(BaseModel):
    tx: Hex = Field(description="Hex of the signed transaction's canonical encoding.")


MAX_BATCH_TXS = 1_000


class TxBatchBody(BaseModel):
    txs: list[str] = Field(
        min_length=1,
        max_length=MAX_BATCH_TXS,
        description=f"Hex of each signed transaction, at most {MAX_BATCH_TXS}.",
    )


class TxStatusModel(BaseModel):
    """Where a transaction is: pending in the mempool, or committed with its receipt."""

    tx_hash: Hex
    status: Literal["pending", "committed"]
    height: int | None = Field(default=None, description="Block height, once committed.")
    index: int | None = Field(default=None, description="Position in the block, once committed.")
    receipt: ReceiptModel | None = None


class BatchItemModel(BaseModel):
    tx_hash: Hex | None = Field(description="None when the hex did not decode to a transaction.")
    accepted: bool = Field(description="Admitted to the mempool by this request.")
    error: ErrorDetail | None = None


class BatchResultModel(BaseModel):
    """One result per submitted transaction, in order; one refusal stops nothing."""

    accepted: int
    results: list[BatchItemModel]


# -- blocks and genesis ---------------------------------------------------------------


class SignerModel(BaseModel):
    public_key: Hex
    address: Address
    name: str = Field(description="The validator's name in genesis, '' if not a validator.")


class CertificateModel(BaseModel):
    """Validators' signatures over the block hash: proof the block was committed."""

    height: int
    round: int
    block_hash: Hex
    signers: list[SignerModel]


class BlockModel(BaseModel):
    height: int
    hash: Hex
    chain_id: str
    prev_hash: Hex
    time_ms: int
    proposer: Address
    tx_root: Hex
    receipt_root: Hex
    state_root: Hex
    vrf_proof: Hex
    tx_hashes: list[Hex]
    certificate: CertificateModel
    encoded: Encoded


def block_model(block: Block, genesis: Genesis) -> BlockModel:
    header, cert = block.header, block.certificate
    names = {v.public_key: v.name for v in genesis.validators}
    return BlockModel(
        height=header.height,
        hash=hex_of(block_hash(header)),
        chain_id=header.chain_id,
        prev_hash=hex_of(header.prev_hash),
        time_ms=header.time_ms,
        proposer=address_of(header.proposer),
        tx_root=hex_of(header.tx_root),
        receipt_root=hex_of(header.receipt_root),
        state_root=hex_of(header.state_root),
        vrf_proof=hex_of(header.vrf_proof),
        tx_hashes=[hex_of(tx_id(tx)) for tx in block.txs],
        certificate=CertificateModel(
            height=cert.height,
            round=cert.round,
            block_hash=hex_of(cert.block_hash),
            signers=[
                SignerModel(
                    public_key=hex_of(s.validator),
                    address=address_of(address_from_public_key(s.validator)),
                    name=names.get(s.validator, ""),
                )
                for s in cert.signatures
            ],
        ),
        encoded=encoded(block),
    )


class AllocationModel(BaseModel):
    address: Address
    amount: int


class GenesisValidatorModel(BaseModel):
    public_key: Hex
    name: str
    power: int


class GenesisModel(BaseModel):
    """The genesis document (as in genesis.json), its hash and its encoding."""

    chain_id: str
    time_ms: int
    params: dict[str, int | str] = Field(description="Consensus-critical chain parameters.")
    allocations: list[AllocationModel]
    validators: list[GenesisValidatorModel]
    hash: Hex
    encoded: Encoded


def genesis_model(genesis: Genesis) -> GenesisModel:
    return GenesisModel(
        chain_id=genesis.chain_id,
        time_ms=genesis.time_ms,
        params=dataclasses.asdict(genesis.params),
        allocations=[
            AllocationModel(address=address_of(a.address), amount=a.amount)
            for a in genesis.allocations
        ],
        validators=[
            GenesisValidatorModel(public_key=hex_of(v.public_key), name=v.name, power=v.power)
            for v in genesis.validators
        ],
        hash=hex_of(genesis_hash(genesis)),
        encoded=encoded(genesis),
    )


# -- accounts and the registry ----------------------------------------------------------


class AccountModel(BaseModel):
    address: Address
    balance: int
    nonce: int = Field(description="The nonce the account's next transaction must carry.")
    encoded: Encoded


def account_model(address: bytes, account: Account) -> AccountModel:
    return AccountModel(
        address=address_of(address),
        balance=account.balance,
        nonce=account.nonce,
        encoded=encoded(account),
    )


class IdentityModel(BaseModel):
    """A registered account. A patient's name is empty and the profile sealed to them."""

    address: Address
    public_key: Hex
    encryption_key: Hex = Field(description="X25519 key records are wrapped for.")
    role: str
    name: str
    profile: Hex
    registered_height: int
    record_count: int
    ring_key: Hex = Field(description="ristretto255 key for ring signatures, '' if none.")
    encoded: Encoded


def identity_model(identity: Identity) -> IdentityModel:
    return IdentityModel(
        address=address_of(identity.address),
        public_key=hex_of(identity.public_key),
        encryption_key=hex_of(identity.encryption_key),
        role=identity.role.value,
        name=identity.name,
        profile=hex_of(identity.profile),
        registered_height=identity.registered_height,
        record_count=identity.record_count,
        ring_key=hex_of(identity.ring_key),
        encoded=encoded(identity),
    )


class RoleCountModel(BaseModel):
    role: str
    count: int


class RoleMemberModel(BaseModel):
    role: str
    index: int
    address: Address


# -- records ----------------------------------------------------------------------------


class RecordModel(BaseModel):
    """Public metadata of a record; its content is off chain, encrypted."""

    record_id: Hex
    owner: Address
    author: Address
    resource_type: str
    created_height: int
    readers: list[Address] = Field(description="Authorised readers besides the owner.")
    version_count: int
    audit_count: int
    encoded: Encoded


def record_model(record: Record) -> RecordModel:
    return RecordModel(
        record_id=hex_of(record.record_id),
        owner=address_of(record.owner),
        author=address_of(record.author),
        resource_type=record.resource_type,
        created_height=record.created_height,
        readers=[address_of(r) for r in record.readers],
        version_count=record.version_count,
        audit_count=record.audit_count,
        encoded=encoded(record),
    )


class KeyWrapModel(BaseModel):
    reader: Address
    wrapped_key: Hex


def _wraps(wraps: tuple[KeyWrap, ...]) -> list[KeyWrapModel]:
    return [
        KeyWrapModel(reader=address_of(w.reader), wrapped_key=hex_of(w.wrapped_key)) for w in wraps
    ]


class RecordVersionModel(BaseModel):
    record_id: Hex
    number: int
    cid: str = Field(description="CID of the ciphertext in the blob store (GET /v1/blobs/{cid}).")
    ciphertext_hash: Hex
    author: Address
    height: int
    tx_id: Hex
    wraps: list[KeyWrapModel] = Field(description="The content key, wrapped for each reader.")
    encoded: Encoded


def version_model(version: RecordVersion) -> RecordVersionModel:
    return RecordVersionModel(
        record_id=hex_of(version.record_id),
        number=version.number,
        cid=version.cid,
        ciphertext_hash=hex_of(version.ciphertext_hash),
        author=address_of(version.author),
        height=version.height,
        tx_id=hex_of(version.tx_id),
        wraps=_wraps(version.wraps),
        encoded=encoded(version),
    )


class AuditEntryModel(BaseModel):
    seq: int
    height: int
    time_ms: int
    tx_id: Hex
    action: str
    actor: Address
    subject: Address = Field(description="The reader or institution concerned, '' if none.")
    version: int
    encoded: Encoded


class AuditModel(BaseModel):
    record_id: Hex
    entries: list[AuditEntryModel]


def audit_model(record_id: bytes, entries: list[AuditEntry]) -> AuditModel:
    return AuditModel(
        record_id=hex_of(record_id),
        entries=[
            AuditEntryModel(
                seq=e.seq,
                height=e.height,
                time_ms=e.time_ms,
                tx_id=hex_of(e.tx_id),
                action=e.action.value,
                actor=address_of(e.actor),
                subject=address_of(e.subject),
                version=e.version,
                encoded=encoded(e),
            )
            for e in entries
        ],
    )


class PatientRecordsModel(BaseModel):
    patient: Address
    record_ids: list[Hex] = Field(description="Oldest first.")


class SearchBody(BaseModel):
    owner: Address = Field(description="Whose encrypted index to search.")
    token: Hex = Field(description="Hex of the canonical encoding of a SearchToken.")


class SearchResultModel(BaseModel):
    """Encrypted index values under each label key of the token, in order."""

    owner: Address
    values: list[list[Hex]]


class ResearchEntryModel(BaseModel):
    record_id: Hex
    patient: Address
    institution: Address
    source_version: int
    cid: str
    ciphertext_hash: Hex
    wraps: list[KeyWrapModel]
    granted_height: int
    encoded: Encoded


class ResearchDataModel(BaseModel):
    """De-identified copies the institution may read."""

    institution: Address
    entries: list[ResearchEntryModel]


def research_model(institution: bytes, entries: list[ResearchEntry]) -> ResearchDataModel:
    return ResearchDataModel(
        institution=address_of(institution),
        entries=[
            ResearchEntryModel(
                record_id=hex_of(e.record_id),
                patient=address_of(e.patient),
                institution=address_of(e.institution),
                source_version=e.source_version,
                cid=e.cid,
                ciphertext_hash=hex_of(e.ciphertext_hash),
                wraps=_wraps(e.wraps),
                granted_height=e.granted_height,
                encoded=encoded(e),
            )
            for e in entries
        ],
    )


# -- anonymous submission -----------------------------------------------------------------


class AnonScopeModel(BaseModel):
    name: str
    recipient: Address = Field(description="The institution every contribution is sealed to.")
    member_role: str
    min_ring: int
    open: bool
    count: int
    opened_height: int
    encoded: Encoded


def scope_model(scope: AnonScope) -> AnonScopeModel:
    return AnonScopeModel(
        name=scope.name,
        recipient=address_of(scope.recipient),
        member_role=scope.member_role.value,
        min_ring=scope.min_ring,
        open=scope.open,
        count=scope.count,
        opened_height=scope.opened_height,
        encoded=encoded(scope),
    )


class AnonEntryModel(BaseModel):
    scope: str
    index: int
    cid: str
    ciphertext_hash: Hex
    wraps: list[KeyWrapModel]
    key_image: Hex
    ring: list[Address] = Field(description="The ring the contribution was signed by.")
    height: int
    tx_id: Hex
    encoded: Encoded


class AnonEntriesModel(BaseModel):
    scope: str
    entries: list[AnonEntryModel]


def anon_entries_model(scope: str, entries: list[AnonEntry]) -> AnonEntriesModel:
    return AnonEntriesModel(
        scope=scope,
        entries=[
            AnonEntryModel(
                scope=e.scope,
                index=e.index,
                cid=e.cid,
                ciphertext_hash=hex_of(e.ciphertext_hash),
                wraps=_wraps(e.wraps),
                key_image=hex_of(e.key_image),
                ring=[address_of(r) for r in e.ring],
                height=e.height,
                tx_id=hex_of(e.tx_id),
                encoded=encoded(e),
            )
            for e in entries
        ],
    )


# -- staking and validators ---------------------------------------------------------------


class UnbondingModel(BaseModel):
    amount: int
    release_height: int


class VoteAllocationModel(BaseModel):
    candidate: Address
    amount: int


class StakeModel(BaseModel):
    address: Address
    bonded: int
    unbonding: list[UnbondingModel]
    votes: list[VoteAllocationModel]
    encoded: Encoded


def stake_model(address: bytes, stake: StakeAccount) -> StakeModel:
    return StakeModel(
        address=address_of(address),
        bonded=stake.bonded,
        unbonding=[
            UnbondingModel(amount=u.amount, release_height=u.release_height)
            for u in stake.unbonding
        ],
        votes=[
            VoteAllocationModel(candidate=address_of(v.candidate), amount=v.amount)
            for v in stake.votes
        ],
        encoded=encoded(stake),
    )


class CandidateModel(BaseModel):
    address: Address
    votes: int
    declared_height: int
    encoded: Encoded


class CandidatesModel(BaseModel):
    """Declared candidates in election order."""

    candidates: list[CandidateModel]


def candidates_model(candidates: list[Candidate]) -> CandidatesModel:
    return CandidatesModel(
        candidates=[
            CandidateModel(
                address=address_of(c.address),
                votes=c.votes,
                declared_height=c.declared_height,
                encoded=encoded(c),
            )
            for c in candidates
        ]
    )


class ValidatorModel(BaseModel):
    name: str
    public_key: Hex
    address: Address
    power: int
    bonded: int = Field(description="The validator account's bonded stake.")
    votes: int = Field(description="Votes for it as a candidate (0 if not a candidate).")
    banned: bool = Field(description="Banned from elections at the next height.")
    banned_until: int = Field(description="Last banned height (0: never banned).")
    voting: bool | None = Field(
        description="In the voting set for the next height; null if this node cannot tell."
    )
    primary_candidate: bool | None = Field(
        default=None, description="AFBFT: in the primary-candidate queue for the next height."
    )


class ValidatorsModel(BaseModel):
    """The genesis validators and where each stands at the next height."""

    consensus: str
    height: int = Field(description="The height the state is read at (the latest committed).")
    validators: list[ValidatorModel]


# -- the node -------------------------------------------------------------------------------


class PeerModel(BaseModel):
    key: Hex = Field(description="The peer's Ed25519 node key.")
    name: str
    address: str = Field(description="host:port it is dialled at, '' if it only dials in.")
    connected: bool
    validator: bool


class NodeStatusModel(BaseModel):
    """What the node reports about itself."""

    name: str
    node_key: Hex
    validator: bool = Field(description="False for an observer (a full node that does not vote).")
    consensus: str
    chain_id: str
    height: int
    latest_hash: Hex
    latest_time_ms: int
    state_root: Hex
    round: int
    primary: Hex | None = Field(description="Who proposes this round, if known.")
    round_changes: int
    syncing: bool
    peers: list[PeerModel]
    mempool_txs: int
    mempool_bytes: int
    started_ms: int
    anchor_verified_height: int | None = Field(
        description="Highest anchored height the stored chain was verified against; null "
        "if the node does not anchor or has not checked yet."
    )
    anchor_alarm: str = Field(
        description="Why the stored chain disagrees with the anchors on the verification "
        "chain ('' when it agrees): see GET /v1/anchoring."
    )


def status_model(status: NodeStatus) -> NodeStatusModel:
    fields: dict[str, Any] = {f.name: getattr(status, f.name) for f in dataclasses.fields(status)}
    fields.update(
        node_key=hex_of(status.node_key),
        latest_hash=hex_of(status.latest_hash),
        state_root=hex_of(status.state_root),
        primary=None if status.primary is None else hex_of(status.primary),
        peers=[
            PeerModel(
                key=hex_of(p.key),
                name=p.name,
                address=p.address,
                connected=p.connected,
                validator=p.validator,
            )
            for p in status.peers
        ],
    )
    return NodeStatusModel(**fields)


class HealthModel(BaseModel):
    status: Literal["ok", "unhealthy"]
    reason: str = Field(description="Why the node is unhealthy, '' when ok.")
    height: int
    syncing: bool
    peers_connected: int
    peers_configured: int


class BlobStoredModel(BaseModel):
    cid: str = Field(description="The blob's CIDv1 (raw, sha2-256), its name from now on.")


class BlobsStoredModel(BaseModel):
    cids: list[str] = Field(description="Each blob's CIDv1 (raw, sha2-256), in the order sent.")

"""The JSON the API speaks, as pydantic models (they make the OpenAPI schema at
/docs). A model of a chain object is read from its dataclass (FromChain): each field
declared once, here, by the type it is sent as.

Bytes are lower-case hex and account addresses bech32 (mc1...). Every chain object
also carries `encoded`, the hex of its canonical encoding: the JSON fields are for
people and other languages, `encoded` is what the Python client decodes, so nothing
is lost or reinterpreted on the way."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Sequence
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any, Literal, Self

from pydantic import BaseModel, BeforeValidator, Field, model_validator

from medchain.crypto import ADDRESS_SIZE, address_from_public_key, format_address
from medchain.node import genesis_hash
from medchain.store import MAX_HEIGHT
from medchain.types import Attribute, Block, Genesis, Header, Tx, block_hash, encode, tx_id

if TYPE_CHECKING:
    from _typeshed import DataclassInstance


def hex_of(data: bytes) -> str:
    return data.hex()


def address_of(raw: bytes) -> str:
    """bech32 for a 20-byte address, '' for none; hex for anything else rather than fail."""
    if not raw:
        return ""
    return format_address(raw) if len(raw) == ADDRESS_SIZE else raw.hex()


def _from_bytes(convert: Callable[[bytes], str]) -> BeforeValidator:
    """Bytes as `convert` makes them text; text (a request's, or a model's) as it is."""
    return BeforeValidator(lambda value: convert(value) if isinstance(value, bytes) else value)


Hex = Annotated[str, _from_bytes(hex_of), Field(description="Bytes as lower-case hex.")]
Address = Annotated[
    str, _from_bytes(address_of), Field(description="Account address, bech32 (mc1...).")
]
Encoded = Annotated[
    str,
    _from_bytes(hex_of),
    Field(
        description="Hex of the object's canonical encoding (medchain.types.encode); "
        "the Python client decodes this."
    ),
]
Name = Annotated[str, BeforeValidator(lambda v: v.value if isinstance(v, Enum) else v)]
"""An enum member (a role, a device's state...) by its value."""


@functools.cache
def _field_names(cls: type[DataclassInstance]) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(cls))


def fields_of(obj: DataclassInstance) -> dict[str, Any]:
    """A dataclass's fields by name, not converted (nested dataclasses stay as they are)."""
    return {name: getattr(obj, name) for name in _field_names(type(obj))}


class FromChain(BaseModel):
    """A response model read from a chain dataclass: the dataclass's fields of the same
    names, converted by the model's types (Hex, Address, Name, nested models, tuples as
    lists), and `encoded`, the canonical encoding, when the model has it. A field the
    model lacks is not sent; one the dataclass lacks is given to `of`."""

    @model_validator(mode="before")
    @classmethod
    def _read_dataclass(cls, data: Any) -> Any:
        if not dataclasses.is_dataclass(data) or isinstance(data, type):
            return data
        return cls._fields(data)

    @classmethod
    def _fields(cls, obj: DataclassInstance) -> dict[str, Any]:
        fields = fields_of(obj)
        if "encoded" in cls.model_fields:
            fields["encoded"] = encode(obj)
        return fields

    @classmethod
    def of(cls, obj: DataclassInstance, **extra: Any) -> Self:
        """The model of `obj`; `extra` gives (or replaces) fields it does not hold."""
        return cls.model_validate({**cls._fields(obj), **extra})


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


# -- errors -------------------------------------------------------------------------


class ErrorDetail(BaseModel):
    code: str = Field(description="Stable machine-readable name, e.g. `nonce_reused`.")
    message: str = Field(description="What went wrong and what to do, for people.")


class ErrorBody(BaseModel):
    """Every failure, whatever its status."""

    error: ErrorDetail


# -- transactions and receipts ----------------------------------------------------------


def _attribute_map(value: Any) -> Any:
    if isinstance(value, tuple) and all(isinstance(a, Attribute) for a in value):
        return {a.key: a.value for a in value}
    return value


class EventModel(FromChain):
    """An event; its attributes as an object (in `encoded`, a list of key-value pairs)."""

    kind: str
    attributes: Annotated[dict[str, str], BeforeValidator(_attribute_map)]


class ReceiptModel(FromChain):
    """Outcome of a committed transaction; `ok` false means the call was refused (its
    fee and nonce were still consumed)."""

    tx_id: Hex
    ok: bool
    code: str
    message: str
    events: list[EventModel]
    encoded: Encoded


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


class CertificateModel(FromChain):
    """Validators' signatures over the block hash: proof the block was committed."""

    height: int
    round: int
    block_hash: Hex
    signers: list[SignerModel]


class BlockModel(FromChain):
    """A block: its header's fields and hash, the hashes of its transactions (their
    bodies are in `encoded`) and who signed its certificate."""

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


class BlockSummaryModel(FromChain):
    """What a follower of the chain needs of a block, without its transactions' bodies
    or its certificate: written by hand because it deliberately leaves them out (a
    block of record uploads is hundreds of kilobytes as JSON; its summary is its
    transaction ids)."""

    height: int
    hash: Hex
    time_ms: int
    proposer: Address
    tx_hashes: list[Hex]


class BlockSummariesModel(BaseModel):
    latest: int = Field(description="The node's latest committed height.")
    blocks: list[BlockSummaryModel] = Field(
        description="The summaries asked for that the node has, lowest height first."
    )


def block_summary(header: Header, tx_ids: Sequence[bytes]) -> BlockSummaryModel:
    return BlockSummaryModel.of(header, hash=block_hash(header), tx_hashes=list(tx_ids))


def block_model(block: Block, genesis: Genesis) -> BlockModel:
    header, cert = block.header, block.certificate
    names = {v.public_key: v.name for v in genesis.validators}
    signers = [
        SignerModel.model_validate(
            {
                "public_key": s.validator,
                "address": address_from_public_key(s.validator),
                "name": names.get(s.validator, ""),
            }
        )
        for s in cert.signatures
    ]
    return BlockModel.of(
        block,
        **fields_of(header),
        hash=block_hash(header),
        tx_hashes=[tx_id(tx) for tx in block.txs],
        certificate=CertificateModel.of(cert, signers=signers),
    )


class AllocationModel(FromChain):
    address: Address
    amount: int


class GenesisValidatorModel(FromChain):
    public_key: Hex
    name: str
    power: int


class GenesisModel(FromChain):
    """The genesis document (as in genesis.json), its hash and its encoding."""

    chain_id: str
    time_ms: int
    params: dict[str, int | str] = Field(description="Consensus-critical chain parameters.")
    allocations: list[AllocationModel]
    validators: list[GenesisValidatorModel]
    hash: Hex
    encoded: Encoded


def genesis_model(genesis: Genesis) -> GenesisModel:
    return GenesisModel.of(
        genesis, params=dataclasses.asdict(genesis.params), hash=genesis_hash(genesis)
    )


# -- accounts and the registry ----------------------------------------------------------


class AccountModel(FromChain):
    address: Address
    balance: int
    nonce: int = Field(description="The nonce the account's next transaction must carry.")
    encoded: Encoded


class IdentityModel(FromChain):
    """A registered account. A patient's name is empty and the profile sealed to them."""

    address: Address
    public_key: Hex
    encryption_key: Hex = Field(description="X25519 key records are wrapped for.")
    role: Name
    name: str
    profile: Hex
    registered_height: int
    record_count: int
    ring_key: Hex = Field(description="ristretto255 key for ring signatures, '' if none.")
    encoded: Encoded


class RoleCountModel(BaseModel):
    role: Name
    count: int


class RoleMemberModel(BaseModel):
    role: Name
    index: int
    address: Address


# -- records ----------------------------------------------------------------------------


class ReaderGrantModel(FromChain):
    """What a reader of a record may read it for, and until when."""

    reader: Address
    purposes: list[Name] = Field(description="HL7 PurposeOfUse codes (TREAT, HPAYMT...).")
    expires_ms: int = Field(description="Block time the grant ends at; 0 = never.")
    granted_height: int = Field(description="0 for a reader granted before terms were kept.")
    consent_id: int = Field(description="The standing consent it follows from; 0 = none.")
    encoded: Encoded


class RecordModel(FromChain):
    """Public metadata of a record; its content is off chain, encrypted."""

    record_id: Hex
    owner: Address
    author: Address
    resource_type: str
    created_height: int
    readers: list[Address] = Field(description="Authorised readers besides the owner.")
    version_count: int
    audit_count: int
    erased_height: int = Field(
        0, description="Height the patient erased the record at; 0 while it is not erased."
    )
    erased_ms: int = Field(0, description="Block time of the erasure (ms), 0 if none.")
    erased_by: Address = Field(
        "", description="Who erased it: the patient or their `grant` proxy; '' if none."
    )
    encoded: Encoded
    grants: list[ReaderGrantModel] = Field(
        default_factory=list, description="The terms of each reader, by reader."
    )


class KeyWrapModel(FromChain):
    reader: Address
    wrapped_key: Hex


class RecordVersionModel(FromChain):
    record_id: Hex
    number: int
    cid: str = Field(description="CID of the ciphertext in the blob store (GET /v1/blobs/{cid}).")
    ciphertext_hash: Hex
    author: Address
    height: int
    tx_id: Hex
    wraps: list[KeyWrapModel] = Field(description="The content key, wrapped for each reader.")
    encoded: Encoded


class AuditEntryModel(FromChain):
    seq: int
    height: int
    time_ms: int
    tx_id: Hex
    action: Name
    actor: Address
    subject: Address = Field(description="The reader or institution concerned, '' if none.")
    version: int
    on_behalf: Address = Field(
        description="The patient the actor acted for as their proxy, '' if the actor "
        "acted for themselves."
    )
    encoded: Encoded


class AuditModel(BaseModel):
    record_id: Hex
    entries: list[AuditEntryModel]


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


class ResearchEntryModel(FromChain):
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


# -- anonymous submission -----------------------------------------------------------------


class AnonScopeModel(FromChain):
    name: str
    recipient: Address = Field(description="The institution every contribution is sealed to.")
    member_role: Name
    min_ring: int
    open: bool
    count: int
    opened_height: int
    verified_only: bool = Field(
        description="Every ring member must be a patient a member organisation attests."
    )
    encoded: Encoded


class AnonEntryModel(FromChain):
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


# -- staking and validators ---------------------------------------------------------------


class UnbondingModel(FromChain):
    amount: int
    release_height: int


class VoteAllocationModel(FromChain):
    candidate: Address
    amount: int


class StakeModel(FromChain):
    address: Address
    bonded: int
    unbonding: list[UnbondingModel]
    votes: list[VoteAllocationModel]
    encoded: Encoded


class CandidateModel(FromChain):
    address: Address
    votes: int
    declared_height: int
    encoded: Encoded


class CandidatesModel(BaseModel):
    """Declared candidates in election order."""

    candidates: list[CandidateModel]


class ValidatorModel(BaseModel):
    """A genesis validator and its standing in state: stake, votes, bans."""

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


class PeerModel(FromChain):
    key: Hex = Field(description="The peer's Ed25519 node key.")
    name: str
    address: str = Field(description="host:port it is dialled at, '' if it only dials in.")
    connected: bool
    validator: bool


class NodeStatusModel(FromChain):
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


class PendingTxModel(BaseModel):
    """A transaction waiting in the mempool: who sent it and what it calls (its
    arguments are shown once a block commits it)."""

    tx_hash: Hex
    sender: Address
    method: str
    nonce: int
    fee: int
    size: int = Field(description="Encoded bytes.")

    @classmethod
    def of(cls, tx: Tx) -> PendingTxModel:
        fields = {"tx_hash": tx_id(tx), "sender": address_from_public_key(tx.sender)}
        return cls.model_validate(
            {
                **fields,
                "method": tx.method,
                "nonce": tx.nonce,
                "fee": tx.fee,
                "size": len(tx.encoded),
            }
        )


class MempoolModel(BaseModel):
    count: int = Field(description="Transactions waiting in this node's mempool.")
    bytes: int = Field(description="Their encoded size.")
    txs: list[PendingTxModel] = Field(description="The first `limit` of them, oldest first.")


class HealthModel(BaseModel):
    status: Literal["ok", "unhealthy"]
    reason: str = Field(description="Why the node is unhealthy, '' when ok.")
    height: int
    syncing: bool
    peers_connected: int
    peers_configured: int


class BlobsStoredModel(BaseModel):
    cids: list[str] = Field(description="Each blob's CIDv1 (raw, sha2-256), in the order sent.")

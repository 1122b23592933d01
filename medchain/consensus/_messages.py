"""Consensus messages on the wire. Every message is signed by its sender's validator
key; votes are signed over fixed byte layouts (commit votes over the very bytes a
block's certificate holds) so any node, or the chain itself, can check them later."""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, TypeVar

from medchain.crypto import (
    address_from_public_key,
    cached_merkle_root,
    tagged_hash,
    verify_signature,
)
from medchain.types import (
    Block,
    Certificate,
    CommitSig,
    DecodeError,
    Header,
    SignedProposal,
    Tx,
    accusation_signing_bytes,
    block_hash,
    commit_signing_bytes,
    decode,
    encode,
    proposal_signing_bytes,
    tx_id,
)

T = TypeVar("T")


class Kind(enum.StrEnum):
    PROPOSAL = "proposal"
    PREPARE = "prepare"
    COMMIT = "commit"
    ROUND_CHANGE = "round_change"
    CHECKPOINT = "checkpoint"
    ACCUSATION = "accusation"
    SYNC_REQUEST = "sync_request"
    SYNC_RESPONSE = "sync_response"
    ORDERING = "ordering"
    """Only an envelope's kind: an AFBFT proposal carrying an `Ordering` (a proposal
    all the same, signed, logged and counted as `PROPOSAL`)."""


@dataclass(frozen=True, slots=True)
class Vote:
    """A prepare or commit vote for `block_hash` at (height, round)."""

    kind: Kind
    height: int
    round: int
    block_hash: bytes
    validator: bytes
    proposal_signature: bytes = b""
    """Prepare votes echo the primary's signature on the proposal, so a primary that
    sent different blocks to different validators is caught by whoever sees both."""
    signature: bytes = b""


@dataclass(frozen=True, slots=True)
class PreparedCertificate:
    """Proof that `block` was prepared at `round`: a quorum of prepare votes."""

    round: int
    block: Block
    prepares: tuple[Vote, ...]


@dataclass(frozen=True, slots=True)
class RoundChange:
    """PBFT's view change: the sender gives up on rounds below `round`, carrying the
    highest certificate it prepared (zero or one) so a prepared block survives, and
    the signed proposal it prepared in the round it leaves (zero or one): AFBFT's
    prepares do not echo the proposer's signature, so a candidate that split its
    proposal is caught from these."""

    height: int
    round: int
    prepared: tuple[PreparedCertificate, ...]
    validator: bytes
    signature: bytes = b""
    prepared_proposal: tuple[SignedProposal, ...] = ()


@dataclass(frozen=True, slots=True)
class Ordering:
    """AFBFT's fresh proposal: the next block's transactions in the candidate's
    order, with its parent and time, not executed. Only the winning draw's ordering
    becomes a block, which every validator builds itself (`ConsensusApp.build`), so a
    height costs one execution per node instead of one per candidate and then one."""

    parent: bytes
    """Block id of the block it extends."""
    time_ms: int
    txs: tuple[Tx, ...]


@dataclass(frozen=True, slots=True)
class Proposal:
    """The primary's pre-prepare. Above round 0 it is justified by a quorum of round
    changes (PBFT's new-view). `vrf_proof` is AFBFT's draw: every candidate proposes
    with its proof, so nobody learns the winner before the blocks are out. An AFBFT
    candidate's fresh proposal carries an `Ordering`; a re-proposed prepared block,
    and every PBFT and DPoS proposal, a full block."""

    height: int
    round: int
    block: Block | Ordering
    vrf_proof: bytes
    justification: tuple[RoundChange, ...]
    proposer: bytes
    signature: bytes = b""


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """Every `checkpoint_interval` heights: the signer's view of the chain there."""

    height: int
    block_hash: bytes
    state_root: bytes
    validator: bytes
    signature: bytes = b""


@dataclass(frozen=True, slots=True)
class AccusationMessage:
    """The sender found the proposal `block_hash` at (height, round) invalid."""

    height: int
    round: int
    block_hash: bytes
    validator: bytes
    signature: bytes = b""


@dataclass(frozen=True, slots=True)
class SyncRequest:
    from_height: int
    validator: bytes
    signature: bytes = b""


@dataclass(frozen=True, slots=True)
class SyncResponse:
    """Committed blocks, each with its certificate, for a node that fell behind."""

    blocks: tuple[Block, ...]
    validator: bytes
    signature: bytes = b""


@dataclass(frozen=True, slots=True)
class Envelope:
    kind: Kind
    body: bytes


_PROPOSER_ELIDED = 1
_DRAW_ELIDED = 2


@dataclass(frozen=True, slots=True)
class ProposalBody:
    """A proposal as it travels, without what the receiver derives: the block's
    certificate (a proposal's is the empty one until the block is decided), and, in a
    freshly built block, the header's proposer address (the signer's) and VRF proof
    (the proposal's own). AFBFT sends K of these per height to every validator, so
    each byte left out counts K times."""

    height: int
    round: int
    header: Header
    """`proposer` and `vrf_proof` emptied where `elided` says so."""
    elided: int
    txs: tuple[Tx, ...]
    certificate: tuple[Certificate, ...]
    """Empty for the empty certificate of the header's block."""
    vrf_proof: bytes
    justification: tuple[RoundChange, ...]
    proposer: bytes
    signature: bytes

    @classmethod
    def of(cls, proposal: Proposal) -> ProposalBody:
        block = proposal.block
        assert isinstance(block, Block), "an ordering travels as an OrderingBody"
        header = block.header
        elided = 0
        if header.proposer == address_from_public_key(proposal.proposer):
            elided |= _PROPOSER_ELIDED
        if header.vrf_proof == proposal.vrf_proof:
            elided |= _DRAW_ELIDED
        carried = dataclasses.replace(
            header,
            proposer=b"" if elided & _PROPOSER_ELIDED else header.proposer,
            vrf_proof=b"" if elided & _DRAW_ELIDED else header.vrf_proof,
        )
        empty = block.certificate == _empty_certificate(header)
        certificate = () if empty else (block.certificate,)
        return cls(
            proposal.height,
            proposal.round,
            carried,
            elided,
            block.txs,
            certificate,
            proposal.vrf_proof,
            proposal.justification,
            proposal.proposer,
            proposal.signature,
        )

    def proposal(self) -> Proposal:
        carried, elided = self.header, self.elided
        if elided & ~(_PROPOSER_ELIDED | _DRAW_ELIDED) or len(self.certificate) > 1:
            raise DecodeError("malformed proposal encoding")
        if (elided & _PROPOSER_ELIDED and carried.proposer) or (
            elided & _DRAW_ELIDED and carried.vrf_proof
        ):
            raise DecodeError("a proposal carries a header field it marks as elided")
        if len(self.proposer) != KEY_SIZE:
            raise DecodeError("signer key of the wrong size")
        header = dataclasses.replace(
            carried,
            proposer=address_from_public_key(self.proposer)
            if elided & _PROPOSER_ELIDED
            else carried.proposer,
            vrf_proof=self.vrf_proof if elided & _DRAW_ELIDED else carried.vrf_proof,
        )
        certificate = self.certificate[0] if self.certificate else _empty_certificate(header)
        block = Block(header, self.txs, certificate)
        return Proposal(
            self.height,
            self.round,
            block,
            self.vrf_proof,
            self.justification,
            self.proposer,
            self.signature,
        )


@dataclass(frozen=True, slots=True)
class OrderingBody:
    """A proposal carrying an `Ordering`, as it travels."""

    height: int
    round: int
    parent: bytes
    time_ms: int
    txs: tuple[Tx, ...]
    vrf_proof: bytes
    justification: tuple[RoundChange, ...]
    proposer: bytes
    signature: bytes

    @classmethod
    def of(cls, proposal: Proposal) -> OrderingBody:
        ordering = proposal.block
        assert isinstance(ordering, Ordering)
        return cls(
            proposal.height,
            proposal.round,
            ordering.parent,
            ordering.time_ms,
            ordering.txs,
            proposal.vrf_proof,
            proposal.justification,
            proposal.proposer,
            proposal.signature,
        )

    def proposal(self) -> Proposal:
        if len(self.parent) != 32:
            raise DecodeError("an ordering's parent is not a 32-byte block id")
        ordering = Ordering(self.parent, self.time_ms, self.txs)
        return Proposal(
            self.height,
            self.round,
            ordering,
            self.vrf_proof,
            self.justification,
            self.proposer,
            self.signature,
        )


@dataclass(frozen=True, slots=True)
class CompactOrdering:
    """An AFBFT ordering as nodes relay it: the proposal with its transactions' ids
    in place of their bodies, but for the few the proposer expects its peers to lack
    (handed to it by its clients moments before). Each validator holds the rest
    already, gossiped to its mempool, and the K candidates' orderings mostly repeat
    one another, so sending every body K times a height cost a validator more
    decoding than anything else it did. The receiver takes the bodies from its
    mempool by id and asks the proposer for any it still lacks; a body sent along
    stays encoded until the receiver finds it lacks it (gossip usually brought it
    first). The ids alone determine the ordering id the proposer signed, so the
    signature is checked before any body is looked up or fetched, and a body is
    taken only if it hashes to its id."""

    shell: OrderingBody
    """The proposal as it travels, its `txs` empty."""
    tx_ids: tuple[bytes, ...]
    sent: tuple[int, ...]
    """The positions, ascending, of the bodies sent along."""
    bodies: tuple[bytes, ...]
    """Those bodies, encoded."""

    @classmethod
    def of(cls, proposal: Proposal, send_body: Callable[[bytes], bool]) -> CompactOrdering:
        """`send_body(tx_id)`: whether peers are likely to lack that body."""
        body = OrderingBody.of(proposal)
        ids = tuple(tx_id(tx) for tx in body.txs)
        sent = tuple(k for k, identity in enumerate(ids) if send_body(identity))
        bodies = tuple(body.txs[k].encoded for k in sent)
        return cls(dataclasses.replace(body, txs=()), ids, sent, bodies)

    def sent_along(self) -> dict[int, bytes]:
        """The encoded bodies sent along, by position."""
        return dict(zip(self.sent, self.bodies, strict=True))

    def digest(self) -> bytes:
        """The ordering id its proposer signed."""
        shell = self.shell
        return _ordering_digest(
            shell.height, shell.parent, shell.time_ms, shell.vrf_proof, self.tx_ids
        )

    def authentic(self, chain_id: str) -> bool:
        shell = self.shell
        signed = proposal_signing_bytes(chain_id, shell.height, shell.round, self.digest())
        return _verify_cached(shell.proposer, signed, shell.signature)

    def proposal(self, txs: tuple[Tx, ...]) -> Proposal:
        """The proposal, given its transactions' bodies in order (each one checked
        against its id: a body that is not the signed one is refused)."""
        if len(txs) != len(self.tx_ids) or any(
            tx_id(tx) != identity for tx, identity in zip(txs, self.tx_ids, strict=True)
        ):
            raise DecodeError("the transactions are not the ones the ordering names")
        return dataclasses.replace(self.shell, txs=txs).proposal()


def unwire_compact(data: bytes, max_txs: int) -> CompactOrdering:
    """Decode a relayed ordering naming at most `max_txs` transactions; DecodeError
    for anything malformed, as `unwire`."""
    compact = decode(CompactOrdering, data)
    count, sent = len(compact.tx_ids), compact.sent
    if count > max_txs:
        raise DecodeError(f"a relayed ordering names {count} transactions, at most {max_txs}")
    if any(len(identity) != 32 for identity in compact.tx_ids):
        raise DecodeError("a transaction id is not 32 bytes")
    if compact.shell.txs:
        raise DecodeError("a relayed ordering carries bodies outside its list of them")
    if len(sent) != len(compact.bodies) or (
        sent and (list(sent) != sorted(set(sent)) or not 0 <= sent[0] <= sent[-1] < count)
    ):
        raise DecodeError("a relayed ordering's bodies are not at distinct positions of it")
    _check_bounds(compact.shell.proposal())
    return compact


def _empty_certificate(header: Header) -> Certificate:
    return Certificate(header.height, 0, _header_id(header), ())


Message = (
    Proposal | Vote | RoundChange | Checkpoint | AccusationMessage | SyncRequest | SyncResponse
)

_BODY: dict[Kind, type[Any]] = {
    Kind.PROPOSAL: ProposalBody,
    Kind.PREPARE: Vote,
    Kind.COMMIT: Vote,
    Kind.ROUND_CHANGE: RoundChange,
    Kind.CHECKPOINT: Checkpoint,
    Kind.ACCUSATION: AccusationMessage,
    Kind.SYNC_REQUEST: SyncRequest,
    Kind.SYNC_RESPONSE: SyncResponse,
    Kind.ORDERING: OrderingBody,
}


def kind_of(message: Message) -> Kind:
    if isinstance(message, Vote):
        return message.kind
    if isinstance(message, Proposal):
        return Kind.PROPOSAL
    for kind, cls in _BODY.items():
        if type(message) is cls:
            return kind
    raise TypeError(f"not a consensus message: {type(message).__name__}")


def wire(message: Message) -> bytes:
    if isinstance(message, Proposal) and isinstance(message.block, Ordering):
        return encode(Envelope(Kind.ORDERING, encode(OrderingBody.of(message))))
    body = ProposalBody.of(message) if isinstance(message, Proposal) else message
    return encode(Envelope(kind_of(message), encode(body)))


@lru_cache(maxsize=4096)
def unwire(data: bytes) -> Message:
    """Decode a wire message; DecodeError for anything malformed. Messages are
    immutable, so a broadcast received by many engines in one process decodes once."""
    envelope = decode(Envelope, data)
    body = decode(_BODY[envelope.kind], envelope.body)
    message: Message = body.proposal() if isinstance(body, ProposalBody | OrderingBody) else body
    if isinstance(message, Vote) and message.kind is not envelope.kind:
        raise DecodeError("vote kind does not match its envelope")
    _check_bounds(message)
    return message


MAX_HEIGHT = 2**63 - 1
MAX_ROUND = 2**31 - 1
KEY_SIZE = 32
SIG_SIZE = 64


def _check_bounds(message: Message) -> None:
    """Field ranges and sizes the signed layouts assume: a hostile peer's message that
    decodes but does not fit them is malformed, never a crash further in."""
    height = getattr(message, "height", getattr(message, "from_height", 0))
    round_ = getattr(message, "round", 0)
    if not 0 <= height <= MAX_HEIGHT or not 0 <= round_ <= MAX_ROUND:
        raise DecodeError("height or round out of range")
    if len(signer_of(message)) != KEY_SIZE or len(message.signature) != SIG_SIZE:
        raise DecodeError("signer key or signature of the wrong size")
    if isinstance(message, Vote | AccusationMessage | Checkpoint) and len(message.block_hash) != 32:
        raise DecodeError("block hash of the wrong size")
    if (
        isinstance(message, Vote)
        and message.proposal_signature not in (b"",)
        and len(message.proposal_signature) != SIG_SIZE
    ):
        raise DecodeError("proposal signature of the wrong size")
    for change in message.justification if isinstance(message, Proposal) else ():
        _check_bounds(change)
    for cert in message.prepared if isinstance(message, RoundChange) else ():
        if not 0 <= cert.round <= MAX_ROUND:
            raise DecodeError("prepared round out of range")
        for vote in cert.prepares:
            _check_bounds(vote)
    shown = message.prepared_proposal if isinstance(message, RoundChange) else ()
    for signed in shown:
        if not 0 <= signed.height <= MAX_HEIGHT or not 0 <= signed.round <= MAX_ROUND:
            raise DecodeError("prepared proposal's height or round out of range")
        sizes = (len(signed.block_hash), len(signed.proposer), len(signed.signature))
        if sizes != (32, KEY_SIZE, SIG_SIZE) or len(shown) > 1:
            raise DecodeError("malformed prepared proposal")


def signing_bytes(chain_id: str, message: Message) -> bytes:
    """The bytes a message's signature covers."""
    if isinstance(message, Proposal):
        return proposal_signing_bytes(
            chain_id, message.height, message.round, proposal_digest(message)
        )
    if isinstance(message, Vote) and message.kind is Kind.COMMIT:
        return commit_signing_bytes(chain_id, message.height, message.round, message.block_hash)
    if isinstance(message, AccusationMessage):
        return accusation_signing_bytes(chain_id, message.height, message.round, message.block_hash)
    unsigned = dataclasses.replace(message, signature=b"")
    return b"medchain/consensus/v1\x00" + chain_id.encode() + b"\x00" + encode(unsigned)


M = TypeVar("M", bound=Message)


def sign(chain_id: str, message: M, signer: Any) -> M:
    """`signer` has `.sign(bytes) -> bytes` (AccountKeys)."""
    return dataclasses.replace(message, signature=signer.sign(signing_bytes(chain_id, message)))


@lru_cache(maxsize=4096)
def _verify_cached(public_key: bytes, data: bytes, signature: bytes) -> bool:
    """A broadcast reaches every node with the same bytes; verify them once. The same
    message comes back within a height or two (a simulation's engines, a certificate
    checked after its votes), so 4,096 checks cover hundreds of heights at 4
    validators; at 65,536, about half a kilobyte each, the cache kept filling for an
    hour (7,000 blocks) and grew a validator by some 30 MB."""
    return verify_signature(public_key, data, signature)


def signer_of(message: Message) -> bytes:
    if isinstance(message, Proposal):
        return message.proposer
    return message.validator


def verify(chain_id: str, message: Message) -> bool:
    return _verify_cached(signer_of(message), signing_bytes(chain_id, message), message.signature)


@lru_cache(maxsize=4096)
def authentic(chain_id: str, data: bytes) -> bool:
    """`verify` of the message `data` decodes to, once per distinct bytes (a broadcast
    reaches many engines in one process; rebuilding its signed bytes each time costs
    more than the check)."""
    return verify(chain_id, unwire(data))


def signed_txs(chain_id: str, data: bytes) -> tuple[Tx, ...]:
    """The transactions the wire message `data` carries (in its blocks, or in an
    AFBFT ordering) if its signature holds: what a node checks the signatures of
    before the engine may build or run them; () otherwise."""
    try:
        message = unwire(data)
    except DecodeError:
        return ()
    txs = [tx for block in _blocks_of(message) for tx in block.txs]
    if isinstance(message, Proposal) and isinstance(message.block, Ordering):
        txs += message.block.txs
    if not txs or not authentic(chain_id, data):
        return ()
    return tuple(txs)


def _blocks_of(message: Message) -> tuple[Block, ...]:
    if isinstance(message, Proposal):
        carried = [message.block] if isinstance(message.block, Block) else []
        changes = message.justification
    elif isinstance(message, SyncResponse):
        return message.blocks
    else:
        carried = []
        changes = (message,) if isinstance(message, RoundChange) else ()
    carried += [cert.block for change in changes for cert in change.prepared]
    return tuple(carried)


def block_id(block: Block) -> bytes:
    return _header_id(block.header)


@lru_cache(maxsize=4096)
def _header_id(header: Header) -> bytes:
    return block_hash(header)


def body_matches_header(block: Block) -> bool:
    """The transactions are the ones the header commits to. A block's id (and the
    signatures on it) cover only the header, so a copy with altered transactions
    would otherwise pass as the signed block."""
    return cached_merkle_root(tuple(tx_id(tx) for tx in block.txs)) == block.header.tx_root


@lru_cache(maxsize=1024)
def ordering_id(height: int, ordering: Ordering, vrf_proof: bytes) -> bytes:
    """What a candidate signs for an ordering, in place of a block id: it binds all
    the block built from it takes from the proposal (height, parent, time, the draw
    that goes into the header, the transactions in order), so one signed ordering
    builds one block. Its own hash domain keeps it from ever equalling a block id."""
    ids = tuple(tx_id(tx) for tx in ordering.txs)
    return _ordering_digest(height, ordering.parent, ordering.time_ms, vrf_proof, ids)


def _ordering_digest(
    height: int, parent: bytes, time_ms: int, vrf_proof: bytes, tx_ids: tuple[bytes, ...]
) -> bytes:
    """`ordering_id` from the transactions' ids alone: a compact ordering's signature
    is checked before any body is looked up or fetched."""
    statement = _OrderingStatement(
        height, parent, time_ms, vrf_proof, cached_merkle_root(tx_ids), len(tx_ids)
    )
    return tagged_hash("medchain/ordering", encode(statement))


@dataclass(frozen=True, slots=True)
class _OrderingStatement:
    height: int
    parent: bytes
    time_ms: int
    vrf_proof: bytes
    tx_root: bytes
    tx_count: int


def proposal_digest(proposal: Proposal) -> bytes:
    """What the proposer signed: its block's id, or its ordering's."""
    if isinstance(proposal.block, Ordering):
        return ordering_id(proposal.height, proposal.block, proposal.vrf_proof)
    return block_id(proposal.block)


def signed_proposal(proposal: Proposal) -> SignedProposal:
    """The proposer's signed statement, as evidence carries it (`block_hash` is the
    signed digest: a block id, or an ordering id)."""
    return SignedProposal(
        proposal.height,
        proposal.round,
        proposal_digest(proposal),
        proposal.proposer,
        proposal.signature,
    )


def certificate_from(votes: list[Vote], height: int, round_: int, digest: bytes) -> Certificate:
    """A block's commit certificate: the commit votes, ordered by validator key."""
    ordered = sorted(votes, key=lambda v: v.validator)
    return Certificate(
        height, round_, digest, tuple(CommitSig(v.validator, v.signature) for v in ordered)
    )


def verify_certificate(
    chain_id: str, block: Block, validators: tuple[bytes, ...], quorum: int
) -> bool:
    """Does `block` carry commit signatures of at least `quorum` distinct validators?"""
    certificate = block.certificate
    if certificate.height != block.header.height or certificate.block_hash != block_id(block):
        return False
    allowed = set(validators)
    signers = set()
    for sig in certificate.signatures:
        if sig.validator not in allowed or sig.validator in signers:
            return False
        data = commit_signing_bytes(
            chain_id, certificate.height, certificate.round, certificate.block_hash
        )
        if not _verify_cached(sig.validator, data, sig.signature):
            return False
        signers.add(sig.validator)
    return len(signers) >= quorum

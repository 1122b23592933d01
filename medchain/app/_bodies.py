"""Which off-chain bodies a transaction names: the one list a node needs to know what
its blob store must keep (a body a committed transaction names is referenced for
ever) and what an upload of a body may go with."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from medchain.app._anon import AnonSubmitArgs
from medchain.app._devices import CommitBatchArgs
from medchain.app._records import AddVersionArgs, CreateRecordArgs
from medchain.app._recovery import ApproveRecoveryArgs, SetRecoveryPolicyArgs
from medchain.app._research import ResearchGrantArgs
from medchain.types import MedchainError, Tx, cid_from_digest, decode, sha256


class BodyMismatch(MedchainError):
    """The body sent is not one the transaction names."""

    code = "ciphertext_mismatch"


@dataclass(frozen=True, slots=True)
class NamedBody:
    """A body a transaction names: its CID and the SHA-256 the chain checks it by."""

    cid: str
    ciphertext_hash: bytes


def _one(args: Any) -> tuple[NamedBody, ...]:
    return (NamedBody(args.cid, args.ciphertext_hash),)


def _approval(args: ApproveRecoveryArgs) -> tuple[NamedBody, ...]:
    return (NamedBody(args.cid, args.hash),)


def _kit_and_shares(args: SetRecoveryPolicyArgs) -> tuple[NamedBody, ...]:
    shares = tuple(NamedBody(s.cid, s.hash) for s in args.shares)
    return (NamedBody(args.kit_cid, args.kit_hash), *shares)


def _bundles(args: CommitBatchArgs) -> tuple[NamedBody, ...]:
    return tuple(NamedBody(b.cid, b.ciphertext_hash) for b in args.bundles)


_BODIES: dict[str, tuple[type[Any], Callable[[Any], tuple[NamedBody, ...]]]] = {
    "records.create": (CreateRecordArgs, _one),
    "records.add_version": (AddVersionArgs, _one),
    "research.grant": (ResearchGrantArgs, _one),
    "anon.submit": (AnonSubmitArgs, _one),
    "devices.commit_batch": (CommitBatchArgs, _bundles),
    "recovery.set_policy": (SetRecoveryPolicyArgs, _kit_and_shares),
    "recovery.approve": (ApproveRecoveryArgs, _approval),
}

BODY_METHODS = frozenset(_BODIES)
"""Methods whose transactions name off-chain bodies."""
UPLOADED_BODY_METHODS = frozenset(BODY_METHODS - {"devices.commit_batch"})
"""... whose bodies are uploaded with the transaction, one request per body (a batch's
bundles come in a gateway's bulk upload)."""
SINGLE_BODY_METHODS = frozenset(UPLOADED_BODY_METHODS - {"recovery.set_policy"})
"""... each exactly one (a batch names one bundle per patient and day, a recovery
policy its kit and one share per guardian)."""


def named_bodies(tx: Tx) -> tuple[NamedBody, ...]:
    """The bodies `tx` names, in the order of its arguments; () for a method that names
    none. Raises DecodeError when the arguments do not decode (a committed, successful
    transaction's always do)."""
    entry = _BODIES.get(tx.method)
    if entry is None:
        return ()
    kind, bodies = entry
    return bodies(decode(kind, tx.args))


def body_named(tx: Tx, body: bytes) -> NamedBody:
    """Which of the bodies `tx` names `body` is: BodyMismatch if none (its SHA-256 must
    be both the CID's digest and the hash the transaction commits to)."""
    digest = sha256(body)
    cid = cid_from_digest(digest)
    for named in named_bodies(tx):
        if named.cid == cid and named.ciphertext_hash == digest:
            return named
    raise BodyMismatch(
        f"the body sent ({cid}) is not one the {tx.method} transaction names (by CID and "
        "hash); send the sealed body the transaction was built for"
    )

"""Which off-chain bodies a transaction names: every method whose arguments hold a CID
is listed (so a new one cannot be forgotten by the node's collector), each decodes to
its bodies, and a body is matched to the transaction by CID and hash."""

from __future__ import annotations

import dataclasses
import typing
from typing import Any

import pytest

from medchain.app import (
    BODY_METHODS,
    METHODS,
    SINGLE_BODY_METHODS,
    UPLOADED_BODY_METHODS,
    AddVersionArgs,
    AnonSubmitArgs,
    ApproveRecoveryArgs,
    BodyMismatch,
    Bundle,
    CommitBatchArgs,
    CreateRecordArgs,
    ResearchGrantArgs,
    SetRecoveryPolicyArgs,
    ShareRef,
    TransferArgs,
    body_named,
    named_bodies,
)
from medchain.crypto import AccountKeys, signed_tx
from medchain.offchain import cid_for
from medchain.types import DecodeError, Tx, encode, sha256


def _holds_a_cid(kind: Any, seen: set[Any]) -> bool:
    """Whether values of `kind` (a dataclass, tuple or plain type) hold a CID field."""
    if kind in seen:
        return False
    seen.add(kind)
    if dataclasses.is_dataclass(kind):
        hints = typing.get_type_hints(kind)
        return any(
            field.name == "cid" or _holds_a_cid(hints[field.name], seen)
            for field in dataclasses.fields(kind)
        )
    return any(_holds_a_cid(arg, seen) for arg in typing.get_args(kind))


def test_every_method_whose_arguments_hold_a_cid_is_listed() -> None:
    holding = {name for name, (kind, _) in METHODS.items() if _holds_a_cid(kind, set())}
    assert holding == BODY_METHODS
    assert BODY_METHODS - {"devices.commit_batch"} == UPLOADED_BODY_METHODS
    assert UPLOADED_BODY_METHODS - {"recovery.set_policy"} == SINGLE_BODY_METHODS


def _tx(method: str, args: object) -> Tx:
    return signed_tx(AccountKeys.generate(), "medchain-test", 0, method, args)


BODY = b"sealed body"
CID, HASH = cid_for(BODY), sha256(BODY)


@pytest.mark.parametrize(
    ("method", "args"),
    [
        ("records.create", CreateRecordArgs(b"\x01" * 20, "Observation", CID, HASH, ())),
        ("records.add_version", AddVersionArgs(b"\x02" * 16, CID, HASH, ())),
        ("research.grant", ResearchGrantArgs(b"\x02" * 16, b"\x03" * 20, CID, HASH, ())),
        ("anon.submit", AnonSubmitArgs("scope", (b"\x01" * 20,), CID, HASH, ())),
        ("recovery.approve", ApproveRecoveryArgs(b"\x04" * 16, CID, HASH)),
    ],
)
def test_a_single_body_method_names_its_body(method: str, args: object) -> None:
    tx = _tx(method, args)
    (named,) = named_bodies(tx)
    assert (named.cid, named.ciphertext_hash) == (CID, HASH)
    assert body_named(tx, BODY) == named
    with pytest.raises(BodyMismatch, match=f"not one the {method} transaction names"):
        body_named(tx, BODY + b"!")


def test_a_batch_names_each_bundle() -> None:
    bodies = [b"bundle 1", b"bundle 2"]
    bundles = tuple(
        Bundle(bytes([n]) * 20, cid_for(b), sha256(b), 1, 0, 0, ()) for n, b in enumerate(bodies)
    )
    tx = _tx("devices.commit_batch", CommitBatchArgs(b"\x00" * 32, 2, bundles))
    assert [b.cid for b in named_bodies(tx)] == [cid_for(b) for b in bodies]
    assert body_named(tx, b"bundle 2").cid == cid_for(b"bundle 2")


def test_a_recovery_policy_names_its_kit_and_each_share() -> None:
    kit, shares = b"kit", [b"share 1", b"share 2"]
    refs = tuple(ShareRef(bytes([n]) * 20, cid_for(b), sha256(b)) for n, b in enumerate(shares))
    args = SetRecoveryPolicyArgs(
        tuple(r.guardian for r in refs), 2, 1, cid_for(kit), sha256(kit), refs
    )
    tx = _tx("recovery.set_policy", args)
    assert [b.cid for b in named_bodies(tx)] == [cid_for(b) for b in (kit, *shares)]
    assert body_named(tx, b"share 2").cid == cid_for(b"share 2")


def test_a_body_must_match_both_the_cid_and_the_hash() -> None:
    wrong_hash = CreateRecordArgs(b"\x01" * 20, "Observation", CID, sha256(b"other"), ())
    with pytest.raises(BodyMismatch):
        body_named(_tx("records.create", wrong_hash), BODY)


def test_other_methods_name_nothing_and_bad_arguments_do_not_decode() -> None:
    assert named_bodies(_tx("accounts.transfer", TransferArgs(b"\x01" * 20, 1, ""))) == ()
    garbled = Tx("medchain-test", 0, b"", 0, "records.create", encode(b"not args", bytes))
    with pytest.raises(DecodeError):
        named_bodies(garbled)

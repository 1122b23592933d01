"""Signature checks as data: run anywhere, cached by a key covering all their inputs."""

from __future__ import annotations

import pickle

import pytest

from medchain.app import (
    ED25519_COST,
    RING_MEMBER_COST,
    InvalidSignature,
    SignatureCache,
    SignatureCheck,
    require_signature,
    run_checks,
)
from medchain.crypto import AccountKeys, ring_sign


def _signed(message: bytes = b"hello") -> tuple[AccountKeys, SignatureCheck]:
    keys = AccountKeys.generate()
    return keys, SignatureCheck(b"k-" + message, message, keys.sign(message), keys.public_key)


def test_an_ed25519_check_passes_once_and_is_remembered() -> None:
    _, check = _signed()
    cache = SignatureCache()
    require_signature(check, cache)
    assert check.key in cache and check.cost == ED25519_COST and check.key_image == b""
    forged = SignatureCheck(b"other", b"hellO", check.signature, check.public_key)
    with pytest.raises(InvalidSignature, match="sender's own key file"):
        require_signature(forged, cache)
    assert forged.key not in cache  # only passes are remembered


def test_a_ring_check_costs_per_member_and_carries_its_key_image() -> None:
    members = [AccountKeys.generate() for _ in range(3)]
    ring = tuple(m.ring_public_key for m in members)
    signature = ring_sign(b"data", ring, members[1].ring_secret)
    check = SignatureCheck(b"ring", b"data", signature, ring=ring, max_ring_size=64)
    assert check.anonymous and check.cost == 3 * RING_MEMBER_COST
    assert check.key_image == signature.key_image
    wrong = SignatureCheck(b"ring2", b"dat4", signature, ring=ring, max_ring_size=64)
    assert run_checks([check, wrong]) == [True, False]
    assert "ring member's key" in wrong.refusal().message


def test_a_check_is_plain_data_a_worker_process_could_run() -> None:
    _, check = _signed(b"across processes")
    assert pickle.loads(pickle.dumps(check)) == check
    assert run_checks([pickle.loads(pickle.dumps(check))]) == [True]

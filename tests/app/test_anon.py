"""Anonymous submissions: the chain verifies a ring signature, records no signer,
and refuses a key image used twice in one scope."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from medchain.app import (
    RING_MEMBER_COST,
    AnonSubmitArgs,
    AttestArgs,
    InvalidBlock,
    InvalidSignature,
    KeyImageReused,
    Ledger,
    MalformedTx,
    OpenScopeArgs,
    RegisterArgs,
    RingRejected,
    Role,
    UnknownScope,
    _signatures,
    apply_tx,
    get_scope,
    run_checks,
    scope_entries,
)
from medchain.crypto import AccountKeys, ring_sign, ring_verify
from medchain.types import ChainParams, Tx, encode

from .conftest import CHAIN_ID, OrgKeys, World, fake_blob, fake_wraps

SCOPE = "diabetes-2026"


def _member(world: World, role: Role = Role.PATIENT) -> AccountKeys:
    keys = AccountKeys.generate()
    name = "" if role is Role.PATIENT else "Member"
    world.ok(
        keys,
        "registry.register",
        RegisterArgs(role, name, keys.encryption_public_key, b"", keys.ring_public_key),
    )
    return keys


RingWorld = tuple[World, AccountKeys, list[AccountKeys]]
"""The world, the institution that opened the scope, and the scope's members."""


@pytest.fixture
def ring_world(world: World, institution: AccountKeys) -> RingWorld:
    world.ok(institution, "anon.open_scope", OpenScopeArgs(SCOPE, Role.PATIENT, 4))
    members = [_member(world) for _ in range(5)]
    return world, institution, members


def _anon_tx(
    signer: AccountKeys,
    ring: list[AccountKeys],
    institution: AccountKeys,
    scope: str = SCOPE,
    tag: bytes = b"data",
) -> Tx:
    members = sorted(ring, key=lambda k: k.address)
    cid, digest = fake_blob(tag)
    args = AnonSubmitArgs(
        scope, tuple(k.address for k in members), cid, digest, fake_wraps(institution.address)
    )
    unsigned = Tx(CHAIN_ID, 0, b"", 0, "anon.submit", encode(args))
    signature = ring_sign(
        unsigned.signing_bytes(), [k.ring_public_key for k in members], signer.ring_secret
    )
    return dataclasses.replace(unsigned, signature=encode(signature))


def test_any_member_can_sign_and_the_chain_records_no_signer(ring_world: RingWorld) -> None:
    world, institution, members = ring_world
    ring = members[:4]
    txs = [_anon_tx(signer, ring, institution) for signer in ring]
    # every member's signature over the same transaction is accepted by the same checks
    for tx in txs:
        world.ledger.check_tx(tx)
        assert tx.sender == b"" and tx.nonce == 0
    (receipt,) = world.run(txs[2])
    assert receipt.ok
    (entry,) = scope_entries(world.ledger.state, SCOPE)
    assert entry.ring == tuple(sorted(k.address for k in ring))
    stored = encode(entry)
    for member in ring:  # nothing stored names the signer rather than the ring
        assert member.public_key not in stored and member.ring_public_key not in stored
    assert all(member.address not in encode(receipt) for member in ring)


def test_a_key_image_is_single_use_per_scope(ring_world: RingWorld) -> None:
    world, institution, members = ring_world
    ring = members[:4]
    world.run(_anon_tx(members[0], ring, institution, tag=b"first"))
    again = _anon_tx(members[0], [*members[1:5], members[0]], institution, tag=b"second")
    root = world.ledger.state_root()
    with pytest.raises(KeyImageReused, match="once per scope"):
        apply_tx(world.ledger.state, world.context(), again)
    with pytest.raises(KeyImageReused):
        world.ledger.check_tx(again)
    assert world.ledger.state_root() == root
    # the same member may contribute to another scope
    world.ok(institution, "anon.open_scope", OpenScopeArgs("asthma-2026", Role.PATIENT, 4))
    (receipt,) = world.run(_anon_tx(members[0], ring, institution, scope="asthma-2026"))
    assert receipt.ok
    # a different member of the same ring is not blocked
    (receipt,) = world.run(_anon_tx(members[1], ring, institution, tag=b"third"))
    assert receipt.ok


def test_a_replayed_anonymous_transaction_is_refused(ring_world: RingWorld) -> None:
    world, institution, members = ring_world
    tx = _anon_tx(members[0], members[:4], institution)
    world.run(tx)
    with pytest.raises(KeyImageReused):
        world.ledger.check_tx(tx)


def test_bad_rings_and_signatures_are_refused(ring_world: RingWorld, doctor: AccountKeys) -> None:
    world, institution, members = ring_world
    outsider = AccountKeys.generate()
    with pytest.raises(InvalidSignature):  # signer outside the ring it names
        world.ledger.check_tx(_forged(members[:4], outsider, institution))
    with pytest.raises(RingRejected, match="4 to"):
        world.ledger.check_tx(_anon_tx(members[0], members[:3], institution))
    doctor_ring = [*members[:3], doctor]
    with pytest.raises(RingRejected, match="registered patient"):
        world.ledger.check_tx(_anon_tx(members[0], doctor_ring, institution))
    with pytest.raises(UnknownScope):
        world.ledger.check_tx(_anon_tx(members[0], members[:4], institution, scope="nope"))
    tx = _anon_tx(members[0], members[:4], institution)
    with pytest.raises(MalformedTx, match="no sender"):
        world.ledger.check_tx(dataclasses.replace(tx, nonce=3))
    with pytest.raises(InvalidSignature):  # arguments changed after signing
        cid, digest = fake_blob(b"other")
        other = dataclasses.replace(
            tx,
            args=encode(
                AnonSubmitArgs(
                    SCOPE,
                    tuple(sorted(k.address for k in members[:4])),
                    cid,
                    digest,
                    fake_wraps(institution.address),
                )
            ),
        )
        world.ledger.check_tx(other)


def _forged(ring: list[AccountKeys], outsider: AccountKeys, institution: AccountKeys) -> Tx:
    """A signature by a key outside the ring, presented with the ring's members."""
    members = sorted(ring, key=lambda k: k.address)
    cid, digest = fake_blob(b"forged")
    args = AnonSubmitArgs(
        SCOPE, tuple(k.address for k in members), cid, digest, fake_wraps(institution.address)
    )
    unsigned = Tx(CHAIN_ID, 0, b"", 0, "anon.submit", encode(args))
    keys = [k.ring_public_key for k in members[:-1]] + [outsider.ring_public_key]
    signature = ring_sign(unsigned.signing_bytes(), keys, outsider.ring_secret)
    return dataclasses.replace(unsigned, signature=encode(signature))


def test_only_institutions_open_scopes(world: World, patient: AccountKeys) -> None:
    receipt = world.call(patient, "anon.open_scope", OpenScopeArgs("x", Role.PATIENT, 4))
    assert receipt.code == "unknown_organisation"
    assert "is not the account of a member organisation" in receipt.message


# -- work bounds: checks run elsewhere, and a cap per block -----------------------------


def _counting_ring_checks(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls = [0]
    real = ring_verify  # what _signatures calls

    def counted(*args: Any) -> bool:
        calls[0] += 1
        return real(*args)

    monkeypatch.setattr(_signatures, "ring_verify", counted)
    return calls


def test_check_unsigned_leaves_the_ring_check_to_the_caller(
    ring_world: RingWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    world, institution, members = ring_world
    verifies = _counting_ring_checks(monkeypatch)
    good = _anon_tx(members[0], members[:4], institution)
    forged = _forged(members[:4], AccountKeys.generate(), institution)
    check = world.ledger.check_unsigned(good)
    bad = world.ledger.check_unsigned(forged)
    assert verifies[0] == 0  # nothing verified yet: the caller runs the checks
    assert check.anonymous and check.cost == RING_MEMBER_COST * 4
    assert check.ring == tuple(m.ring_public_key for m in sorted(members[:4], key=_address))
    assert run_checks([check, bad]) == [True, False]
    assert verifies[0] == 2
    assert isinstance(bad.refusal(), InvalidSignature)
    assert world.ledger.signature_check(good) == check  # the same check, whatever the nonce
    world.run(good)
    with pytest.raises(KeyImageReused):  # refused before any ring work
        again = _anon_tx(members[0], [members[0], *members[2:5]], institution, tag=b"2")
        world.ledger.check_unsigned(again)
    assert verifies[0] == 3  # only the block's own check ran


def _address(keys: AccountKeys) -> bytes:
    return keys.address


def test_a_block_takes_at_most_max_block_anonymous_txs(
    ring_world: RingWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    world, institution, members = ring_world
    genesis = world.ledger.genesis
    params = dataclasses.replace(genesis.params, max_block_anonymous_txs=2)
    capped = World(
        Ledger(dataclasses.replace(genesis, params=params), world.ledger.state.committed()),
        height=world.height,
    )
    ring = members[:4]
    txs = [_anon_tx(m, ring, institution, tag=bytes([i])) for i, m in enumerate(ring)]
    verifies = _counting_ring_checks(monkeypatch)
    with pytest.raises(InvalidBlock, match="holds 3 anonymous transactions, the limit is 2"):
        capped.ledger.dry_run(capped.context(), txs[:3])
    assert verifies[0] == 0  # refused on the count, before any ring is checked
    included, _ = capped.ledger.build_block(capped.context(), txs, 100)
    assert included == tuple(txs[:2])  # the others wait for later blocks
    assert all(r.ok for r in capped.run(*included))
    included, _ = capped.ledger.build_block(capped.context(), txs[2:], 100)
    assert included == tuple(txs[2:4])
    assert ChainParams().max_block_anonymous_txs == 16


def test_a_verified_only_scope_takes_only_attested_patients(
    world: World, founder: OrgKeys, institution: AccountKeys
) -> None:
    """One person's own accounts cannot fill a ring: every member must be a patient a
    member organisation verified."""
    world.ok(institution, "anon.open_scope", OpenScopeArgs("verified", Role.PATIENT, 4, True))
    scope = get_scope(world.ledger.state, "verified")
    assert scope is not None and scope.verified_only
    members = [_member(world) for _ in range(4)]
    for member in members[:3]:
        world.ok(founder.admin, "orgs.attest", AttestArgs(member.address))
    tx = _anon_tx(members[0], members, institution, scope="verified")
    root = world.ledger.state_root()
    with pytest.raises(RingRejected, match="takes only verified patients"):
        world.ledger.check_tx(tx)
    with pytest.raises(RingRejected):
        apply_tx(world.ledger.state, world.context(), tx)
    assert world.ledger.state_root() == root
    world.ok(founder.admin, "orgs.attest", AttestArgs(members[3].address))
    (receipt,) = world.run(_anon_tx(members[0], members, institution, scope="verified"))
    assert receipt.ok


def test_an_ordinary_scope_takes_unattested_patients(ring_world: RingWorld) -> None:
    world, institution, members = ring_world
    (receipt,) = world.run(_anon_tx(members[0], members[:4], institution))
    assert receipt.ok

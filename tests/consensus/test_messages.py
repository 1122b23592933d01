"""Consensus messages: the wire encoding, what each signature covers, the refusal of
malformed or mis-signed messages, and commit certificates."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from medchain.app import TransferArgs
from medchain.consensus import (
    Checkpoint,
    Kind,
    Ordering,
    Proposal,
    RoundChange,
    SyncRequest,
    SyncResponse,
    Vote,
    block_id,
    sign,
    signed_txs,
    unwire,
    verify,
    verify_certificate,
    wire,
)
from medchain.consensus._messages import (
    AccusationMessage,
    Envelope,
    Message,
    PreparedCertificate,
    ProposalBody,
    body_matches_header,
    certificate_from,
    kind_of,
    signed_proposal,
)
from medchain.crypto import signed_tx, verify_signature
from medchain.types import (
    Block,
    Certificate,
    DecodeError,
    Tx,
    commit_signing_bytes,
    encode,
    proposal_signing_bytes,
)
from tests.types.test_codec import blocks

from .harness import CHAIN, FakeApp, fixed_keys

KEYS = fixed_keys(4)
PUBLIC = tuple(k.public_key for k in KEYS)
DIGEST = b"\x07" * 32

heights = st.integers(0, 2**63 - 1)
rounds = st.integers(0, 2**31 - 1)
digests = st.binary(min_size=32, max_size=32)
signers = st.sampled_from(KEYS)


@st.composite
def messages(draw: st.DrawFn) -> Message:
    """Any consensus message, signed by one of the validators."""
    key = draw(signers)
    me = key.public_key
    vote = st.builds(
        Vote, st.sampled_from((Kind.PREPARE, Kind.COMMIT)), heights, rounds, digests, st.just(me)
    )
    message: Message = draw(
        st.one_of(
            vote,
            st.builds(RoundChange, heights, rounds, st.just(()), st.just(me)),
            st.builds(
                Proposal, heights, rounds, blocks, st.binary(max_size=80), st.just(()), st.just(me)
            ),
            st.builds(Checkpoint, heights, digests, digests, st.just(me)),
            st.builds(AccusationMessage, heights, rounds, digests, st.just(me)),
            st.builds(SyncRequest, heights, st.just(me)),
            st.builds(SyncResponse, st.lists(blocks, max_size=2).map(tuple), st.just(me)),
        )
    )
    return sign(CHAIN, message, key)


@settings(max_examples=150, deadline=None)
@given(messages())
def test_every_message_round_trips_and_verifies(message: Message) -> None:
    data = wire(message)
    assert unwire(data) == message
    assert verify(CHAIN, message)
    assert not verify("another-chain", message)


@settings(max_examples=100, deadline=None)
@given(messages(), st.data())
def test_changing_any_signed_field_breaks_the_signature(
    message: Message, data: st.DataObject
) -> None:
    """Every number and byte string a message holds is covered by its signature
    (blocks through their id: see the proposal test below); the signatures it carries
    and AFBFT's proof (itself signed by the VRF) are not."""
    unsigned = ("signature", "proposal_signature", "vrf_proof")
    fields = [
        f.name
        for f in dataclasses.fields(message)
        if f.name not in unsigned and type(getattr(message, f.name)) in (int, bytes)
    ]
    name = data.draw(st.sampled_from(fields))
    value = getattr(message, name)
    changed = value + 1 if isinstance(value, int) else bytes([value[0] ^ 1]) + value[1:]
    tampered = dataclasses.replace(message, **{name: changed})  # type: ignore[arg-type]
    assert not verify(CHAIN, tampered)


def test_votes_sign_the_layouts_the_chain_checks() -> None:
    """A commit vote's signature is the one a block certificate carries; a prepare vote
    echoes the primary's signature on the proposal, which the proposal layout checks."""
    commit = sign(CHAIN, Vote(Kind.COMMIT, 5, 2, DIGEST, PUBLIC[0]), KEYS[0])
    assert verify_signature(PUBLIC[0], commit_signing_bytes(CHAIN, 5, 2, DIGEST), commit.signature)
    block = FakeApp(PUBLIC).propose(1, 5, PUBLIC[1], b"")
    proposal = sign(CHAIN, Proposal(1, 0, block, b"", (), PUBLIC[1]), KEYS[1])
    data = proposal_signing_bytes(CHAIN, 1, 0, block_id(block))
    assert verify_signature(PUBLIC[1], data, proposal.signature)
    prepare = sign(CHAIN, Vote(Kind.PREPARE, 5, 2, DIGEST, PUBLIC[0]), KEYS[0])
    as_commit = dataclasses.replace(prepare, kind=Kind.COMMIT)
    assert verify(CHAIN, prepare) and not verify(CHAIN, as_commit)  # phases never mix


@settings(max_examples=20, deadline=None)
@given(blocks.filter(lambda b: len(b.txs) > 0))
def test_a_proposal_signs_the_header_and_the_header_commits_to_the_body(other: Block) -> None:
    app = FakeApp(PUBLIC)
    block = app.propose(1, 5, PUBLIC[1], b"")
    proposal = sign(CHAIN, Proposal(1, 0, block, b"", (), PUBLIC[1]), KEYS[1])
    later = app.propose(1, 6, PUBLIC[1], b"")
    assert not verify(CHAIN, dataclasses.replace(proposal, block=later))
    assert body_matches_header(block)
    swapped = dataclasses.replace(block, txs=other.txs)
    assert verify(CHAIN, dataclasses.replace(proposal, block=swapped))  # the header only ...
    assert not body_matches_header(swapped)  # ... which is why the engine checks this


def _vote_bytes(**changes: object) -> bytes:
    vote = Vote(Kind.PREPARE, 1, 0, DIGEST, PUBLIC[0], b"", b"\x01" * 64)
    return wire(dataclasses.replace(vote, **changes))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"", "empty"),
        (b"\x00garbage", "noise"),
        (_vote_bytes(height=2**63), "height out of range"),
        (_vote_bytes(round=2**31), "round out of range"),
        (_vote_bytes(validator=b"\x01" * 31), "short key"),
        (_vote_bytes(signature=b"\x01" * 63), "short signature"),
        (_vote_bytes(block_hash=b"\x01" * 33), "long block hash"),
        (_vote_bytes(proposal_signature=b"\x01" * 10), "short proposal signature"),
        (
            encode(
                Envelope(
                    Kind.COMMIT,
                    encode(Vote(Kind.PREPARE, 1, 0, DIGEST, PUBLIC[0], b"", b"\x01" * 64)),
                )
            ),
            "vote kind not its envelope's",
        ),
    ],
)
def test_malformed_messages_are_refused(data: bytes, why: str) -> None:
    with pytest.raises(DecodeError):
        unwire(data)
    assert signed_txs(CHAIN, data) == (), why


def test_kind_of_refuses_what_is_not_a_message() -> None:
    with pytest.raises(TypeError, match="not a consensus message"):
        kind_of(PreparedCertificate(0, FakeApp(PUBLIC).blocks[0], ()))  # type: ignore[arg-type]


def _transfer(nonce: int) -> Tx:
    return signed_tx(KEYS[3], CHAIN, nonce, "accounts.transfer", TransferArgs(b"\x09" * 20, 1), 1)


def test_signed_txs_are_returned_only_under_a_valid_signature() -> None:
    """What the node checks the signatures of before the engine may run a block or
    build an ordering: every transaction a signed message carries, and no others."""
    app = FakeApp(PUBLIC)
    first, second, third = _transfer(0), _transfer(1), _transfer(2)
    block = dataclasses.replace(app.propose(1, 5, PUBLIC[1], b""), txs=(first,))
    prepared = dataclasses.replace(app.propose(1, 6, PUBLIC[2], b""), txs=(second,))
    change = RoundChange(1, 1, (PreparedCertificate(0, prepared, ()),), PUBLIC[1])
    proposal = sign(
        CHAIN, Proposal(1, 1, block, b"", (sign(CHAIN, change, KEYS[1]),), PUBLIC[1]), KEYS[1]
    )
    assert signed_txs(CHAIN, wire(proposal)) == (first, second)
    ordering = Ordering(block_id(app.last_block()), 7, (third, first))
    ordered = sign(CHAIN, Proposal(1, 0, ordering, b"", (), PUBLIC[2]), KEYS[2])
    assert signed_txs(CHAIN, wire(ordered)) == (third, first)
    for message in (proposal, ordered):
        forged = dataclasses.replace(message, signature=KEYS[0].sign(b"other"))
        assert signed_txs(CHAIN, wire(forged)) == ()
    vote = sign(CHAIN, Vote(Kind.PREPARE, 1, 0, DIGEST, PUBLIC[0]), KEYS[0])
    assert signed_txs(CHAIN, wire(vote)) == ()  # carries no transaction


# -- commit certificates ---------------------------------------------------------------


def _certified(signers: list[int], round_: int = 0) -> Block:
    block = FakeApp(PUBLIC).propose(1, 5, PUBLIC[0], b"")
    digest = block_id(block)
    votes = [sign(CHAIN, Vote(Kind.COMMIT, 1, round_, digest, PUBLIC[i]), KEYS[i]) for i in signers]
    return dataclasses.replace(block, certificate=certificate_from(votes, 1, round_, digest))


def test_a_certificate_holds_a_quorum_of_distinct_validators_in_key_order() -> None:
    block = _certified([2, 0, 1])
    assert verify_certificate(CHAIN, block, PUBLIC, 3)
    signed = [s.validator for s in block.certificate.signatures]
    assert signed == sorted(signed)
    assert not verify_certificate(CHAIN, _certified([0, 1]), PUBLIC, 3)


@pytest.mark.parametrize(
    "tamper",
    ["duplicate signer", "outsider", "wrong height", "wrong block", "wrong round", "other chain"],
)
def test_a_certificate_that_does_not_prove_the_block_is_refused(tamper: str) -> None:
    block = _certified([0, 1, 2])
    cert = block.certificate
    validators, chain = PUBLIC, CHAIN
    if tamper == "duplicate signer":
        cert = dataclasses.replace(cert, signatures=(cert.signatures[0],) * 3)
    elif tamper == "outsider":
        validators = PUBLIC[1:]
    elif tamper == "wrong height":
        cert = dataclasses.replace(cert, height=2)
    elif tamper == "wrong block":
        cert = dataclasses.replace(cert, block_hash=DIGEST)
    elif tamper == "wrong round":
        cert = dataclasses.replace(cert, round=1)
    else:
        chain = "another-chain"
    forged = dataclasses.replace(block, certificate=cert)
    assert not verify_certificate(chain, forged, validators, 3)


def _fresh_proposal(draw: bytes = b"\x05" * 80) -> Proposal:
    """A candidate's freshly built block as `LedgerApp.propose` makes it: its own address
    and draw in the header, and the empty certificate of an undecided block."""
    built = FakeApp(PUBLIC).propose(1, 5, PUBLIC[1], draw)
    empty = Certificate(1, 0, block_id(built), ())
    return sign(
        CHAIN,
        Proposal(1, 0, dataclasses.replace(built, certificate=empty), draw, (), PUBLIC[1]),
        KEYS[1],
    )


def _draw_and_after(made: Proposal) -> tuple[bytes, tuple[RoundChange, ...], bytes, bytes]:
    return made.vrf_proof, made.justification, made.proposer, made.signature


def test_a_proposal_travels_without_what_the_receiver_derives() -> None:
    fresh = _fresh_proposal()
    data = wire(fresh)
    assert unwire(data) == fresh and verify(CHAIN, unwire(data))
    block = fresh.block
    assert isinstance(block, Block)
    every_field = ProposalBody(
        1, 0, block.header, 0, block.txs, (block.certificate,), *_draw_and_after(fresh)
    )
    full = encode(Envelope(Kind.PROPOSAL, encode(every_field)))
    left_out = len(fresh.vrf_proof) + len(block.header.proposer) + 32  # and the certificate
    assert len(data) <= len(full) - left_out


@pytest.mark.parametrize("change", ["proposer", "draw", "certificate"])
def test_a_proposal_of_a_block_built_by_another_keeps_what_differs(change: str) -> None:
    """Above round 0 a candidate re-proposes the prepared block, built by someone else
    and carrying that one's draw; a decided block carries its certificate."""
    fresh = _fresh_proposal()
    block = fresh.block
    assert isinstance(block, Block)
    header = block.header
    if change == "proposer":
        block = dataclasses.replace(
            block, header=dataclasses.replace(header, proposer=b"\x02" * 20)
        )
    elif change == "draw":
        block = dataclasses.replace(block, header=dataclasses.replace(header, vrf_proof=b""))
    else:
        block = dataclasses.replace(block, certificate=Certificate(1, 3, DIGEST, ()))
    other = sign(CHAIN, dataclasses.replace(fresh, block=block), KEYS[1])
    assert unwire(wire(other)) == other


@pytest.mark.parametrize("field", ["proposer", "vrf_proof"])
def test_a_proposal_carrying_a_field_it_marks_as_left_out_is_refused(field: str) -> None:
    body = ProposalBody.of(_fresh_proposal())
    stuffed = dataclasses.replace(
        body,
        header=dataclasses.replace(body.header, **{field: b"\x01" * 20}),  # type: ignore[arg-type]
    )
    with pytest.raises(DecodeError):
        unwire(encode(Envelope(Kind.PROPOSAL, encode(stuffed))))
    with pytest.raises(DecodeError):
        unwire(encode(Envelope(Kind.PROPOSAL, encode(dataclasses.replace(body, elided=8)))))


def test_a_round_change_shows_at_most_one_well_formed_prepared_proposal() -> None:
    shown = signed_proposal(_fresh_proposal())
    change = sign(CHAIN, RoundChange(1, 1, (), PUBLIC[0], b"", (shown,)), KEYS[0])
    assert unwire(wire(change)) == change and verify(CHAIN, change)
    assert not verify(CHAIN, dataclasses.replace(change, prepared_proposal=()))  # signed
    for bad in ((shown, shown), (dataclasses.replace(shown, signature=b"\x01" * 63),)):
        with pytest.raises(DecodeError):
            unwire(wire(dataclasses.replace(change, prepared_proposal=bad)))

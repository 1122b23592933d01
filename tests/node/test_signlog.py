from pathlib import Path

import pytest

from medchain.consensus import Broadcast, Kind, Ordering, Proposal, Vote, sign, unwire, wire
from medchain.consensus._messages import Checkpoint, kind_of
from medchain.crypto import AccountKeys
from medchain.node import SignLog
from medchain.node._signlog import PRUNE_EVERY
from medchain.store import DiskFull

CHAIN = "medchain-test"


def _keys() -> AccountKeys:
    return AccountKeys.generate()


def vote(
    keys: AccountKeys, height: int, round_: int, block: bytes, kind: Kind = Kind.PREPARE
) -> Broadcast:
    data = wire(sign(CHAIN, Vote(kind, height, round_, block, keys.public_key), keys))
    return Broadcast(data, kind, (height, round_))


def test_a_conflicting_vote_is_replaced_by_the_first(tmp_path: Path) -> None:
    keys = _keys()
    log = SignLog(tmp_path / "wal.sqlite")
    first = vote(keys, 5, 0, b"\x01" * 32)
    assert log.admit([first]) == [first.data]
    other = vote(keys, 5, 0, b"\x02" * 32)
    assert log.admit([other]) == [first.data]
    assert log.prevented == 1
    # the same vote again passes; another step or round is new
    assert log.admit([first]) == [first.data]
    commit = vote(keys, 5, 0, b"\x02" * 32, Kind.COMMIT)
    next_round = vote(keys, 5, 1, b"\x02" * 32)
    assert log.admit([commit, next_round]) == [commit.data, next_round.data]
    assert log.prevented == 1


def test_what_was_signed_survives_a_restart(tmp_path: Path) -> None:
    keys = _keys()
    first = vote(keys, 9, 2, b"\x01" * 32)
    log = SignLog(tmp_path / "wal.sqlite")
    log.admit([first])
    log.close()  # a SIGKILL loses nothing either: admit commits before returning
    reopened = SignLog(tmp_path / "wal.sqlite")
    assert list(reopened.since(9)) == [first.data]
    assert reopened.admit([vote(keys, 9, 2, b"\x03" * 32)]) == [first.data]


def test_conflicts_inside_one_batch_keep_the_first(tmp_path: Path) -> None:
    keys = _keys()
    log = SignLog(tmp_path / "wal.sqlite")
    a, b = vote(keys, 3, 0, b"\x01" * 32), vote(keys, 3, 0, b"\x02" * 32)
    assert log.admit([a, b]) == [a.data, a.data]


def test_unguarded_messages_pass_and_prune_forgets_old_heights(tmp_path: Path) -> None:
    keys = _keys()
    log = SignLog(tmp_path / "wal.sqlite")
    data = wire(sign(CHAIN, Checkpoint(10, b"\x01" * 32, b"\x02" * 32, keys.public_key), keys))
    checkpoint = Broadcast(data, Kind.CHECKPOINT)
    assert log.admit([checkpoint, checkpoint]) == [data, data]
    log.admit([vote(keys, 4, 0, b"\x01" * 32), vote(keys, 6, 0, b"\x01" * 32)])
    log.prune(5)
    assert [unwire(d).height for d in log.since(0)] == [6]  # type: ignore[union-attr]


def test_a_full_disk_records_and_sends_nothing_then_a_retry_does(tmp_path: Path) -> None:
    keys = _keys()
    log = SignLog(tmp_path / "wal.sqlite")
    log.admit([vote(keys, 1, 0, b"\x01" * 32)])
    db = log._db
    (pages,) = db.execute("PRAGMA page_count").fetchone()
    db.execute(f"PRAGMA max_page_count = {pages}")
    big = [vote(keys, h, 0, b"\x02" * 32) for h in range(2, 400)]
    with pytest.raises(DiskFull) as caught:
        log.admit(big)
    assert caught.value.path == tmp_path / "wal.sqlite"
    assert "what this node signed was not written" in caught.value.message
    assert list(log.since(2)) == []
    db.execute("PRAGMA max_page_count = 1073741823")  # space freed
    assert log.admit(big) == [m.data for m in big]
    assert len(list(log.since(2))) == len(big)


def test_pruning_deletes_once_every_prune_every_heights(tmp_path: Path) -> None:
    """Each pruning is a synced write: the log prunes at most once per PRUNE_EVERY
    heights, then forgets everything below the height it was given."""
    keys = _keys()
    log = SignLog(tmp_path / "wal.sqlite")
    log.prune(1)
    log.admit([vote(keys, h, 0, b"\x01" * 32) for h in (2, 3, PRUNE_EVERY + 2)])
    log.prune(3)  # within PRUNE_EVERY of the last pruning: nothing is written
    assert [unwire(d).height for d in log.since(0)] == [2, 3, PRUNE_EVERY + 2]  # type: ignore[union-attr]
    log.prune(PRUNE_EVERY + 1)
    assert [unwire(d).height for d in log.since(0)] == [PRUNE_EVERY + 2]  # type: ignore[union-attr]


def ordering(keys: AccountKeys, time_ms: int) -> Broadcast:
    """An AFBFT candidate's ordering at height 4, round 0: a proposal like any other."""
    made = Proposal(4, 0, Ordering(b"\x07" * 32, time_ms, ()), b"\x05" * 80, (), keys.public_key)
    signed = sign(CHAIN, made, keys)
    return Broadcast(wire(signed), kind_of(signed), (4, 0))


def test_an_ordering_is_logged_replayed_and_never_signed_twice(tmp_path: Path) -> None:
    keys = _keys()
    first = ordering(keys, 10)
    assert first.kind == Kind.PROPOSAL
    log = SignLog(tmp_path / "wal.sqlite")
    assert log.admit([first]) == [first.data]
    log.close()
    reopened = SignLog(tmp_path / "wal.sqlite")
    (replayed,) = reopened.since(4)
    assert replayed == first.data
    message = unwire(replayed)
    assert isinstance(message, Proposal) and isinstance(message.block, Ordering)
    # after the restart the engine would order again, later: the first one goes out
    assert reopened.admit([ordering(keys, 11)]) == [first.data]
    assert reopened.prevented == 1

"""Multi-process tests: real `medchain node` processes on 127.0.0.1, killed, paused
and restarted while they commit. Marked slow; `make test` runs them."""

from __future__ import annotations

import signal
import threading
from pathlib import Path

import pytest

from tests.node.netharness import PATIENCE_S, LiveNet, live_net, wait_for

pytestmark = pytest.mark.slow

VALIDATORS = ["node0", "node1", "node2", "node3"]


def test_four_validators_commit_1000_transactions_and_agree(tmp_path: Path) -> None:
    with live_net(tmp_path, consensus="afbft") as net:
        net.start()
        senders = net.fund(8)
        accepted = []
        for i, sender in enumerate(senders):  # spread over senders and validators
            accepted += net.submit(VALIDATORS[i % 4], net.transfers(125, sender))
        assert len(accepted) == 1_000
        wait_for(
            lambda: all(net.nonce("node0", s) == 125 for s in senders),
            2 * PATIENCE_S,
            "1,000 commits",
        )
        top = min(net.height(n) for n in VALIDATORS)
        net.assert_agreement(VALIDATORS, top)
        for name in VALIDATORS:  # every node committed every one of them
            assert set(accepted) <= net.committed_hashes(name, top)


class _Load:
    """Transfers submitted in a background thread until stopped; remembers which
    ones a node reported committed."""

    def __init__(self, net: LiveNet, targets: list[str]) -> None:
        self.net, self.targets = net, targets
        self.sender = net.fund(1)[0]
        self.sent: list[bytes] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        i = 0
        while not self.stop.is_set():
            txs = self.net.transfers(20, self.sender)
            for _ in range(len(self.targets)):
                target = self.targets[i % len(self.targets)]
                i += 1
                try:
                    self.sent += self.net.submit(target, txs)
                    break
                except Exception:
                    continue  # that node is down: the next one takes the batch
            else:
                self.net.nonces[self.sender.public_key] -= len(txs)  # nobody took them
            self.stop.wait(0.05)  # the load's pace: a batch every 50 ms until stopped

    def __enter__(self) -> _Load:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        self.thread.join(10)


def test_a_killed_validator_restarts_catches_up_and_loses_nothing(tmp_path: Path) -> None:
    with live_net(tmp_path, consensus="pbft") as net:
        net.start()
        net.wait_height(VALIDATORS, 3)
        with _Load(net, ["node0", "node1"]) as load:
            wait_for(lambda: len(load.sent) >= 100, PATIENCE_S, "the load to flow")
            net.signal("node3", signal.SIGKILL)
            before = net.height("node0")
            net.wait_height(["node0", "node1", "node2"], before + 5)  # 3 of 4 go on
            reported = net.committed_hashes("node0") & set(load.sent)
            assert reported
            net.start(["node3"])
            net.wait_height(["node3"], net.height("node0"))  # it catches up under load
        goal = net.height("node0")
        net.wait_height(VALIDATORS, goal)
        net.assert_agreement(VALIDATORS, goal)
        assert reported <= net.committed_hashes("node3")  # nothing reported committed is lost
        # caught up: it follows the chain by consensus, no longer fetching blocks
        wait_for(lambda: net.status("node3")["syncing"] is False, PATIENCE_S, "node3 in step")


def test_killing_the_primary_again_and_again_changes_the_view(tmp_path: Path) -> None:
    with live_net(tmp_path, consensus="pbft") as net:
        net.start()
        net.wait_height(VALIDATORS, 2)
        keys = {net.status(n)["node_key"]: n for n in VALIDATORS}
        for _ in range(3):
            alive = net.running()
            observer = alive[0]
            primary = keys[net.status(observer)["primary"]]
            before = net.height(observer)
            net.signal(primary, signal.SIGKILL)
            survivors = [n for n in VALIDATORS if n != primary]
            net.wait_height(survivors, before + 3)
            net.start([primary])
        assert sum(net.status(n)["round_changes"] for n in VALIDATORS) >= 3
        goal = net.height("node0")
        net.wait_height(VALIDATORS, goal)
        net.assert_agreement(VALIDATORS, goal)
        for name in VALIDATORS:  # restarted mid-height, nobody signed two conflicting steps
            assert net.metric(name, "medchain_consensus_equivocations_total") == 0


def test_a_paused_validator_and_a_late_observer_catch_up(tmp_path: Path) -> None:
    with live_net(tmp_path, consensus="pbft", observers=1) as net:
        net.start()
        net.wait_height(VALIDATORS, 2)
        net.signal("node3", signal.SIGSTOP)
        net.submit("node0", net.transfers(200, net.fund(1)[0]))
        net.wait_height(VALIDATORS[:3], net.height("node0") + 8)
        net.signal("node3", signal.SIGCONT)
        net.start(["node4"])  # the observer joins late, from genesis
        goal = net.height("node0")
        net.wait_height([*VALIDATORS, "node4"], goal)
        net.assert_agreement([*VALIDATORS, "node4"], goal)
        assert net.status("node4")["validator"] is False
        assert net.metric("node4", "medchain_synced_blocks") >= goal - 5

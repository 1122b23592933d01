"""The devnet the demo starts itself: four node processes on 127.0.0.1 that it may
kill and restart, and always stops, whatever happens to the story."""

from __future__ import annotations

import contextlib
import signal
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

from rich.console import Console

from medchain.node import (
    START_TIMEOUT_S,
    DevnetNode,
    DevnetProcesses,
    ProcessFailed,
    health_status,
    local_devnet,
    signals_raise,
)

STOP_TIMEOUT_S = 10.0


class DemoDevnet(DevnetProcesses):
    """A devnet whose node processes this demo started, so it may kill, restart and
    stop them (and must stop them, whatever happens)."""

    def __init__(
        self, home: Path, console: Console, validators: int = 4, consensus: str = "afbft"
    ) -> None:
        devnet = local_devnet(
            home,
            validators,
            consensus,
            chain_id="medchain-demo",
            block_interval_ms=300,
            round_timeout_ms=1_000,
        )
        super().__init__(devnet, STOP_TIMEOUT_S)
        self.console = console

    @property
    def nodes(self) -> tuple[DevnetNode, ...]:
        return self.devnet.nodes

    def healthy(self, name: str) -> bool:
        return health_status(f"{self.node(name).api_url}/health", 1.0) == 200

    def bring_up(self, names: list[str] | None = None) -> float:
        """Start the nodes (all by default) and wait until each serves /health; a
        status line shows each node's progress. Returns the seconds it took."""
        names = names or [n.name for n in self.nodes]
        self.start_nodes(names)
        processes = f"{len(names)} node process{'es' if len(names) > 1 else ''}"
        with self.console.status("") as status:

            def show(health: Mapping[str, int | None], elapsed: float) -> None:
                marks = "  ".join(f"{n} {_progress(health[n])}" for n in names)
                status.update(f"starting {processes}  {marks}  ({elapsed:.1f} s)")

            return self.wait_healthy(names, START_TIMEOUT_S, show)


def _progress(health: int | None) -> str:
    """/health 200: up; another status: serving but cut off from its peers."""
    if health == 200:
        return "[green]✓ up[/]"
    return "[yellow]… starting[/]" if health is None else "[yellow]… finding peers[/]"


@contextlib.contextmanager
def running_devnet(home: Path, console: Console, err_console: Console) -> Iterator[DemoDevnet]:
    """A fresh 4-validator AFBFT devnet in `home`, stopped on the way out even when
    the demo fails, is interrupted or gets a SIGTERM (`timeout`, `kill`, a CI runner);
    its progress goes to `console`, the log of a node that crashed to `err_console`."""
    with signals_raise((signal.SIGTERM,), lambda signum: SystemExit(128 + signum)):
        net = DemoDevnet(home, console)
        with _stopped_after(net, err_console):
            yield net


@contextlib.contextmanager
def _stopped_after(net: DemoDevnet, err_console: Console) -> Iterator[None]:
    console = net.console
    try:
        took = net.bring_up()
        console.print(
            f"[green]✓[/] {len(net.nodes)} validators ({net.devnet.consensus}) up in "
            f"{took:.1f} s, in {net.devnet.home}"
        )
        for n in net.nodes:
            pid = net.children[n.name].pid
            console.print(f"  {n.name}  pid {pid:<7} API {n.api_url}  docs {n.api_url}/docs")
        yield
    except ProcessFailed as exc:
        err_console.print(exc.tail, markup=False, highlight=False)
        raise
    except BaseException:
        for name in net.crashed():
            err_console.print(f"[red]{name} crashed[/]; the end of its log:")
            tail = net.children[name].program.tail(15)
            err_console.print(tail, markup=False, highlight=False)
        raise
    finally:
        began = time.monotonic()
        net.stop_all()
        took = time.monotonic() - began
        console.print(f"stopped the devnet's {len(net.children)} node processes ({took:.1f} s)")


__all__ = ["DemoDevnet", "running_devnet"]

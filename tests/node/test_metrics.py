"""The node's /metrics: the P2P traffic counters are the transport's own, read when
scraped (not counted a second time beside them). Two nodes in the test's loop, a
validator and an observer that follows its blocks."""

from __future__ import annotations

import asyncio
from pathlib import Path

from medchain.node import Node, create_devnet, free_port_base
from tests.waiting import until


def _p2p_bytes(node: Node) -> tuple[float | None, float | None]:
    registry = node.metrics_registry
    return (
        registry.get_sample_value("medchain_p2p_bytes_in_total"),
        registry.get_sample_value("medchain_p2p_bytes_out_total"),
    )


def test_p2p_payload_bytes_are_the_transports_counts(tmp_path: Path) -> None:
    async def scenario() -> None:
        base = free_port_base(2)
        devnet = create_devnet(
            tmp_path,
            1,
            "pbft",
            observers=1,
            api_port=base,
            p2p_port=base + 500,
            block_interval_ms=50,
        )
        validator, observer = (Node(n.home) for n in devnet.nodes)
        await validator.start()
        await observer.start()
        try:
            await until(lambda: observer.app.height >= 3, what="the observer following")
            for node in (validator, observer):
                stats = node.transport.stats
                # read in one step of the loop: no frame moves between the two reads
                assert _p2p_bytes(node) == (stats.bytes_in, stats.bytes_out)
            assert validator.transport.stats.bytes_out > 0  # the blocks the observer took
            assert observer.transport.stats.bytes_in > 0
        finally:
            await observer.close()
            await validator.close()

    asyncio.run(scenario())

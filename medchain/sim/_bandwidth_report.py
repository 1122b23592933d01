"""The bandwidth sizing as rows for a table (Markdown or `rich`) and a PNG."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from medchain.sim._bandwidth import HEADROOM_PCT, Traffic, headroom_link_mbps, link_share_pct
from medchain.sim._metrics import KB
from medchain.sim._report import new_figure, save_figure


def bandwidth_headers(link_mbps: int) -> tuple[str, ...]:
    low, high = HEADROOM_PCT
    return (
        "engine",
        "nodes",
        "block (KB)",
        "per node (KB/s)",
        "busiest node (KB/s)",
        f"busiest, share of {link_mbps:,} Mbit/s",
        f"link for {low}-{high} % (Mbit/s)",
    )


@dataclass(frozen=True)
class BandwidthFigure:
    engine: str
    nodes: int
    block_bytes: int
    per_node_kb_s: float
    busiest_kb_s: float
    link_mbps: int
    busiest_link_share_pct: float
    link_mbps_at_40_pct: float
    link_mbps_at_35_pct: float

    def cells(self) -> tuple[str, ...]:
        return (
            self.engine,
            str(self.nodes),
            f"{self.block_bytes / KB:,.0f}",
            f"{self.per_node_kb_s:,.1f}",
            f"{self.busiest_kb_s:,.1f}",
            f"{self.busiest_link_share_pct:.1f} %",
            f"{self.link_mbps_at_40_pct:,.1f}-{self.link_mbps_at_35_pct:,.1f}",
        )


def bandwidth_figures(
    measured: Sequence[Traffic], block_bytes: Sequence[int], link_mbps: int
) -> list[BandwidthFigure]:
    """Per engine, node count and block size: mean and busiest uplink, the share of the
    given link the busiest one takes, and the links that put it at 40 % and 35 %."""
    figures = []
    for traffic in measured:
        for size in block_bytes:
            busiest = traffic.busiest_kb_s(size)
            at_40, at_35 = headroom_link_mbps(busiest)
            figures.append(
                BandwidthFigure(
                    traffic.engine,
                    traffic.nodes,
                    size,
                    float(traffic.per_node_kb_s(size)),
                    float(busiest),
                    link_mbps,
                    float(link_share_pct(busiest, link_mbps)),
                    float(at_40),
                    float(at_35),
                )
            )
    return figures


def plot_bandwidth(measured: Sequence[Traffic], block_bytes: Sequence[int], path: Path) -> Path:
    """The busiest node's uplink against the node count, a line per engine and block size."""
    fig = new_figure(7, 4)
    ax = fig.subplots()
    by_line: dict[tuple[str, int], list[tuple[int, float]]] = {}
    for traffic in measured:
        for size in block_bytes:
            point = (traffic.nodes, float(traffic.busiest_kb_s(size)))
            by_line.setdefault((traffic.engine, size), []).append(point)
    for (engine, size), points in by_line.items():
        xs, ys = zip(*sorted(points), strict=True)
        ax.plot(xs, ys, marker="o", label=f"{engine}, {size / KB:,.0f} KB blocks")
    ax.set_yscale("log")
    ax.set_xlabel("validators")
    ax.set_ylabel("busiest node's uplink (KB/s)")
    ax.legend(fontsize="small")
    return save_figure(fig, path, "medchain: consensus traffic against block size and nodes")

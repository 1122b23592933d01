"""The bandwidth sizing's rows and plot."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

from medchain.sim import KB, Traffic, bandwidth_figures, bandwidth_headers, plot_bandwidth

TRAFFIC = Traffic(
    engine="pbft",
    nodes=5,
    block_ms=Fraction(1_000),
    proposers=Fraction(1),
    proposal_bytes=Fraction(500),
    vote_bytes=Fraction(10_000),
    voters=Fraction(5),
)


def test_a_figure_per_block_size_with_its_share_and_headroom_links() -> None:
    small, large = bandwidth_figures([TRAFFIC], [0, 1_000 * KB], 100)
    assert (small.block_bytes, large.block_bytes) == (0, 1_000_000)
    # the proposer sends 4 proposals of 500 bytes and its own 2,000 bytes of votes a second
    assert small.busiest_kb_s == 4.0
    # plus the body to 4 others: 4,004 KB/s = 32.032 Mbit/s, 32 % of 100 Mbit/s
    assert large.busiest_kb_s == 4_004.0
    assert round(large.busiest_link_share_pct, 3) == 32.032
    assert (large.link_mbps_at_40_pct, large.link_mbps_at_35_pct) == (80.08, 91.52)
    cells = dict(zip(bandwidth_headers(100), large.cells(), strict=True))
    assert cells["block (KB)"] == "1,000"
    assert cells["busiest, share of 100 Mbit/s"] == "32.0 %"
    assert cells["link for 35-40 % (Mbit/s)"] == "80.1-91.5"


def test_the_plot_is_a_png(tmp_path: Path) -> None:
    out = plot_bandwidth([TRAFFIC], [0, 100 * KB], tmp_path / "bandwidth.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

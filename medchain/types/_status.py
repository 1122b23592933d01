"""What a running node reports about itself (the API's status endpoint, `medchain
status`, and the devnet's readiness checks read it)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class PeerStatus:
    key: bytes
    """The peer's Ed25519 node key."""
    name: str
    address: str
    """host:port it is dialled at, empty for a peer that only dials in."""
    connected: bool
    validator: bool


@dataclass(frozen=True, slots=True)
class NodeStatus:
    name: str
    node_key: bytes
    validator: bool
    """False for an observer (a full node that does not vote)."""
    consensus: str
    """pbft, afbft or dpos."""
    chain_id: str
    height: int
    """Latest committed height."""
    latest_hash: bytes
    latest_time_ms: int
    state_root: bytes
    round: int
    """Round (view) of the height in progress."""
    primary: bytes | None
    """Who proposes this round (PBFT/DPoS); AFBFT: the lowest VRF draw seen, if any."""
    round_changes: int
    """Round (view) changes since the node started."""
    syncing: bool
    """True while the node fetches blocks it missed."""
    peers: tuple[PeerStatus, ...]
    mempool_txs: int
    mempool_bytes: int
    started_ms: int
    anchor_verified_height: int | None = None
    """Highest anchored height the node's stored chain was verified against (None:
    the node does not anchor, or has not checked yet)."""
    anchor_alarm: str = ""
    """Why the stored chain disagrees with the verification chain; '' when it agrees."""

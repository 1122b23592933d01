"""A node's home directory and its `config.json`.

    HOME/
      config.json            this file: name, addresses, peers, timings, limits
      genesis.json           the network's genesis (the same file on every node)
      node.key               the node's account key (a validator's key if it votes)
      node.crt               its TLS certificate (self-signed by that key)
      chain.sqlite           blocks, receipts, state
      consensus-wal.sqlite   what this node signed (never sign two conflicting votes)
      blobs/                 record ciphertexts by CID
      bodies.sqlite          which bodies were uploaded here and which are named on chain
      node.log, node.log.N   the node's log, rotated by the node at log.max_bytes
      node.out               what a node started by the devnet printed outside its log
      disk-reserve           1 MiB held back while it runs, freed to stop on a full disk

Peers are listed with their key and certificate: that list is the allow-list (a
node refuses any other key). Hosts and ports always come from here, never from
an assumption that every node runs on one machine."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medchain.types import MedchainError

CONFIG_FILE = "config.json"
NODE_KEY_FILE = "node.key"
NODE_CERT_FILE = "node.crt"
WAL_FILE = "consensus-wal.sqlite"
PID_FILE = "node.pid"
LOG_FILE = "node.log"
OUTPUT_FILE = "node.out"
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")


class ConfigError(MedchainError):
    code = "bad_config"


PROPOSAL_WINDOW_MS = 500


@dataclass(frozen=True, slots=True)
class PeerConfig:
    name: str
    key: bytes
    """Ed25519 node key: the peer must present a certificate for it."""
    cert_pem: bytes
    host: str | None = None
    """Where to dial it; None for a peer that only dials in (an observer)."""
    port: int | None = None


@dataclass(frozen=True, slots=True)
class AdmissionConfig:
    """How much signature verification clients and peers may make the node do for
    transactions it does not admit (forged, or refused once verified), in units of one
    Ed25519 check (~60 us); a ring member counts as seven. See `medchain.node._admission`."""

    workers: int = 0
    """Threads verifying signatures; 0: one per core but one (at least one)."""
    client_rate: int = 2_000
    """Units a second one client address (an IPv6 /64) may spend."""
    client_burst: int = 20_000
    peer_rate: int = 5_000
    """Units a second one peer may spend on the transactions it relays."""
    peer_burst: int = 50_000
    max_backlog: int = 30_000
    """Units queued for the workers past which clients are told to retry (503)."""
    max_anonymous_per_request: int = 16
    """Anonymous transactions one client request may hold (400 past it, charged as if
    each ring were checked): a block takes at most `max_block_anonymous_txs` anyway."""


@dataclass(frozen=True, slots=True)
class NodeConfig:
    name: str
    p2p_host: str = "127.0.0.1"
    p2p_port: int = 9600
    api_host: str = "127.0.0.1"
    api_port: int = 8600
    peers: tuple[PeerConfig, ...] = ()
    block_interval_ms: int = 1_000
    round_timeout_ms: int = 2_000
    proposal_window_ms: int = PROPOSAL_WINDOW_MS
    """AFBFT: how long after this node starts a round it waits for a seated candidate
    whose proposal is missing. Validators start a height as each commits it, under
    load hundreds of ms apart, and one that closes its window before a late
    candidate's lower draw is in prepares another block and the round is lost; a
    candidate that is down costs every height this, as a dead PBFT primary costs
    every fourth height (of four) a 2 s round timeout."""
    mempool_max_txs: int = 20_000
    mempool_max_bytes: int = 64 * 2**20
    max_frame_bytes: int = 32 * 2**20
    max_request_bytes: int = 8 * 2**20
    gossip_delay_ms: int = 5
    """Transactions admitted within this delay go to peers in one frame."""
    p2p_max_handshakes: int = 64
    """Inbound P2P connections in their handshake at once; more are refused."""
    p2p_max_handshakes_per_address: int = 16
    """... of which from one address (IPv4 address or IPv6 /64)."""
    p2p_refusal_log_interval_s: int = 10
    """Refused connections are logged at most once per this interval per cause."""
    log_level: str = "info"
    log_file: str | None = LOG_FILE
    """The node's log, relative to its home; None: stderr only (journald, containers)."""
    log_max_bytes: int = 10 * 2**20
    """The log is rotated when it reaches this size ..."""
    log_backups: int = 5
    """... keeping this many older files (node.log.1 the newest)."""
    upload_quota_bytes: int = 64 * 2**20
    """Bytes of bodies one account may have stored here that no committed transaction
    names yet (uploads beyond it are refused until its transactions commit)."""
    body_grace_s: int = 3_600
    """A body no committed transaction names is deleted this long after its upload ..."""
    body_collect_interval_s: int = 60
    """... by a collector that runs this often."""
    snapshot_interval: int = 1_000
    """A snapshot of the state is made every this many blocks (0: none) ..."""
    snapshot_keep: int = 3
    """... keeping the last this many, for joining nodes to fetch."""
    snapshot_sync: bool = True
    """A node whose store is empty joins from a snapshot its peers offer (else it
    replays every block since genesis)."""
    store_maintain_blocks: int = 1_000
    """The chain store's WAL is checkpointed and its free pages returned this often ..."""
    store_wal_max_bytes: int = 64 * 2**20
    """... or as soon as its WAL is larger than this."""
    state_cache_mb: int = 128
    """MiB of memory for the cells of committed state entries the node read
    recently (the chain store's cache); with it, the node's memory no longer grows
    with the state on disk."""
    admission: AdmissionConfig = field(default_factory=AdmissionConfig)
    extra: dict[str, Any] = field(default_factory=dict)
    """Settings later features read (kept as written)."""

    @property
    def api_url(self) -> str:
        return f"http://{self.api_host}:{self.api_port}"


_TOP_LEVEL = {
    "name",
    "p2p",
    "api",
    "peers",
    "consensus",
    "mempool",
    "limits",
    "log_level",
    "log",
    "bodies",
    "admission",
    "snapshots",
    "disk",
    "state",
}


def config_to_json(config: NodeConfig) -> str:
    doc: dict[str, Any] = {
        "name": config.name,
        "p2p": {
            "host": config.p2p_host,
            "port": config.p2p_port,
            "max_handshakes": config.p2p_max_handshakes,
            "max_handshakes_per_address": config.p2p_max_handshakes_per_address,
            "refusal_log_interval_s": config.p2p_refusal_log_interval_s,
        },
        "api": {"host": config.api_host, "port": config.api_port},
        "peers": [
            {
                "name": p.name,
                "key": p.key.hex(),
                "host": p.host,
                "port": p.port,
                "cert": p.cert_pem.decode("ascii"),
            }
            for p in config.peers
        ],
        "consensus": {
            "block_interval_ms": config.block_interval_ms,
            "round_timeout_ms": config.round_timeout_ms,
            "proposal_window_ms": config.proposal_window_ms,
        },
        "mempool": {"max_txs": config.mempool_max_txs, "max_bytes": config.mempool_max_bytes},
        "limits": {
            "max_frame_bytes": config.max_frame_bytes,
            "max_request_bytes": config.max_request_bytes,
            "gossip_delay_ms": config.gossip_delay_ms,
        },
        "log_level": config.log_level,
        "log": {
            "file": config.log_file,
            "max_bytes": config.log_max_bytes,
            "backups": config.log_backups,
        },
        "bodies": {
            "upload_quota_bytes": config.upload_quota_bytes,
            "grace_s": config.body_grace_s,
            "collect_interval_s": config.body_collect_interval_s,
        },
        "snapshots": {
            "interval": config.snapshot_interval,
            "keep": config.snapshot_keep,
            "sync": config.snapshot_sync,
        },
        "admission": dataclasses.asdict(config.admission),
        "disk": {
            "maintain_every_blocks": config.store_maintain_blocks,
            "wal_max_bytes": config.store_wal_max_bytes,
        },
        "state": {"cache_mb": config.state_cache_mb},
    }
    doc.update(config.extra)
    return json.dumps(doc, indent=2) + "\n"


def _int(section: dict[str, Any], key: str, default: int, low: int = 0) -> int:
    value = section.get(key, default)
    if type(value) is not int or value < low:
        raise ConfigError(f"{key} must be an integer >= {low}, found {value!r}")
    return value


def _bool(section: dict[str, Any], key: str, default: bool) -> bool:
    value = section.get(key, default)
    if not isinstance(value, bool):
        raise ConfigError(f"{key} must be true or false, found {value!r}")
    return value


def _log_level(doc: dict[str, Any]) -> str:
    level = doc.get("log_level", "info")
    if not isinstance(level, str) or level.lower() not in LOG_LEVELS:
        raise ConfigError(f"log_level must be one of {', '.join(LOG_LEVELS)}, found {level!r}")
    return level.lower()


def _log_file(section: dict[str, Any]) -> str | None:
    path = section.get("file", LOG_FILE)
    if path is not None and (not isinstance(path, str) or not path.strip()):
        raise ConfigError(f"log.file must be a file name or null (stderr), found {path!r}")
    return path


def _admission(section: dict[str, Any]) -> AdmissionConfig:
    unknown = set(section) - {f.name for f in dataclasses.fields(AdmissionConfig)}
    if unknown:
        raise ConfigError(f"admission has no setting {sorted(unknown)[0]!r}")
    default = AdmissionConfig()
    return AdmissionConfig(
        **{
            f.name: _int(section, f.name, getattr(default, f.name), 0 if f.name == "workers" else 1)
            for f in dataclasses.fields(AdmissionConfig)
        }
    )


def _peer(doc: dict[str, Any]) -> PeerConfig:
    key = bytes.fromhex(doc["key"])
    if len(key) != 32:
        raise ConfigError(f"peer {doc.get('name')!r}: key must be 32 bytes of hex")
    host, port = doc.get("host"), doc.get("port")
    if (host is None) != (port is None):
        raise ConfigError(f"peer {doc.get('name')!r}: give both host and port, or neither")
    return PeerConfig(
        name=str(doc.get("name", key.hex()[:8])),
        key=key,
        cert_pem=str(doc["cert"]).encode("ascii"),
        host=None if host is None else str(host),
        port=None if port is None else int(port),
    )


def config_from_json(text: str, source: str = CONFIG_FILE) -> NodeConfig:
    try:
        doc: dict[str, Any] = json.loads(text)
        p2p, api = doc.get("p2p", {}), doc.get("api", {})
        consensus, mempool, limits, log, bodies, snapshots, disk = (
            doc.get("consensus", {}),
            doc.get("mempool", {}),
            doc.get("limits", {}),
            doc.get("log", {}),
            doc.get("bodies", {}),
            doc.get("snapshots", {}),
            doc.get("disk", {}),
        )
        return NodeConfig(
            name=str(doc["name"]),
            p2p_host=str(p2p.get("host", "127.0.0.1")),
            p2p_port=_int(p2p, "port", 9600),
            api_host=str(api.get("host", "127.0.0.1")),
            api_port=_int(api, "port", 8600),
            p2p_max_handshakes=_int(p2p, "max_handshakes", 64, 1),
            p2p_max_handshakes_per_address=_int(p2p, "max_handshakes_per_address", 16, 1),
            p2p_refusal_log_interval_s=_int(p2p, "refusal_log_interval_s", 10, 1),
            peers=tuple(_peer(p) for p in doc.get("peers", [])),
            block_interval_ms=_int(consensus, "block_interval_ms", 1_000, 1),
            round_timeout_ms=_int(consensus, "round_timeout_ms", 2_000, 50),
            proposal_window_ms=_int(consensus, "proposal_window_ms", PROPOSAL_WINDOW_MS, 1),
            mempool_max_txs=_int(mempool, "max_txs", 20_000, 1),
            mempool_max_bytes=_int(mempool, "max_bytes", 64 * 2**20, 1024),
            max_frame_bytes=_int(limits, "max_frame_bytes", 32 * 2**20, 65_536),
            max_request_bytes=_int(limits, "max_request_bytes", 8 * 2**20, 65_536),
            gossip_delay_ms=_int(limits, "gossip_delay_ms", 5),
            log_level=_log_level(doc),
            log_file=_log_file(log),
            log_max_bytes=_int(log, "max_bytes", 10 * 2**20, 65_536),
            log_backups=_int(log, "backups", 5, 1),
            upload_quota_bytes=_int(bodies, "upload_quota_bytes", 64 * 2**20, 65_536),
            body_grace_s=_int(bodies, "grace_s", 3_600, 1),
            body_collect_interval_s=_int(bodies, "collect_interval_s", 60, 1),
            snapshot_interval=_int(snapshots, "interval", 1_000),
            snapshot_keep=_int(snapshots, "keep", 3, 1),
            snapshot_sync=_bool(snapshots, "sync", True),
            store_maintain_blocks=_int(disk, "maintain_every_blocks", 1_000, 1),
            store_wal_max_bytes=_int(disk, "wal_max_bytes", 64 * 2**20, 65_536),
            admission=_admission(doc.get("admission", {})),
            state_cache_mb=_int(doc.get("state", {}), "cache_mb", 128),
            extra={k: v for k, v in doc.items() if k not in _TOP_LEVEL},
        )
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc.message}") from exc
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ConfigError(
            f"{source} is not a valid node configuration ({exc!r}); "
            "see docs/DEPLOY.md for its fields"
        ) from exc


def write_config(home: Path, config: NodeConfig) -> None:
    (home / CONFIG_FILE).write_text(config_to_json(config))


def read_config(home: Path) -> NodeConfig:
    path = home / CONFIG_FILE
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ConfigError(
            f"{home} is not a node home (no {CONFIG_FILE}); create one with "
            "`medchain devnet up` or see docs/DEPLOY.md"
        ) from None
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc
    return config_from_json(text, str(path))

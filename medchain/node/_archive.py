"""Moving a stopped node onto a forked chain (`medchain node adopt-genesis`): its old
chain's files go to an archive directory in its home, the fork's genesis takes their
place, and the peers left out of the fork are dropped from its config.

The old chain store must go (the node refuses a store of another genesis), and so
must its consensus WAL: what a validator signed belongs to the old chain. Record
blobs stay, since the fork carries the state that names them.
"""

from __future__ import annotations

import dataclasses
import shutil
from dataclasses import dataclass
from pathlib import Path

from medchain.app import genesis_state
from medchain.node._config import CONFIG_FILE, WAL_FILE, read_config, write_config
from medchain.node._genesis_file import genesis_hash, read_genesis
from medchain.node._localchain import GENESIS_FILE, STORE_FILE
from medchain.node._restore import SQLITE_SIDE_FILES, require_stopped
from medchain.types import Genesis, MedchainError


@dataclass(frozen=True, slots=True)
class Adopted:
    """What `adopt_fork` did."""

    genesis: Genesis
    """The fork's genesis, now the node's."""
    archive: Path | None
    """Where the old chain's files went; None if the home had no genesis yet."""
    dropped: tuple[str, ...]
    """The peers removed from config.json, sorted."""
    peers_left: int


def archive_dir(home: Path, chain_id: str) -> Path:
    """A new directory name for the archive of `chain_id`: `archive-<id>`, or with a
    number after it when an earlier fork already archived a chain of that id."""
    candidate = home / f"archive-{chain_id}"
    n = 1
    while candidate.exists():
        candidate = home / f"archive-{chain_id}.{n}"
        n += 1
    return candidate


def archive_chain(home: Path, chain_id: str) -> Path:
    """Move the chain store, the consensus WAL (each with every file SQLite keeps
    beside it), recover's backups of the store and the genesis of the chain `chain_id`
    out of `home` into a new archive directory, and return it."""
    archive = archive_dir(home, chain_id)
    archive.mkdir()
    names = [
        f"{base}{suffix}" for base in (STORE_FILE, WAL_FILE) for suffix in ("", *SQLITE_SIDE_FILES)
    ]
    names += [p.name for p in home.glob(f"{STORE_FILE}.bad-*")]  # recover's backups
    for name in [*names, GENESIS_FILE]:
        if (home / name).exists():
            (home / name).rename(archive / name)
    return archive


def adopt_fork(home: Path, genesis: Path, drop_peers: set[str]) -> Adopted:
    """Move the stopped node at `home` to the fork whose genesis file is `genesis`
    (see the module doc). Nothing is changed unless every check passes: the node is
    stopped, the genesis is a fork of the chain the node runs (not that chain itself),
    its state hashes to its origin, and every peer named is in config.json."""
    require_stopped(home, "adopt the genesis")
    new = read_genesis(genesis)
    genesis_state(new)  # refuses a fork whose state does not hash to its origin
    config = read_config(home)
    unknown = drop_peers - {p.name for p in config.peers}
    if unknown:
        raise MedchainError(
            f"{home / CONFIG_FILE} lists no peer {', '.join(sorted(unknown))}; its peers are "
            f"{', '.join(p.name for p in config.peers) or 'none'}"
        )
    current = home / GENESIS_FILE
    old = read_genesis(current) if current.exists() else None
    if old is not None and genesis_hash(old) == genesis_hash(new):
        raise MedchainError(f"{home} already runs the genesis in {genesis}; nothing to do")
    if old is not None and (new.origin is None or new.origin.chain_id != old.chain_id):
        forks = "is not a fork" if new.origin is None else f"forks {new.origin.chain_id!r}"
        raise MedchainError(
            f"{genesis} {forks}, not this node's chain {old.chain_id!r}; adopt only the "
            "genesis of a fork of the chain the node runs"
        )
    archive = None if old is None else archive_chain(home, old.chain_id)
    shutil.copyfile(genesis, current)
    peers = tuple(p for p in config.peers if p.name not in drop_peers)
    write_config(home, dataclasses.replace(config, peers=peers))
    return Adopted(new, archive, tuple(sorted(drop_peers)), len(peers))

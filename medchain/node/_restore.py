"""Restoring a node's chain store from its anchored history (paper 003's answer to a
low-centralisation attack, or to a store damaged on disk).

The store is cut back to the last block a final, valid anchor vouches for with the
whole chain below it intact, by replaying the stored blocks into a fresh store
through `LedgerApp.commit` (every block re-executed, every root checked), so nothing
of the damaged file is trusted. The new file replaces `chain.sqlite` atomically; the
old one stays beside it as `chain.sqlite.bad-<height>`. Started again, the node
resyncs the rest from its peers. Its consensus WAL (what it signed) is left alone:
it is what keeps a validator from signing twice.

It lives in the node layer because it rebuilds a node's home with the node's own
parts (`LedgerApp`, the pid file); the anchor layer below only reads and judges.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medchain.anchor import Anchor, AnchorSettings, ChainAuditor, StoredBlocks, VerifyReport
from medchain.app import InvalidBlock
from medchain.node._config import CONFIG_FILE, read_config
from medchain.node._devnet import read_pid
from medchain.node._genesis_file import genesis_hash
from medchain.node._ledger_app import LedgerApp
from medchain.node._localchain import STORE_FILE
from medchain.store import ChainStore, StoreError
from medchain.types import Block, DecodeError, Genesis, MedchainError, block_hash, decode

SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")
"""The files SQLite may keep beside a database: the write-ahead log and its
shared-memory index (WAL mode), or the rollback journal (the other modes). Whoever
moves or removes a database moves or removes these with it."""


class RecoverError(MedchainError):
    """The store could not be restored; nothing was changed."""

    code = "recover_failed"


class NodeRunning(RecoverError):
    code = "node_running"


@dataclass(frozen=True, slots=True)
class RecoverReport:
    old_tip: int
    kept_height: int
    removed_blocks: int
    backup: Path
    """The old store, kept for inspection."""
    anchored: bool
    """True if a final, valid anchor vouches for the kept height."""
    block_hash: bytes
    state_root: bytes
    """Of the kept block: the rebuilt store's state has this root."""
    note: str
    """What was done and what to do next, for people."""
    verify: VerifyReport
    """The verification that chose the height."""

    def to_json(self) -> dict[str, Any]:
        return {
            "old_tip": self.old_tip,
            "kept_height": self.kept_height,
            "removed_blocks": self.removed_blocks,
            "backup": str(self.backup),
            "anchored": self.anchored,
            "block_hash": self.block_hash.hex(),
            "state_root": self.state_root.hex(),
            "note": self.note,
            "verify": self.verify.to_json(),
        }


def require_stopped(home: Path, then: str) -> None:
    """Refuse to change the home of a running node (`then`: what to do again once it
    is stopped)."""
    pid = read_pid(home)
    if pid is not None:
        raise NodeRunning(
            f"the node of {home} is running (pid {pid}); stop it first (Ctrl-C or SIGTERM, "
            f"or `medchain devnet down` for a devnet), then {then} again"
        )


def anchor_settings(home: Path) -> AnchorSettings:
    """The verification chain the node at `home` reads its anchors from (the `anchor`
    section of its config.json), for restoring or forking its chain."""
    section = read_config(home).extra.get("anchor")
    if section is None:
        raise MedchainError(
            f"{home / CONFIG_FILE} has no anchor section, so this node has no verification "
            "chain to read its anchors from; add one (rpc_url, eth_chain_id, contract: see "
            "a devnet node's config.json)"
        )
    return AnchorSettings.from_json(section)


def replay(app: LedgerApp, blocks: Iterable[Block]) -> int:
    """Commit `blocks` in order through `app` (each re-executed and its roots
    checked); stop at the first that does not commit. Returns the height reached."""
    for block in blocks:
        try:
            app.commit(block)
        except (InvalidBlock, StoreError):
            break
    return app.height


def recover_store(
    home: Path,
    genesis: Genesis,
    anchors: Sequence[Anchor],
    validators: tuple[bytes, ...] | None = None,
    quorum: int | None = None,
) -> RecoverReport:
    """Cut the chain store of the node at `home` back to its last anchored good block
    (see the module doc). `validators` (default: the genesis validators) and `quorum`
    (default: their consensus quorum) decide which anchors count. The node must be
    stopped. If no final anchor matches, the longest intact prefix from genesis is
    kept, and the report says so."""
    require_stopped(home, "recover")
    path = home / STORE_FILE
    if not path.is_file():
        raise RecoverError(
            f"{home} has no chain store ({STORE_FILE}); there is nothing to recover: "
            "start the node and it syncs from its peers"
        )
    _check_identity(path, genesis.chain_id, genesis_hash(genesis))
    keys = validators if validators is not None else tuple(v.public_key for v in genesis.validators)
    auditor = ChainAuditor(
        path,
        keys,
        quorum,
        chain_id=genesis.chain_id,
        max_new_blocks=None,
        max_anchor_checks=None,
    )
    try:
        report = auditor.step(anchors, max_blocks=0)
    finally:
        auditor.close()
    target, anchored = _target(report)
    tmp = path.with_name(path.name + ".recover-tmp")
    _remove_with_side_files(tmp)
    kept = _rebuild(path, tmp, genesis, target)
    backup = _swap(path, tmp, kept)
    with ChainStore(path, chain_id=genesis.chain_id, genesis_hash=genesis_hash(genesis)) as new:
        header = new.latest_block().header
    note = _note(report, target, kept, anchored)
    return RecoverReport(
        old_tip=report.tip_height,
        kept_height=kept,
        removed_blocks=max(0, report.tip_height - kept),
        backup=backup,
        anchored=anchored and kept == target,
        block_hash=block_hash(header),
        state_root=header.state_root,
        note=note,
        verify=report,
    )


def _check_identity(path: Path, chain_id: str, genesis_hash: bytes) -> None:
    """Read the store's identity without opening it as a `ChainStore` (which refuses
    a store whose rows were deleted under it)."""
    uri = path.resolve().as_uri() + "?mode=ro"
    try:
        with contextlib.closing(sqlite3.connect(uri, uri=True)) as db:
            meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
    except sqlite3.Error as exc:
        raise RecoverError(
            f"{path} is not a readable chain store ({exc}); move it away and start the "
            "node: it syncs the whole chain from its peers"
        ) from exc
    if "chain_id" not in meta:
        raise RecoverError(
            f"{path} holds no chain yet; there is nothing to recover: start the node and it "
            "syncs from its peers"
        )
    if meta.get("chain_id") != chain_id or meta.get("genesis_hash") != genesis_hash:
        raise RecoverError(
            f"{path} holds chain {meta.get('chain_id')!r} from another genesis than the one "
            f"given ({chain_id!r}); pass the genesis.json of the chain in that directory"
        )
    base = meta.get("base_height", 0)
    if isinstance(base, int) and base > 0:
        raise RecoverError(
            f"{path} joined the chain from a snapshot and holds blocks from height {base} "
            "only; recover replays every block since genesis: let the node fetch the older "
            "blocks first, or move the store away and start the node: it joins again from "
            "its peers' snapshots"
        )


def _target(report: VerifyReport) -> tuple[int, bool]:
    """The height to keep, and whether a final anchor vouches for it."""
    if report.last_verified_height >= 0:
        return report.last_verified_height, True
    mismatch = report.first_mismatch
    top = report.tip_height if mismatch is None else mismatch.height - 1
    return max(0, top), False


def _rebuild(path: Path, tmp: Path, genesis: Genesis, target: int) -> int:
    """Replay blocks 1..target of the store at `path` into a new store at `tmp`;
    returns the height the replay reached."""
    rows = StoredBlocks(path)
    fresh = ChainStore(tmp)
    try:
        app = LedgerApp(genesis, fresh)
        stored = next(iter(rows.between(0, 0)), None)
        if stored is None or stored[1] != block_hash(app.last_block().header):
            raise RecoverError(
                f"the genesis block stored in {path} is not the one this genesis makes; "
                "pass the genesis.json of the chain in that directory (or, if it is the "
                "right one, move the store away and let the node sync from its peers)"
            )
        kept = replay(app, _decoded(rows.between(1, target)))
    except BaseException:
        fresh.close()
        _remove_with_side_files(tmp)
        raise
    finally:
        rows.close()
    fresh.close()
    _checkpoint(tmp)
    return kept


def _decoded(rows: Iterable[tuple[int, bytes, bytes]]) -> Iterable[Block]:
    """The stored blocks, until one does not decode or one is missing."""
    expected = 1
    for height, _, data in rows:
        if height != expected:
            return
        try:
            yield decode(Block, data)
        except DecodeError:
            return
        expected += 1


def _checkpoint(path: Path) -> None:
    """Fold the WAL into the database file and remove the side files, so the file
    alone is the whole database (moving it without its WAL would lose commits, and a
    stale WAL beside a new file would be replayed into it)."""
    try:
        with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as db:
            (busy, _, _) = db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    except sqlite3.Error as exc:
        raise RecoverError(f"cannot checkpoint {path}: {exc}; is the node stopped?") from exc
    if busy:
        raise RecoverError(f"{path} is still in use by another process; stop the node first")
    for suffix in SQLITE_SIDE_FILES:
        side = Path(f"{path}{suffix}")
        if side.exists() and side.stat().st_size == 0:
            side.unlink()
        elif side.exists() and suffix != "-shm":
            raise RecoverError(
                f"{side} still holds changes after a checkpoint; stop every process using "
                f"{path} and recover again"
            )
    Path(f"{path}-shm").unlink(missing_ok=True)


def _remove_with_side_files(path: Path) -> None:
    path.unlink(missing_ok=True)
    for suffix in SQLITE_SIDE_FILES:
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def _backup_path(path: Path, height: int) -> Path:
    candidate = path.with_name(f"{path.name}.bad-{height}")
    n = 1
    while candidate.exists():
        candidate = path.with_name(f"{path.name}.bad-{height}.{n}")
        n += 1
    return candidate


def _swap(path: Path, tmp: Path, kept: int) -> Path:
    """Keep the old file as the backup (a hard link, so `path` always names a whole
    database) and move the new one over it in one rename."""
    _checkpoint(path)
    backup = _backup_path(path, kept)
    try:
        os.link(path, backup)
    except OSError:  # no hard links here (e.g. FAT): a copy does too
        shutil.copy2(path, backup)
    os.replace(tmp, path)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
    return backup


def _note(report: VerifyReport, target: int, kept: int, anchored: bool) -> str:
    removed = max(0, report.tip_height - kept)
    if kept < target:
        return (
            f"block {kept + 1} did not re-execute to the state root it claims, so the store "
            f"was rebuilt up to {kept} only ({removed} blocks removed); start the node to "
            "resync the rest from its peers, and report this: stored blocks should always "
            "replay"
        )
    if anchored:
        return (
            f"kept the chain up to height {kept}, the last one a final anchor vouches for "
            f"({removed} blocks removed); start the node to resync the rest from its peers"
        )
    why = (
        "no final anchor matches the stored chain"
        if report.first_mismatch is not None
        else "there is no final anchor yet"
    )
    return (
        f"{why}: kept the longest intact prefix from genesis, up to height {kept} "
        f"({removed} blocks removed), which no anchor vouches for; start the node to resync "
        "from its peers and check it with `medchain verify` once anchors are final"
    )

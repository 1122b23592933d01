"""Snapshots on disk: `home/snapshots/<height>/manifest` and `chunk-<n>`.

Each file holds the canonical bytes peers are served as they are. A snapshot is built in
a temporary directory (`.tmp-...`, never listed) and renamed into place once every file
is written and synced, so a crash leaves either a whole snapshot or none.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

from medchain._fs import fsync_directory
from medchain.node._snapshot_checks import verify_chunk, verify_manifest
from medchain.types import (
    DecodeError,
    Header,
    MedchainError,
    SnapshotInvalid,
    SnapshotManifest,
    decode,
    encode,
)

SNAPSHOTS_DIR = "snapshots"
MANIFEST_FILE = "manifest"
_TMP_PREFIX = ".tmp-"


class SnapshotMissing(MedchainError):
    """The snapshot or chunk asked for is not held here: ask another peer."""

    code = "snapshot_missing"


def chunk_file(index: int) -> str:
    return f"chunk-{index}"


class SnapshotFiles:
    """The complete snapshots under one node home."""

    def __init__(self, home: Path) -> None:
        self.root = Path(home) / SNAPSHOTS_DIR

    def heights(self) -> list[int]:
        """Heights of the complete snapshots held, ascending."""
        if not self.root.is_dir():
            return []
        names = [p.name for p in self.root.iterdir()]
        return sorted(int(name) for name in names if name.isascii() and name.isdigit())

    def path(self, height: int) -> Path:
        return self.root / str(height)

    def manifest_bytes(self, height: int) -> bytes:
        return self._read(self.path(height) / MANIFEST_FILE, f"snapshot {height}")

    def manifest(self, height: int) -> SnapshotManifest:
        try:
            return decode(SnapshotManifest, self.manifest_bytes(height))
        except DecodeError as exc:
            raise SnapshotInvalid(
                f"the manifest of snapshot {height} in {self.root} is damaged ({exc.message}); "
                "delete that snapshot's directory"
            ) from exc

    def chunk_bytes(self, height: int, index: int) -> bytes:
        if index < 0:
            raise SnapshotMissing(f"there is no chunk {index}; chunks are numbered from 0")
        return self._read(self.path(height) / chunk_file(index), f"chunk {index} of {height}")

    def prune(self, keep: int) -> list[int]:
        """Delete all but the last `keep` snapshots; return the heights deleted."""
        heights = self.heights()
        doomed = heights[: max(len(heights) - keep, 0)]
        for height in doomed:
            shutil.rmtree(self.path(height), ignore_errors=True)
        return doomed

    def remove_unfinished(self) -> None:
        """Delete temporary directories a crash left (call when nothing is writing)."""
        if self.root.is_dir():
            for path in self.root.glob(f"{_TMP_PREFIX}*"):
                shutil.rmtree(path, ignore_errors=True)

    @staticmethod
    def _read(path: Path, what: str) -> bytes:
        try:
            return path.read_bytes()
        except FileNotFoundError:
            raise SnapshotMissing(f"{what} is not held here; ask another peer") from None


class SnapshotBuild:
    """A snapshot being written: files go to a temporary directory, `finish` renames it
    to `snapshots/<height>`. Use as a context manager: leaving it without `finish`
    (an error, a crash) deletes the temporary directory."""

    def __init__(self, home: Path, height: int) -> None:
        self.files = SnapshotFiles(home)
        self.height = height
        self.files.root.mkdir(parents=True, exist_ok=True)
        self._tmp: Path | None = Path(
            tempfile.mkdtemp(dir=self.files.root, prefix=f"{_TMP_PREFIX}{height}-")
        )

    def write(self, name: str, data: bytes) -> None:
        with open(self._dir() / name, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())

    def finish(self) -> Path:
        """Publish the snapshot; if one of this height is already held (snapshots of a
        height are identical), keep that one."""
        tmp, target = self._dir(), self.files.path(self.height)
        fsync_directory(tmp)
        try:
            os.rename(tmp, target)
        except OSError:
            if not (target / MANIFEST_FILE).is_file():
                raise
            shutil.rmtree(tmp, ignore_errors=True)
        self._tmp = None
        fsync_directory(self.files.root)
        return target

    def _dir(self) -> Path:
        if self._tmp is None:
            raise RuntimeError("this snapshot is already finished")
        return self._tmp

    def __enter__(self) -> SnapshotBuild:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._tmp is not None:
            with contextlib.suppress(OSError):
                shutil.rmtree(self._tmp)
            self._tmp = None


class SnapshotWriter:
    """Keeps a snapshot fetched from peers: the manifest checked against the certified
    header, each chunk checked as it arrives, published when none is missing."""

    def __init__(self, home: Path, manifest: SnapshotManifest, header: Header) -> None:
        verify_manifest(manifest, header)
        self.manifest = manifest
        self._build = SnapshotBuild(home, manifest.height)
        self._missing = set(range(len(manifest.chunks)))

    def add_chunk(self, index: int, data: bytes) -> None:
        """Keep chunk `index` if it is the one the manifest names; SnapshotInvalid if not
        (fetch it from another peer)."""
        verify_chunk(self.manifest, index, data)
        self._build.write(chunk_file(index), data)
        self._missing.discard(index)

    def missing(self) -> list[int]:
        return sorted(self._missing)

    def finish(self) -> Path:
        if self._missing:
            raise SnapshotMissing(
                f"chunks {self.missing()[:5]} are still missing; add them before finishing"
            )
        self._build.write(MANIFEST_FILE, encode(self.manifest))
        return self._build.finish()

    def abandon(self) -> None:
        """Drop what was fetched (a writer left unfinished also leaves no snapshot)."""
        self._build.__exit__()


__all__ = [
    "MANIFEST_FILE",
    "SNAPSHOTS_DIR",
    "SnapshotBuild",
    "SnapshotFiles",
    "SnapshotMissing",
    "SnapshotWriter",
    "chunk_file",
]

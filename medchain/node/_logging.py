"""Where a node process logs: its own rotating file, so the log's size on disk is
bounded by the node itself (a parent redirecting stdout to a file could not rotate it).

`log.file` in config.json (default `node.log` in the home) is rotated at
`log.max_bytes`, keeping `log.backups` older files: at most
max_bytes x (backups + 1) on disk. With `"file": null` the node logs to stderr only,
for whatever collects it (journald, a container runtime) to bound. A node in a
terminal logs to both."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from logging.handlers import RotatingFileHandler
from pathlib import Path
from typing import TextIO

from medchain.node._config import NodeConfig
from medchain.store import DiskFull, disk_full, is_disk_full


class NodeLogFile(RotatingFileHandler):
    """The node's log file. On a full disk, logging's own report (a traceback on
    stderr for every line lost) is replaced by one call of `on_disk_full`: the node
    stops on it, saying why on stderr."""

    on_disk_full: Callable[[DiskFull], None] | None = None

    def handleError(self, record: logging.LogRecord) -> None:
        error = sys.exc_info()[1]
        if error is None or not is_disk_full(error):
            super().handleError(record)
            return
        told, self.on_disk_full = self.on_disk_full, None
        if told is not None:
            told(disk_full(Path(self.baseFilename), "the node's log"))


def watch_log_disk(on_disk_full: Callable[[DiskFull], None]) -> None:
    """Tell `on_disk_full` when the node's log file finds its disk full."""
    for handler in logging.getLogger().handlers:
        if isinstance(handler, NodeLogFile):
            handler.on_disk_full = on_disk_full


def log_format(config: NodeConfig) -> logging.Formatter:
    return logging.Formatter(f"%(asctime)s {config.name} %(levelname)s %(name)s: %(message)s")


def node_log_handlers(
    home: Path, config: NodeConfig, stderr: TextIO | None = None
) -> list[logging.Handler]:
    """The handlers a node process logs to: its rotating file (when configured) and
    `stderr` (default sys.stderr) when there is no file or it is a terminal."""
    stream = sys.stderr if stderr is None else stderr
    formatter = log_format(config)
    handlers: list[logging.Handler] = []
    if config.log_file is not None:
        path = home / config.log_file
        path.parent.mkdir(parents=True, exist_ok=True)
        handlers.append(
            NodeLogFile(
                path,
                maxBytes=config.log_max_bytes,
                backupCount=config.log_backups,
                encoding="utf-8",
            )
        )
    if config.log_file is None or stream.isatty():
        handlers.append(logging.StreamHandler(stream))
    for handler in handlers:
        handler.setFormatter(formatter)
    return handlers


def configure_node_logging(home: Path, config: NodeConfig) -> None:
    """Send this process's logging (warnings included) to the node's handlers only."""
    logging.basicConfig(
        level=config.log_level.upper(), handlers=node_log_handlers(home, config), force=True
    )
    logging.captureWarnings(True)

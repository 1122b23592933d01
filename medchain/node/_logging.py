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
from logging.handlers import RotatingFileHandler
from pathlib import Path
from typing import TextIO

from medchain.node._config import NodeConfig


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
            RotatingFileHandler(
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

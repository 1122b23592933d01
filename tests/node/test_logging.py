"""The node's log: a file it rotates itself, so a flood of log lines cannot fill the
disk; stderr when there is no file or a terminal watches."""

from __future__ import annotations

import dataclasses
import errno
import io
import logging
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from medchain.node import (
    LOG_FILE,
    OUTPUT_FILE,
    NodeConfig,
    NodeLogFile,
    create_devnet,
    free_port_base,
    node_log_handlers,
    read_config,
    start_node,
    stop_node,
    watch_log_disk,
    write_config,
)
from medchain.store import DiskFull
from tests.waiting import wait_until

MAX_BYTES = 65_536
BACKUPS = 2


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def flood_log(tmp_path: Path) -> Iterator[logging.Logger]:
    config = NodeConfig("n", log_max_bytes=MAX_BYTES, log_backups=BACKUPS)
    logger = logging.getLogger("test.node-log-flood")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    handlers = node_log_handlers(tmp_path, config, stderr=io.StringIO())
    for handler in handlers:
        logger.addHandler(handler)
    yield logger
    for handler in handlers:
        logger.removeHandler(handler)
        handler.close()


def test_a_flood_of_log_lines_stays_within_the_bound(
    tmp_path: Path, flood_log: logging.Logger
) -> None:
    padding = "x" * 100
    for i in range(4_000):  # about 0.7 MB of lines: over three times what may stay
        flood_log.info("refused a connection from 127.0.0.5: %s flood line %06d", padding, i)
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == [LOG_FILE, f"{LOG_FILE}.1", f"{LOG_FILE}.2"]
    sizes = [(tmp_path / name).stat().st_size for name in files]
    assert all(0 < size <= MAX_BYTES for size in sizes), sizes
    newest = (tmp_path / LOG_FILE).read_text().splitlines()
    assert newest[-1].endswith("flood line 003999")
    assert " n INFO test.node-log-flood: " in newest[-1]  # the node's format, its name


def test_without_a_file_the_node_logs_to_stderr_only(tmp_path: Path) -> None:
    stderr = io.StringIO()
    handlers = node_log_handlers(tmp_path, NodeConfig("n", log_file=None), stderr=stderr)
    assert len(handlers) == 1 and isinstance(handlers[0], logging.StreamHandler)
    assert handlers[0].stream is stderr
    assert list(tmp_path.iterdir()) == []


def test_in_a_terminal_the_node_logs_to_its_file_and_the_terminal(tmp_path: Path) -> None:
    config = NodeConfig("n", log_file="logs/node.log")
    terminal = Terminal()
    handlers = node_log_handlers(tmp_path, config, stderr=terminal)
    try:
        assert [type(h) for h in handlers] == [NodeLogFile, logging.StreamHandler]
        record = logging.makeLogRecord({"msg": "hello", "levelno": 20, "levelname": "INFO"})
        for handler in handlers:
            handler.handle(record)
        assert "hello" in terminal.getvalue()
        assert "hello" in (tmp_path / "logs" / "node.log").read_text()
    finally:
        for handler in handlers:
            handler.close()
    handlers = node_log_handlers(tmp_path, config, stderr=io.StringIO())  # not a terminal
    assert [type(h) for h in handlers] == [NodeLogFile]
    handlers[0].close()


class FullDisk(io.StringIO):
    def write(self, text: str) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")


def test_a_full_disk_under_the_log_is_told_once_and_prints_no_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (handler,) = node_log_handlers(tmp_path, NodeConfig("n"), stderr=io.StringIO())
    assert isinstance(handler, NodeLogFile)
    root = logging.getLogger()
    root.addHandler(handler)
    told: list[DiskFull] = []
    try:
        watch_log_disk(told.append)
        with monkeypatch.context() as patch:
            patch.setattr(handler, "stream", FullDisk())
            logging.getLogger("test.full-log").warning("first line lost")
            logging.getLogger("test.full-log").warning("second line lost")
    finally:
        root.removeHandler(handler)
        handler.close()
    assert len(told) == 1
    assert told[0].path == tmp_path / LOG_FILE
    assert "the node's log was not written" in told[0].message
    assert capsys.readouterr().err == ""


def test_other_log_failures_are_still_reported_by_logging(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (handler,) = node_log_handlers(tmp_path, NodeConfig("n"), stderr=io.StringIO())
    assert isinstance(handler, NodeLogFile)
    told: list[DiskFull] = []
    handler.on_disk_full = told.append
    closed = io.StringIO()
    closed.close()  # writing to it raises ValueError
    with monkeypatch.context() as patch:
        patch.setattr(handler, "stream", closed)
        handler.handle(logging.makeLogRecord({"msg": "lost", "levelno": 30}))
    handler.close()
    assert told == []
    assert "Logging error" in capsys.readouterr().err


@pytest.mark.slow
def test_a_node_process_writes_its_own_log_and_nothing_else_to_its_output(
    tmp_path: Path,
) -> None:
    base = free_port_base(1)
    devnet = create_devnet(tmp_path, 1, "pbft", api_port=base, p2p_port=base + 500)
    home = devnet.nodes[0].home
    write_config(home, dataclasses.replace(read_config(home), log_max_bytes=MAX_BYTES))
    (home / OUTPUT_FILE).write_text("from an earlier run\n")
    proc = start_node(home)
    try:
        log = home / LOG_FILE

        def serving() -> bool:
            assert proc.poll() is None, (home / OUTPUT_FILE).read_text()
            return log.exists() and "serves its API" in log.read_text()

        wait_until(serving, 120, "the node to serve its API")
    finally:
        if not stop_node(home, timeout_s=30):
            proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    assert "the node stopped" not in log.read_text()  # a clean stop, not an error
    assert (home / OUTPUT_FILE).read_text() == ""  # emptied at start, no log lines in it

"""A gateway's home directory: setting one up (a new account key and config.json), and
running the gateway from it: the HTTP server devices post to (and patients read its
disclosure log from), MQTT intake when the config has an `mqtt` section, the intake
workers, and the commitments of its disclosure log's head, until SIGINT or SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Generator
from pathlib import Path

import uvicorn

from medchain.client import HttpChain
from medchain.crypto import AccountKeys, save_keys
from medchain.gateway._config import (
    CONFIG_FILE,
    GATEWAY_KEY_FILE,
    INDEX_FILE,
    GatewayConfig,
    write_config,
)
from medchain.gateway._disclosure_heads import GatewayHeads
from medchain.gateway._index import ReadingIndex
from medchain.gateway._intake import IntakeCheckers, tune_collector
from medchain.gateway._mqtt import start_mqtt
from medchain.gateway._server import create_gateway_app, make_call
from medchain.gateway._service import GatewayService
from medchain.node import DISCLOSURES_FILE, SqliteDisclosureLog
from medchain.types import MedchainError

log = logging.getLogger("medchain.gateway")


def create_gateway_home(home: Path, config: GatewayConfig) -> AccountKeys:
    """Write `config` and a new account key to `home`; returns the key, whose address a
    hospital registers on chain. Refuses a directory that is already a gateway home."""
    if (home / CONFIG_FILE).exists() or (home / GATEWAY_KEY_FILE).exists():
        raise MedchainError(f"{home} is already a gateway home; run it, or choose another --home")
    home.mkdir(parents=True, exist_ok=True)
    write_config(home, config)  # checked first: a bad port leaves no key behind
    keys = AccountKeys.generate()
    save_keys(home / GATEWAY_KEY_FILE, keys)
    return keys


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield  # our own handlers stop it; uvicorn would re-raise SIGTERM after shutdown


def _warn_if_unregistered(chain: HttpChain, keys: AccountKeys, node_url: str) -> None:
    try:
        if chain.gateway(keys.address) is None:
            log.warning(
                "gateway %s is not registered on chain yet: readings are accepted but "
                "batches will be refused until a hospital runs `medchain gateways register`",
                keys.address_text,
            )
    except MedchainError as exc:
        log.warning("cannot reach the node at %s yet: %s", node_url, exc.message)


_WILDCARD_HOSTS = ("0.0.0.0", "::", "")


def _heads(
    service: GatewayService, disclosures: SqliteDisclosureLog, config: GatewayConfig
) -> GatewayHeads:
    """The commitments of the log's head, with the URL patients reach the gateway at."""
    if not config.public_url and config.host in _WILDCARD_HOSTS:
        log.warning(
            "the gateway listens on every address but its config names no public_url: "
            "patients are sent to %s for its disclosure log; set public_url in %s",
            config.api_url,
            CONFIG_FILE,
        )
    interval_s = config.disclosure_commit_interval_ms / 1000
    return GatewayHeads(disclosures, service.client, config.api_url, make_call(True), interval_s)


async def serve_gateway(home: Path, config: GatewayConfig, keys: AccountKeys) -> None:
    """Run the gateway of `home` with its `config` and account `keys` until SIGINT or
    SIGTERM; the pending batch is committed before it returns. Every reading status it
    serves is logged in `home`'s disclosure log (DISCLOSURES_FILE), whose head it
    commits on chain with its public URL (`GatewayHeads`)."""
    tune_collector()
    disclosures = SqliteDisclosureLog(home / DISCLOSURES_FILE, keys.address)
    try:
        await _serve(home, config, keys, disclosures)
    finally:
        disclosures.close()


async def _serve(
    home: Path, config: GatewayConfig, keys: AccountKeys, disclosures: SqliteDisclosureLog
) -> None:
    with HttpChain(config.node_url) as chain:
        _warn_if_unregistered(chain, keys, config.node_url)
        index = ReadingIndex(home / INDEX_FILE)
        service = GatewayService(keys, chain, index, config, disclosures=disclosures)
        heads = _heads(service, disclosures, config)
        checkers = IntakeCheckers(config.intake_workers, asyncio.to_thread)
        checkers.start()
        server = _Server(
            uvicorn.Config(
                create_gateway_app(service, checkers=checkers, heads=heads),
                host=config.host,
                port=config.port,
                log_config=None,
                access_log=False,
                timeout_graceful_shutdown=5,
            )
        )
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, lambda: setattr(server, "should_exit", True))
        log.info(
            "gateway %s serves devices on http://%s:%d, commits to %s (%d intake workers)",
            keys.address_text,
            config.host,
            config.port,
            config.node_url,
            config.intake_workers,
        )
        mqtt_stop = asyncio.Event()
        mqtt = start_mqtt(service, config, mqtt_stop, checkers=checkers)  # None without mqtt
        if mqtt is not None and config.mqtt is not None:
            log.info(
                "and over MQTT at %s:%d (%s/<device>/readings)",
                config.mqtt.host,
                config.mqtt.port,
                config.mqtt.topic_prefix,
            )
        try:
            await server.serve()  # the app's shutdown flushes the pending batch
        finally:
            mqtt_stop.set()
            if mqtt is not None:
                await mqtt
            checkers.close()
        log.info("gateway stopped; %d readings left pending", service.pending_count)

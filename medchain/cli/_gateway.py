"""`medchain gateway init|run` (an edge gateway process), `medchain reading prove` (check
a reading's Merkle proof against the root on chain, trusting the gateway for nothing)
and `medchain devices simulate` (a fleet of simulated devices streaming to a gateway)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
from collections import Counter
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Protocol

import httpx
import typer
import uvicorn
from rich.progress import Progress
from rich.table import Table

from medchain.app import (
    BATCH_ID_SIZE,
    MAX_DEVICES_PER_PATIENT,
    Batch,
)
from medchain.cli._common import (
    GatewayUnavailable,
    console,
    err_console,
    load_key_file,
    ok,
    reports_errors,
)
from medchain.cli._fleet_stream import (
    DEFAULT_TOPIC_PREFIX,
    MqttTarget,
    Transport,
    check_topic_prefix,
    parse_broker,
    state_history,
    stream_fleet,
    wait_committed,
)
from medchain.cli._options import DEFAULT_NODE, MAX_INT, NodeOption
from medchain.client import HttpChain
from medchain.crypto import AccountKeys, save_keys
from medchain.gateway import (
    CONFIG_FILE,
    GATEWAY_KEY_FILE,
    INDEX_FILE,
    GatewayConfig,
    GatewayService,
    IntakeCheckers,
    MisbehavingDevice,
    ReadingIndex,
    ReadingProof,
    create_gateway_app,
    enrol_fleet,
    load_config,
    start_mqtt,
    tune_collector,
    verify_proof,
    write_config,
)
from medchain.types import MedchainError

DEFAULT_GATEWAY = "http://127.0.0.1:8700"
GatewayOption = Annotated[
    str, typer.Option("--gateway", help="The gateway's URL.", envvar="MEDCHAIN_GATEWAY")
]
HomeOption = Annotated[
    Path, typer.Option("--home", help="The gateway's home directory.", file_okay=False)
]


# -- gateway init / run -----------------------------------------------------------------


@reports_errors
def gateway_init(
    home: HomeOption,
    node: Annotated[str, typer.Option("--node", help="The URL of the node it commits to.")],
    port: Annotated[
        int, typer.Option("--port", min=1, max=65_535, help="Port devices send readings to.")
    ] = 8700,
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
) -> None:
    """Create a gateway home: a new account key and config.json. A hospital then
    registers the printed address on chain."""
    if (home / CONFIG_FILE).exists() or (home / GATEWAY_KEY_FILE).exists():
        raise MedchainError(f"{home} is already a gateway home; run it, or choose another --home")
    config = GatewayConfig(node_url=node, host=host, port=port)
    home.mkdir(parents=True, exist_ok=True)
    write_config(home, config)  # checked first: a bad --port leaves no key behind
    keys = AccountKeys.generate()
    save_keys(home / GATEWAY_KEY_FILE, keys)
    ok(f"gateway home {home}: listens on {host}:{port}, commits to {node}")
    console.print(f"gateway address: {keys.address_text}")
    console.print("a hospital registers it before it may commit readings:")
    console.print(
        f"  medchain gateways register {keys.address_text} --label 'LABEL' "
        f"--key HOSPITAL_KEY --node {node}",
        markup=False,
        soft_wrap=True,
    )
    console.print(f"then start it: medchain gateway --home {home}", markup=False)


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield  # our own handlers stop it; uvicorn would re-raise SIGTERM after shutdown


async def _serve_gateway(home: Path, config: GatewayConfig) -> None:
    tune_collector()
    keys = load_key_file(home / GATEWAY_KEY_FILE)
    log = logging.getLogger("medchain.gateway")
    with HttpChain(config.node_url) as chain:
        try:
            if chain.gateway(keys.address) is None:
                log.warning(
                    "gateway %s is not registered on chain yet: readings are accepted but "
                    "batches will be refused until a hospital runs `medchain gateways register`",
                    keys.address_text,
                )
        except MedchainError as exc:
            log.warning("cannot reach the node at %s yet: %s", config.node_url, exc.message)
        index = ReadingIndex(home / INDEX_FILE)
        service = GatewayService(keys, chain, index, config)
        checkers = IntakeCheckers(config.intake_workers, asyncio.to_thread)
        checkers.start()
        server = _Server(
            uvicorn.Config(
                create_gateway_app(service, checkers=checkers),
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
        # None without an `mqtt` section
        mqtt = start_mqtt(service, config, mqtt_stop, checkers=checkers)
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


@reports_errors
def gateway_run(home: HomeOption) -> None:
    """Serve devices from the gateway's home until SIGINT/SIGTERM (the pending batch is
    committed before it exits)."""
    config = load_config(home)  # a bad home is refused before anything starts
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s gateway %(levelname)s %(name)s: %(message)s"
    )
    asyncio.run(_serve_gateway(home, config))


def gateway_main(
    ctx: typer.Context,
    home: Annotated[
        Path | None,
        typer.Option("--home", help="Run the gateway of this home (as `run`).", file_okay=False),
    ] = None,
) -> None:
    """Run an edge gateway (`medchain gateway --home DIR`), or set up its home."""
    if ctx.invoked_subcommand is not None:
        return
    if home is None:
        typer.echo(ctx.get_help())
        raise typer.Exit(2)
    gateway_run(home)


# -- reading prove ----------------------------------------------------------------------


@dataclass(frozen=True)
class ProofCheck:
    """What `reading prove` found: the gateway's proof and the root the chain holds."""

    reading_id: bytes
    batch_id: bytes
    proof: ReadingProof
    chain_root: bytes | None
    """None when the chain holds no such batch."""

    @property
    def verified(self) -> bool:
        return self.chain_root is not None and verify_proof(self.proof, self.chain_root)

    @property
    def reason(self) -> str:
        if self.chain_root is None:
            return f"the chain holds no batch {self.batch_id.hex()}"
        if self.proof.root != self.chain_root:
            return "the gateway's root differs from the batch root on chain"
        if not self.verified:
            return "the audit path does not lead from the reading to the root"
        return "the reading is in the batch committed on chain"

    def to_json(self) -> dict[str, Any]:
        return {
            "reading": self.reading_id.hex(),
            "batch": self.batch_id.hex(),
            "index": self.proof.index,
            "tree_size": self.proof.tree_size,
            "path": [h.hex() for h in self.proof.path],
            "proof_root": self.proof.root.hex(),
            "chain_root": None if self.chain_root is None else self.chain_root.hex(),
            "verified": self.verified,
            "reason": self.reason,
        }


def gateway_url(text: str) -> str:
    """`--gateway` checked before any request: httpx refuses some URLs with an error of
    its own (one too long, a control character in it)."""
    try:
        parsed = httpx.URL(text)
    except httpx.InvalidURL:
        parsed = None
    if parsed is None or parsed.scheme not in ("http", "https") or not parsed.host:
        raise GatewayUnavailable(
            f"{text[:200]!r} is not a gateway URL; give one like {DEFAULT_GATEWAY} "
            "(--gateway or MEDCHAIN_GATEWAY)"
        )
    return text


def _reading_id(text: str) -> bytes:
    try:
        raw = bytes.fromhex(text.strip())
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise MedchainError(f"{text!r} is not a reading id (64 hex digits, as the gateway answers)")
    return raw


def _hex(body: dict[str, Any], key: str, size: int) -> bytes:
    raw = bytes.fromhex(body[key])
    if len(raw) != size:
        raise ValueError(f"{key} is not {size} bytes")
    return raw


class BatchSource(Protocol):
    """Where committed batches are read: a ChainBackend, or a cache in front of one."""

    def batch(self, batch_id: bytes) -> Batch | None: ...


class CachedBatches:
    """The chain's batches, each read once: a batch holds many readings, so proving a
    fleet's readings asks the chain once a batch, not once a reading."""

    def __init__(self, chain: BatchSource) -> None:
        self.chain = chain
        self.seen: dict[bytes, Batch | None] = {}

    def batch(self, batch_id: bytes) -> Batch | None:
        if batch_id not in self.seen:
            self.seen[batch_id] = self.chain.batch(batch_id)
        return self.seen[batch_id]


def check_reading(gateway: httpx.Client, chain: BatchSource, reading_id: bytes) -> ProofCheck:
    """Fetch the reading's proof from the gateway and the batch root from the chain. The
    proof is rebuilt around the id asked for, so a gateway cannot prove another reading."""
    rid = reading_id.hex()
    try:
        response = gateway.get(f"/v1/readings/{rid}")
    except httpx.HTTPError as exc:
        raise GatewayUnavailable(
            f"the gateway at {gateway.base_url} did not answer ({exc}); check --gateway"
        ) from None
    if response.status_code == 404:
        raise GatewayUnavailable(f"the gateway at {gateway.base_url} knows no reading {rid}")
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.status_code != 200 or not isinstance(body, dict):
        raise GatewayUnavailable(
            f"the gateway at {gateway.base_url} answered {response.status_code}: "
            f"{response.text[:200]}"
        )
    if body.get("status") == "pending":
        raise GatewayUnavailable(
            f"reading {rid} is accepted but not committed yet; retry in a moment"
        )
    try:
        batch_id = _hex(body, "batch", BATCH_ID_SIZE)
        raw = body["proof"]
        proof = ReadingProof(
            reading_id,
            _hex(raw, "root", 32),
            int(raw["index"]),
            int(raw["tree_size"]),
            tuple(bytes.fromhex(h) for h in raw["path"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise GatewayUnavailable(f"the gateway's answer for {rid} is not a proof: {exc}") from None
    batch = chain.batch(batch_id)
    return ProofCheck(reading_id, batch_id, proof, None if batch is None else batch.root)


@dataclass(frozen=True)
class ProofTally:
    """What proving a run's readings found: how many, and why each failure failed."""

    total: int
    failures: dict[bytes, str]
    """Reading id -> why it is not proven."""
    batches: dict[bytes, Batch | None]
    """The batches read from the chain, by id."""

    @property
    def proven(self) -> int:
        return self.total - len(self.failures)


def prove_readings(
    gateway: str,
    chain: BatchSource,
    reading_ids: Sequence[bytes],
    progress: Progress | None = None,
) -> ProofTally:
    """Check every reading's Merkle proof (from the gateway) against its batch's root on
    chain, each batch read once. A reading the gateway cannot prove (unknown, still
    pending, an answer that is no proof) is a failure with the reason, not an error: the
    tally counts them all."""
    batches = CachedBatches(chain)
    failures: dict[bytes, str] = {}
    task = progress.add_task("proving", total=len(reading_ids)) if progress else None
    with httpx.Client(base_url=gateway, timeout=10.0) as http:
        for rid in reading_ids:
            try:
                check = check_reading(http, batches, rid)
                if not check.verified:
                    failures[rid] = check.reason
            except GatewayUnavailable as exc:
                failures[rid] = exc.message
            if progress is not None and task is not None:
                progress.advance(task)
    return ProofTally(len(reading_ids), failures, batches.seen)


@reports_errors
def reading_prove(
    reading_id: Annotated[str, typer.Argument(help="The reading's id (64 hex digits).")],
    gateway: GatewayOption = DEFAULT_GATEWAY,
    node: NodeOption = DEFAULT_NODE,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Prove a reading is in a batch committed on chain: exit 0 if verified, 2 if not."""
    rid = _reading_id(reading_id)
    gateway = gateway_url(gateway)
    with httpx.Client(base_url=gateway, timeout=10.0) as http, HttpChain(node) as chain:
        check = check_reading(http, chain, rid)
    if as_json:
        typer.echo(json.dumps(check.to_json(), indent=2))
    else:
        console.print(f"reading:     {rid.hex()}")
        console.print(f"batch:       {check.batch_id.hex()}")
        console.print(f"leaf:        {check.proof.index} of {check.proof.tree_size}")
        console.print("path:")
        for step in check.proof.path:
            console.print(f"  {step.hex()}")
        root = "(no such batch)" if check.chain_root is None else check.chain_root.hex()
        console.print(f"chain root:  {root}")
        verdict = "[green]verified[/]" if check.verified else "[red]NOT verified[/]"
        console.print(f"verdict:     {verdict}: {check.reason}")
    if not check.verified:
        raise typer.Exit(2)


# -- devices simulate -------------------------------------------------------------------


@reports_errors
def devices_simulate(
    key: Annotated[
        Path,
        typer.Option(
            "--key",
            help="A hospital's key (one patient per device) or a patient's.",
            dir_okay=False,
        ),
    ],
    count: Annotated[int, typer.Option("--count", min=1, max=10_000, help="Devices.")] = 10,
    per_patient: Annotated[
        int,
        typer.Option(
            "--per-patient",
            min=1,
            max=MAX_DEVICES_PER_PATIENT,
            help="With a hospital's key: one patient per this many devices, each of another "
            "kind where it can (a band, an oximeter, a thermometer, a cuff, a fall detector).",
        ),
    ] = 1,
    rate: Annotated[
        float,
        typer.Option("--rate", min=0.1, max=60_000, help="Readings per device per minute."),
    ] = 60.0,
    misbehave: Annotated[
        int,
        typer.Option(
            "--misbehave",
            min=0,
            max=10_000,
            help="How many of the devices misbehave (non-conforming, flood, bad signature, "
            "replay, in turn).",
        ),
    ] = 0,
    duration: Annotated[
        float, typer.Option("--duration", min=0.1, max=86_400, help="Seconds.")
    ] = 10.0,
    readings: Annotated[
        int | None,
        typer.Option("--readings", min=1, max=MAX_INT, help="Stop after this many per device."),
    ] = None,
    seed: Annotated[
        int, typer.Option(min=0, max=MAX_INT, help="One seed, one fleet: a rerun reuses it.")
    ] = 0,
    transport: Annotated[
        Transport,
        typer.Option(
            "--transport",
            help="http: POST to --gateway; mqtt: publish to --broker, where the gateway "
            "subscribes (its config's mqtt section).",
        ),
    ] = Transport.HTTP,
    broker: Annotated[
        str | None,
        typer.Option("--broker", help="HOST:PORT of the MQTT broker (127.0.0.1:1883)."),
    ] = None,
    topic_prefix: Annotated[
        str, typer.Option("--topic-prefix", help="The gateway's MQTT topic prefix.")
    ] = DEFAULT_TOPIC_PREFIX,
    prove: Annotated[
        bool,
        typer.Option(
            "--prove",
            help="Then check every accepted reading's Merkle proof against the batch root on "
            "chain (exit 2 if one fails).",
        ),
    ] = False,
    gateway: GatewayOption = DEFAULT_GATEWAY,
    node: NodeOption = DEFAULT_NODE,
) -> None:
    """Register a fleet of simulated devices and stream their readings to a gateway, over
    HTTP or MQTT; prints what it accepted and refused, the devices' states on chain and
    the states each misbehaving device went through. A misbehaving device keeps sending
    while restricted (refused, not struck) and misbehaves again once the penalty lapses.
    With --prove, every accepted reading is then proven against the chain."""
    if misbehave > count:
        raise MedchainError(f"--misbehave {misbehave} is more than --count {count}")
    gateway = gateway_url(gateway)
    mqtt: MqttTarget | None = None
    if transport is Transport.MQTT:
        host, port = parse_broker(broker or "127.0.0.1:1883")
        mqtt = MqttTarget(host, port, check_topic_prefix(topic_prefix))
    elif broker is not None or topic_prefix != DEFAULT_TOPIC_PREFIX:
        raise MedchainError("--broker and --topic-prefix go with --transport mqtt")
    owner = load_key_file(key)
    with HttpChain(node) as chain:
        with console.status(f"registering {count} devices on {node}"):
            devices = enrol_fleet(
                chain, owner, count, misbehave, seed=seed, per_patient=per_patient
            )
        with Progress(console=err_console, transient=True) as progress:
            run = asyncio.run(
                stream_fleet(
                    gateway,
                    devices,
                    rate_per_minute=rate,
                    duration_s=duration,
                    readings=readings,
                    progress=progress,
                    mqtt=mqtt,
                )
            )
        with console.status("waiting for the gateway to commit"):
            wait_committed(gateway)
        states = {d.keys.address: chain.device(d.keys.address) for d in devices}
        height = chain.height
        audits = {
            d.keys.address: chain.device_audit(d.keys.address)
            for d in devices
            if isinstance(d, MisbehavingDevice)
        }
        tally: ProofTally | None = None
        if prove:  # a replayed reading acknowledged as a duplicate is proven once
            ids = list(dict.fromkeys(rid for rids in run.accepted.values() for rid in rids))
            with Progress(console=err_console, transient=True) as progress:
                tally = prove_readings(gateway, chain, ids, progress)
    accepted = sum(len(v) for v in run.accepted.values())
    via = f"MQTT ({mqtt.host}:{mqtt.port})" if mqtt is not None else f"HTTP ({gateway})"
    console.print(
        f"{run.sent} readings sent over {via} in {run.elapsed_s:.1f} s: {accepted} accepted, "
        f"{sum(run.refused.values())} refused"
    )
    if run.refused:
        table = Table("refused because", "readings", title="refusals")
        for reason, n in run.refused.most_common():
            table.add_row(reason, str(n))
        console.print(table)
    honest = Counter(
        s.state_at(height).value if s else "unregistered"
        for d in devices
        if not isinstance(d, MisbehavingDevice)
        for s in [states[d.keys.address]]
    )
    console.print("honest devices: " + ", ".join(f"{n} {st}" for st, n in honest.items()))
    bad = [d for d in devices if isinstance(d, MisbehavingDevice)]
    if bad:
        table = Table(
            "device",
            "misbehaviour",
            "state",
            "strikes",
            "went through (audit trail)",
            "refused",
            title=f"misbehaving devices (at height {height})",
        )
        for d in bad:
            found = states[d.keys.address]
            refusals = run.refusals.get(d.keys.address, Counter())
            table.add_row(
                d.keys.address_text,
                d.mode.value,
                found.state_at(height).value if found else "unregistered",
                str(found.strikes if found else 0),
                " → ".join(state_history(audits[d.keys.address], height)),
                ", ".join(f"{n} {code}" for code, n in refusals.most_common()) or "none",
            )
        console.print(table)
    if tally is not None:
        _report_proofs(tally)


def _report_proofs(tally: ProofTally) -> None:
    """ "N/N readings proven against the chain", or which were not (exit 2)."""
    shown = f"{tally.proven}/{tally.total} readings proven against the chain"
    if not tally.failures:
        on_chain = sum(b is not None for b in tally.batches.values())
        ok(f"{shown} (in {on_chain} batches)")
        return
    err_console.print(f"[red]{shown}[/]: {len(tally.failures)} not proven", highlight=False)
    for rid, why in list(tally.failures.items())[:10]:
        err_console.print(f"  {rid.hex()}: {why}", highlight=False)
    if len(tally.failures) > 10:
        err_console.print(f"  ... and {len(tally.failures) - 10} more", highlight=False)
    raise typer.Exit(2)


__all__ = [
    "CachedBatches",
    "ProofCheck",
    "ProofTally",
    "check_reading",
    "prove_readings",
]

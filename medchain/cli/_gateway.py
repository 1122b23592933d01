"""`medchain gateway init|run` (an edge gateway process), `medchain reading prove` (check
a reading's Merkle proof against the root on chain, trusting the gateway for nothing)
and `medchain devices simulate` (a fleet of simulated devices streaming to a gateway)."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import Progress
from rich.table import Table

from medchain.app import MAX_DEVICES_PER_PATIENT, PurposeOfUse
from medchain.cli._common import (
    console,
    err_console,
    load_key_file,
    ok,
    reports_errors,
    runs_a_home,
)
from medchain.cli._options import DEFAULT_NODE, MAX_INT, NodeOption
from medchain.client import HttpChain
from medchain.gateway import (
    DEFAULT_GATEWAY,
    DEFAULT_TOPIC_PREFIX,
    GATEWAY_KEY_FILE,
    FleetOutcome,
    FleetRun,
    GatewayConfig,
    ProofTally,
    Transport,
    create_gateway_home,
    device_proof_auths,
    enrol_fleet,
    fleet_outcome,
    gateway_url,
    load_config,
    mqtt_target,
    parse_reading_id,
    proof_auth,
    prove_reading,
    prove_readings,
    serve_gateway,
    stream_fleet,
    wait_committed,
)
from medchain.types import MedchainError

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
    public_url: Annotated[
        str,
        typer.Option(
            "--public-url",
            help="The URL patients reach the gateway at, for its disclosure log "
            "(default: http://HOST:PORT).",
        ),
    ] = "",
) -> None:
    """Create a gateway home: a new account key and config.json. A hospital then
    registers the printed address on chain."""
    config = GatewayConfig(node_url=node, host=host, port=port, public_url=public_url)
    keys = create_gateway_home(home, config)
    ok(f"gateway home {home}: listens on {host}:{port} ({config.api_url}), commits to {node}")
    console.print(f"gateway address: {keys.address_text}")
    console.print("a hospital registers it before it may commit readings:")
    console.print(
        f"  medchain gateways register {keys.address_text} --label 'LABEL' "
        f"--key HOSPITAL_KEY --node {node}",
        markup=False,
        soft_wrap=True,
    )
    console.print(f"then start it: medchain gateway --home {home}", markup=False)


@reports_errors
def gateway_run(home: HomeOption) -> None:
    """Serve devices from the gateway's home until SIGINT/SIGTERM (the pending batch is
    committed before it exits)."""
    config = load_config(home)  # a bad home is refused before anything starts
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s gateway %(levelname)s %(name)s: %(message)s"
    )
    asyncio.run(serve_gateway(home, config, load_key_file(home / GATEWAY_KEY_FILE)))


gateway_main = runs_a_home(gateway_run, "gateway_main", "Run the gateway of this home (as `run`).")


# -- reading prove ----------------------------------------------------------------------

ProveKeyOption = Annotated[
    Path,
    typer.Option(
        "--key",
        help="Your key file: the reading's device's, its patient's, or a guardian's, read "
        "proxy's or vitals reader's of the patient (the gateway tells no one else).",
        dir_okay=False,
    ),
]
ProvePurposeOption = Annotated[
    PurposeOfUse,
    typer.Option(
        "--purpose",
        help="Why you ask (HL7 PurposeOfUse code), logged by the gateway with the read.",
        case_sensitive=False,
    ),
]


@reports_errors
def reading_prove(
    reading_id: Annotated[str, typer.Argument(help="The reading's id (64 hex digits).")],
    key: ProveKeyOption,
    gateway: GatewayOption = DEFAULT_GATEWAY,
    node: NodeOption = DEFAULT_NODE,
    purpose: ProvePurposeOption = PurposeOfUse.OPERATIONS,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Prove a reading is in a batch committed on chain: exit 0 if verified, 2 if not.
    The request to the gateway is signed with --key."""
    rid = parse_reading_id(reading_id)
    gateway = gateway_url(gateway)
    keys = load_key_file(key)
    with HttpChain(node) as chain:
        check = prove_reading(gateway, chain, rid, proof_auth(keys, chain.chain_id, purpose))
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

SimulateKeyOption = Annotated[
    Path,
    typer.Option(
        "--key", help="A hospital's key (one patient per device) or a patient's.", dir_okay=False
    ),
]
PerPatientOption = Annotated[
    int,
    typer.Option(
        "--per-patient",
        min=1,
        max=MAX_DEVICES_PER_PATIENT,
        help="With a hospital's key: one patient per this many devices, each of another "
        "kind where it can (a band, an oximeter, a thermometer, a cuff, a fall detector).",
    ),
]
MisbehaveOption = Annotated[
    int,
    typer.Option(
        "--misbehave",
        min=0,
        max=10_000,
        help="How many of the devices misbehave (non-conforming, flood, bad signature, "
        "replay, in turn).",
    ),
]
TransportOption = Annotated[
    Transport,
    typer.Option(
        "--transport",
        help="http: POST to --gateway; mqtt: publish to --broker, where the gateway "
        "subscribes (its config's mqtt section).",
    ),
]
ProveOption = Annotated[
    bool,
    typer.Option(
        "--prove",
        help="Then check every accepted reading's Merkle proof against the batch root on "
        "chain (exit 2 if one fails).",
    ),
]


@reports_errors
def devices_simulate(
    key: SimulateKeyOption,
    count: Annotated[int, typer.Option("--count", min=1, max=10_000, help="Devices.")] = 10,
    per_patient: PerPatientOption = 1,
    rate: Annotated[
        float,
        typer.Option("--rate", min=0.1, max=60_000, help="Readings per device per minute."),
    ] = 60.0,
    misbehave: MisbehaveOption = 0,
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
    transport: TransportOption = Transport.HTTP,
    broker: Annotated[
        str | None,
        typer.Option("--broker", help="HOST:PORT of the MQTT broker (127.0.0.1:1883)."),
    ] = None,
    topic_prefix: Annotated[
        str, typer.Option("--topic-prefix", help="The gateway's MQTT topic prefix.")
    ] = DEFAULT_TOPIC_PREFIX,
    prove: ProveOption = False,
    gateway: GatewayOption = DEFAULT_GATEWAY,
    node: NodeOption = DEFAULT_NODE,
) -> None:
    """Register a fleet of simulated devices and stream their readings to a gateway, over
    HTTP or MQTT; prints what it accepted and refused, the devices' states on chain and
    the states each misbehaving device went through. A misbehaving device keeps sending
    while restricted (refused, not struck) and misbehaves again once the penalty lapses.
    With --prove, every accepted reading is then proven against the chain (each device
    asks the gateway about its own readings)."""
    if misbehave > count:
        raise MedchainError(f"--misbehave {misbehave} is more than --count {count}")
    gateway = gateway_url(gateway)
    mqtt = mqtt_target(transport, broker, topic_prefix)
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
        outcome = fleet_outcome(chain, devices, run)
        tally: ProofTally | None = None
        if prove:
            with Progress(console=err_console, transient=True) as progress:
                signers = device_proof_auths(run, devices, chain.chain_id)
                tally = prove_readings(gateway, chain, signers, progress)
    via = f"MQTT ({mqtt.host}:{mqtt.port})" if mqtt is not None else f"HTTP ({gateway})"
    _show_run(run, via, outcome)
    if tally is not None:
        _report_proofs(tally)


def _show_run(run: FleetRun, via: str, outcome: FleetOutcome) -> None:
    console.print(
        f"{run.sent} readings sent over {via} in {run.elapsed_s:.1f} s: "
        f"{run.accepted_count} accepted, {sum(run.refused.values())} refused"
    )
    if run.refused:
        table = Table("refused because", "readings", title="refusals")
        for reason, n in run.refused.most_common():
            table.add_row(reason, str(n))
        console.print(table)
    console.print("honest devices: " + ", ".join(f"{n} {s}" for s, n in outcome.honest.items()))
    if not outcome.misbehaving:
        return
    table = Table(
        *("device", "misbehaviour", "state", "strikes", "went through (audit trail)", "refused"),
        title=f"misbehaving devices (at height {outcome.height})",
    )
    for bad in outcome.misbehaving:
        refusals = ", ".join(f"{n} {code}" for code, n in bad.refusals.most_common())
        table.add_row(
            bad.address,
            bad.misbehaviour,
            bad.state,
            str(bad.strikes),
            " → ".join(bad.history),
            refusals or "none",
        )
    console.print(table)


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

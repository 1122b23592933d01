"""The whole `medchain` command tree, built in one place.

The command modules define plain functions (typer parameters and `@reports_errors`);
every group and every command is named and attached here, so that the tree reads at a
glance and nothing registers itself as a side effect of an import."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import typer

from medchain.cli import (
    _anchor,
    _anon,
    _bench,
    _commands,
    _consent,
    _devices,
    _disclosures,
    _docs,
    _emergency,
    _erase,
    _fhir,
    _gateway,
    _node,
    _node_init,
    _notifications,
    _orgs,
    _proxies,
    _readings,
    _recovery,
    _search,
    _sim_papers,
    _snapshot,
    _webapp,
)
from medchain.cli._demo import demo
from medchain.cli._sim import sim

app = typer.Typer(
    help="medchain: encrypted, patient-controlled medical records on a permissioned chain.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)


def _group(
    parent: typer.Typer, name: str, help: str, default: Callable[..., Any] | None = None
) -> typer.Typer:
    """A command group under `parent`; `default` runs when no subcommand is given
    (without one, the group shows its help)."""
    group = typer.Typer(help=help, no_args_is_help=default is None)
    if default is not None:
        group.callback(invoke_without_command=True)(default)
    parent.add_typer(group, name=name)
    return group


app.command()(_commands.init)
app.command()(_commands.status)
app.command()(_commands.account)
app.command()(_commands.register)
app.command()(_commands.transfer)
app.command()(_notifications.notifications)
app.command()(_fhir.fhir)
app.command()(demo)
app.command()(_docs.docs)
app.command()(_anchor.verify)
app.command()(_anchor.recover)
app.command()(_anchor.fork)
app.command("app")(_webapp.web_app)

keys = _group(app, "keys", "Create and inspect account key files.")
keys.command("new")(_commands.keys_new)
keys.command("show")(_commands.keys_show)
keys.command("rotate")(_recovery.keys_rotate)

record = _group(app, "record", "Encrypted medical records (FHIR R4).")
record.command("put")(_commands.record_put)
record.command("get")(_commands.record_get)
record.command("update")(_commands.record_update)
record.command("grant")(_commands.record_grant)
record.command("revoke")(_commands.record_revoke)
record.command("set-terms")(_consent.record_set_terms)
record.command("show")(_commands.record_show)
record.command("list")(_commands.record_list)
record.command("audit")(_commands.record_audit)
record.command("disclosures")(_disclosures.record_disclosures)
record.command("erase")(_erase.record_erase)
record.command("search")(_search.record_search)
record.command("index")(_search.record_index)
record.command("unindex")(_search.record_unindex)
record.command("search-grant")(_search.record_search_grant)

research = _group(app, "research", "De-identified records for research.")
research.command("grant")(_commands.research_grant)
research.command("revoke")(_commands.research_revoke)
research.command("data")(_commands.research_data)

staking = _group(app, "staking", "Stake tokens and vote for validators.")
staking.command("stake")(_commands.staking_stake)
staking.command("unstake")(_commands.staking_unstake)
staking.command("withdraw")(_commands.staking_withdraw)
staking.command("candidate")(_commands.staking_candidate)
staking.command("vote")(_commands.staking_vote)
staking.command("unvote")(_commands.staking_unvote)
staking.command("candidates")(_commands.staking_candidates)

anon = _group(app, "anon", "Anonymous contributions (linkable ring signatures).")
anon.command("open")(_anon.anon_open)
anon.command("close")(_anon.anon_close)
anon.command("submit")(_anon.anon_submit_cmd)
anon.command("list")(_anon.anon_list)

org = _group(app, "org", "The consortium: organisations, proposals, credentials, attestations.")
org.command("list")(_orgs.org_list)
org.command("show")(_orgs.org_show)
org.command("staff")(_orgs.org_staff)
org.command("proposals")(_orgs.org_proposals)
org.command("proposal")(_orgs.org_proposal)
org.command("propose")(_orgs.org_propose)
org.command("approve")(_orgs.org_approve)
org.command("credential")(_orgs.org_credential)
org.command("suspend")(_orgs.org_suspend)
org.command("reinstate")(_orgs.org_reinstate)
org.command("revoke")(_orgs.org_revoke)
org.command("attest")(_orgs.org_attest)
org.command("credentials")(_orgs.org_credentials)

recovery = _group(app, "recovery", "Key recovery with guardians, after a waiting period.")
recovery.command("setup")(_recovery.recovery_setup)
recovery.command("status")(_recovery.recovery_status)
recovery.command("request")(_recovery.recovery_request)
recovery.command("approve")(_recovery.recovery_approve)
recovery.command("cancel")(_recovery.recovery_cancel)
recovery.command("complete")(_recovery.recovery_complete)

emergency = _group(app, "emergency", "Break-glass: emergency access to a patient's emergency set.")
emergency.command("policy")(_emergency.emergency_policy)
emergency.command("open")(_emergency.emergency_open)
emergency.command("list")(_emergency.emergency_list)
emergency.command("serve")(_emergency.emergency_serve)
emergency.command("read")(_emergency.emergency_read)

consent = _group(
    app, "consent", "Standing consents: who reads all of a patient's records of some kind."
)
consent.command("grant")(_consent.consent_grant)
consent.command("revoke")(_consent.consent_revoke)
consent.command("list")(_consent.consent_list)
consent.command("export")(_consent.consent_export)
consent.command("import")(_consent.consent_import)

proxy = _group(app, "proxy", "Proxies: who may act for a patient, in which scopes, until when.")
proxy.command("add")(_proxies.proxy_add)
proxy.command("remove")(_proxies.proxy_remove)
proxy.command("list")(_proxies.proxy_list)

devices = _group(
    app, "devices", "Medical devices: register them for a patient, guardians, states, audit trails."
)
devices.command("register")(_devices.devices_register)
devices.command("relabel")(_devices.devices_relabel)
devices.command("show")(_devices.devices_show)
devices.command("list")(_devices.devices_list)
devices.command("audit")(_devices.devices_audit)
devices.command("state")(_devices.devices_state)
devices.command("share-vitals")(_devices.share_vitals)
devices.command("unshare-vitals")(_devices.unshare_vitals)
devices.command("vitals-readers")(_devices.vitals_readers)
devices.command("simulate")(_gateway.devices_simulate)

guardian = _group(devices, "guardian", "Guardians: accounts a patient lets manage their devices.")
guardian.command("add")(_devices.guardian_add)
guardian.command("remove")(_devices.guardian_remove)
guardian.command("list")(_devices.guardian_list)

gateways = _group(
    app, "gateways", "Edge gateways: hospitals register them to report devices and commit readings."
)
gateways.command("register")(_devices.gateways_register)
gateways.command("revoke")(_devices.gateways_revoke)
gateways.command("show")(_devices.gateways_show)

gateway = _group(
    app, "gateway", "Run an edge gateway, or set up its home.", default=_gateway.gateway_main
)
gateway.command("init")(_gateway.gateway_init)
gateway.command("run")(_gateway.gateway_run)

reading = _group(
    app, "reading", "Device readings committed by a gateway: prove them against the chain."
)
reading.command("prove")(_gateway.reading_prove)
reading.command("list")(_readings.reading_list)

simulator = _group(
    app,
    "sim",
    "Simulate PBFT, AFBFT or DPoS+PBFT on a seeded virtual network (paper 000's "
    "experiments); the subcommands reproduce the papers' other figures.",
    default=sim,
)
simulator.command("catch-up")(_sim_papers.catch_up)
simulator.command("bandwidth")(_sim_papers.bandwidth)

bench = _group(
    app,
    "bench",
    "Benchmarks (figures for docs/BENCHMARKS.md). Without a subcommand: the network "
    "benchmark on a fresh local devnet.",
    default=_bench.network,
)
bench.command("ledger")(_bench.ledger)
bench.command("sim")(_bench.sim_speed)
bench.command("state")(_bench.state_root)
bench.command("state-growth")(_bench.state_growth)
bench.command("snapshot")(_bench.snapshot)
bench.command("ring")(_bench.ring)
bench.command("flood")(_bench.flood)
bench.command("search")(_bench.search_speed)
bench.command("fhir")(_bench.fhir)
bench.command("app")(_bench.web_app)
bench.command("gateway")(_bench.gateway)
bench.command("soak")(_bench.soak)

devnet = _group(app, "devnet", "A local network of node processes on this machine.")
devnet.command("up")(_node.devnet_up)
devnet.command("down")(_node.devnet_down)

node = _group(app, "node", "Run a node, or set up its home.", default=_node.node_main)
node.command("run")(_node.node)
node.command("init")(_node_init.node_init)
node.command("add-peer")(_node_init.node_add_peer)
node.command("check-disclosures")(_disclosures.check_disclosures)
node.command("adopt-genesis")(_anchor.adopt_genesis)

snapshot = _group(app, "snapshot", "State snapshots this node keeps for nodes that join.")
snapshot.command("list")(_snapshot.snapshot_list)
snapshot.command("create")(_snapshot.snapshot_create)

genesis = _group(app, "genesis", "The genesis document every node of a network starts from.")
genesis.command("new")(_node_init.genesis_new)
genesis.command("show")(_node_init.genesis_show)

anchor = _group(app, "anchor", "The anchor contract on the verification chain (Ethereum).")
anchor.command("register")(_anchor.anchor_register)
anchor.command("key")(_anchor.anchor_key)


def main() -> None:
    app()

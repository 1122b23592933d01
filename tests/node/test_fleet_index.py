"""Each node's index of gateways and devices, built from its blocks beside the state:
its counts are what reading every device from the state gives, through registrations,
state changes and penalties (a penalty restriction lapsing by itself included); it
survives a restart, is rebuilt when deleted, and on a store that starts above genesis
counts from its first block, then reaches down as older blocks arrive."""

from __future__ import annotations

import itertools
from collections import Counter
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from medchain.app import (
    DeviceKind,
    DeviceOffence,
    DeviceState,
    FleetCounts,
    Gateway,
    RegisterGatewayArgs,
    ReportArgs,
    RevokeGatewayArgs,
    SetStateArgs,
)
from medchain.crypto import AccountKeys
from medchain.node import LocalChain
from tests.node.test_vitals_index import (
    T0,
    Fleet,
    _drop_blocks_below,
    _fleet_on_disk,
    _put_back,
)

_EVIDENCE = itertools.count()
"""Each report's evidence is new: the same evidence is never counted twice."""


def _devices(fleet: Fleet) -> list[bytes]:
    return [d.address for p in fleet.patients for d in fleet.devices[p.address]]


def _from_the_state(
    local: LocalChain, devices: list[bytes], height: int
) -> Counter[tuple[DeviceKind, DeviceState]]:
    """Each device read from the committed state, counted by kind and state in force."""
    counted: Counter[tuple[DeviceKind, DeviceState]] = Counter()
    for address in devices:
        device = local.device(address)
        assert device is not None
        counted[device.kind, device.state_at(height)] += 1
    return counted


def _indexed(counts: FleetCounts) -> Counter[tuple[DeviceKind, DeviceState]]:
    return Counter({(c.kind, c.state): c.count for c in counts.devices})


def _report(fleet: Fleet, device: AccountKeys, times: int) -> None:
    for _ in range(times):
        evidence = b"offending reading %d" % next(_EVIDENCE)
        args = ReportArgs(device.address, DeviceOffence.RATE_LIMIT, evidence)
        fleet.seal(fleet.tx(fleet.gateway, "devices.report", args))


def _agrees(fleet: Fleet) -> FleetCounts:
    counts = fleet.local.fleet_counts()
    assert counts.height == fleet.local.height
    assert _indexed(counts) == _from_the_state(fleet.local, _devices(fleet), counts.height)
    return counts


def test_counts_follow_registrations_state_changes_and_penalties() -> None:
    fleet = Fleet.in_memory(patients=2)
    counts = _agrees(fleet)
    assert counts.device_total == 4 and counts.by_state() == {DeviceState.ACTIVE: 4}
    assert counts.by_kind() == {DeviceKind.ECG: 4}
    assert (counts.gateways_active, counts.gateways_revoked, counts.complete_from) == (1, 0, 0)

    owner = fleet.patients[0]
    own, penalised = fleet.devices[owner.address]
    restrict = SetStateArgs(own.address, DeviceState.RESTRICTED, "lost it")
    fleet.seal(fleet.tx(owner, "devices.set_state", restrict))
    assert _agrees(fleet).by_state() == {DeviceState.ACTIVE: 3, DeviceState.RESTRICTED: 1}

    _report(fleet, penalised, 3)  # restricted by the penalty rule, for a while
    assert _agrees(fleet).by_state() == {DeviceState.ACTIVE: 2, DeviceState.RESTRICTED: 2}
    until = fleet.local.device(penalised.address)
    assert until is not None and until.restricted_until > fleet.local.height
    still = fleet.local.fleet_index().counts(until.restricted_until)  # its last height
    assert still.by_state() == {DeviceState.ACTIVE: 2, DeviceState.RESTRICTED: 2}
    later = fleet.local.fleet_index().counts(until.restricted_until + 1)
    lapsed = _from_the_state(fleet.local, _devices(fleet), until.restricted_until + 1)
    assert _indexed(later) == lapsed  # the penalty lapsed; the owner's restriction stays
    assert later.by_state() == {DeviceState.ACTIVE: 3, DeviceState.RESTRICTED: 1}

    _report(fleet, penalised, 1)  # a strike while restricted bans it
    banned = _agrees(fleet)
    assert banned.by_state() == {
        DeviceState.ACTIVE: 2,
        DeviceState.RESTRICTED: 1,
        DeviceState.BANNED: 1,
    }


def test_gateways_registered_revoked_and_their_batches() -> None:
    fleet = Fleet.in_memory(patients=1)
    spare = AccountKeys.generate()
    fleet.seal(
        fleet.tx(
            fleet.hospital, "devices.register_gateway", RegisterGatewayArgs(spare.address, "x")
        )
    )
    fleet.commit(fleet.bundle(0, T0, T0))
    fleet.seal(fleet.tx(fleet.hospital, "devices.revoke_gateway", RevokeGatewayArgs(spare.address)))
    counts = _agrees(fleet)
    assert (counts.gateways_active, counts.gateways_revoked) == (1, 1)
    total, listed = fleet.local.gateways(0, 10)
    assert total == 2
    assert listed == [
        fleet.local.gateway(fleet.gateway.address),
        fleet.local.gateway(spare.address),
    ]
    edge, revoked = listed
    assert (edge.batch_count, edge.active, edge.org_id) == (1, True, "vitals-hospital")
    assert (revoked.batch_count, revoked.active) == (0, False)
    assert fleet.local.gateways(1, 10) == (2, [revoked])
    assert fleet.local.gateways(2, 10) == (2, [])


def _everything(local: LocalChain) -> tuple[FleetCounts, list[Gateway]]:
    return local.fleet_counts(), local.gateways(0, 100)[1]


def test_the_index_survives_a_restart_and_is_rebuilt_when_deleted(tmp_path: Path) -> None:
    fleet = _fleet_on_disk(tmp_path)
    fleet.commit(fleet.bundle(0, T0, T0))
    _report(fleet, fleet.devices[fleet.patients[1].address][0], 4)
    before = _everything(fleet.local)
    assert before[0].by_state()[DeviceState.BANNED] == 1
    fleet.local.close()
    assert (tmp_path / "chain-fleet.sqlite").exists()

    reopened = LocalChain.open(tmp_path)
    assert reopened.fleet_index().high == reopened.height  # nothing left to index
    assert _everything(reopened) == before
    reopened.close()

    for path in tmp_path.glob("chain-fleet.sqlite*"):
        path.unlink()
    rebuilt = LocalChain.open(tmp_path)
    assert _everything(rebuilt) == before
    rebuilt.close()


def test_a_store_above_genesis_counts_from_its_first_block_then_reaches_down(
    tmp_path: Path,
) -> None:
    fleet = _fleet_on_disk(tmp_path)  # the gateway and devices are registered early
    late = fleet.commit(fleet.bundle(0, T0, T0))
    everything = _everything(fleet.local)
    fleet.local.close()
    for path in tmp_path.glob("chain-fleet.sqlite*"):
        path.unlink()
    saved = _drop_blocks_below(tmp_path / "chain.sqlite", late.height)

    joined = LocalChain.open(tmp_path)
    counts, gateways = _everything(joined)
    assert counts.complete_from == late.height
    assert counts.devices == ()  # registered below the first block it holds
    assert [g.address for g in gateways] == [fleet.gateway.address]  # its batch is above
    _put_back(tmp_path / "chain.sqlite", saved)  # the backfill stores the older blocks
    assert _everything(joined) == everything
    joined.close()


_STEPS = st.lists(
    st.tuples(
        st.sampled_from(["owner sets", "gateway reports", "register", "empty block"]),
        st.integers(0, 3),
        st.sampled_from(list(DeviceState)),
    ),
    max_size=12,
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_STEPS)
def test_any_story_counts_what_the_state_holds(steps: list[tuple[str, int, DeviceState]]) -> None:
    """Whatever happens (refused calls included), at the latest height and later ones."""
    fleet = Fleet.in_memory(patients=2)
    devices = [(p, d) for p in fleet.patients for d in fleet.devices[p.address]]
    for step, which, state in steps:
        patient, device = devices[which]
        if step == "owner sets":
            args: object = SetStateArgs(device.address, state, "the owner's")
            txs = [fleet.tx(patient, "devices.set_state", args)]
        elif step == "gateway reports":
            evidence = b"offending reading %d" % next(_EVIDENCE)
            args = ReportArgs(device.address, DeviceOffence.REPLAY, evidence)
            txs = [fleet.tx(fleet.gateway, "devices.report", args)]
        elif step == "register":
            fresh = AccountKeys.generate()
            fleet.devices[patient.address].append(fresh)
            txs = [fleet._register(patient, fresh)]
        else:
            txs = []
        fleet.local.seal(txs)  # a refused call is committed all the same
    _agrees(fleet)
    index, everyone = fleet.local.fleet_index(), _devices(fleet)
    ends = {d.restricted_until for d in map(fleet.local.device, everyone) if d is not None}
    lapses = {h for end in ends - {0} for h in (end, end + 1)}  # the last height, the first after
    for later in sorted(lapses | {fleet.local.height + 150}):
        assert _indexed(index.counts(later)) == _from_the_state(fleet.local, everyone, later)

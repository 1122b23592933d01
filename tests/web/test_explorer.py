"""What the explorer reads from a node, through the node's public API."""

from __future__ import annotations

from medchain.anchor import Mismatch, VerifyReport
from medchain.app import DeviceState, Role
from medchain.client import HttpChain
from medchain.crypto import AccountKeys, format_address
from medchain.web._explorer import (
    AnchorView,
    accounts_with,
    block_page,
    latest_blocks,
    overview,
)
from medchain.web._explorer_fleet import STATES, GatewayRow, KindRow, fleet_view
from tests.api.harness import HOSPITAL, admin, make_chain, served
from tests.web.conftest import AnchoringNode, Ward, verified_report
from tests.web.wearer import wear_device


def test_latest_blocks_newest_first(ward: Ward) -> None:
    with HttpChain(ward.node.url) as chain:
        blocks = latest_blocks(chain, count=3)
        top = chain.latest_block().height
    assert [b.height for b in blocks] == [top, top - 1, top - 2]
    assert all(b.tx_count >= 0 and len(b.hash) == 64 for b in blocks)


def test_a_block_page_decodes_its_transactions(ward: Ward) -> None:
    ward.doctor_writes()
    with HttpChain(ward.node.url) as chain:
        top = chain.latest_block().height
        page = block_page(chain, top)
        missing = block_page(chain, top + 100)
    assert page is not None and missing is None
    (tx,) = page.txs
    assert tx.method == "records.create"
    assert tx.sender == format_address(ward.doctor.address)
    assert dict(tx.arguments)["patient"] == format_address(ward.patient.address)
    assert dict(tx.arguments)["resource_type"] == "Condition"
    assert tx.outcome == "ok"
    assert any(effect.startswith("record") for effect in tx.effects)


def test_the_overview_names_validators_primary_engine_and_roles(ward: Ward) -> None:
    with HttpChain(ward.node.url) as chain:
        info = overview(chain)
        patients = chain.role_count(Role.PATIENT)
    (validator,) = info.validators
    assert validator.name == "v0"
    assert validator.primary
    assert info.status.consensus
    assert dict(info.role_counts)["patient"] == patients >= 4
    assert info.anchors.configured is True
    assert "device" not in dict(info.role_counts)


def test_accounts_by_role_are_paged(ward: Ward) -> None:
    with HttpChain(ward.node.url) as chain:
        total, first = accounts_with(chain, Role.PATIENT, 0, count=2)
        _, rest = accounts_with(chain, Role.PATIENT, 2, count=50)
    assert total == len(first) + len(rest)
    assert len(first) == 2
    assert format_address(ward.patient.address) in {r.address for r in first + rest}


def test_the_fleet_shows_gateways_and_devices_by_kind_and_state(ward: Ward) -> None:
    assert [s.value for s in STATES] == ["active", "restricted", "banned"]
    with HttpChain(ward.node.url) as chain:
        empty = fleet_view(chain)
        gateway = AccountKeys.generate()
        hospital = admin(chain)
        hospital.register_gateway(gateway.address, "ward 3")
        band = wear_device(ward, chain)
        wear_device(ward, chain)
        registered = fleet_view(chain)
        hospital.set_device_state(band.keys.address, DeviceState.BANNED, "lost")
        hospital.revoke_gateway(gateway.address)
        changed = fleet_view(chain)
    assert (empty.total, empty.kinds, empty.gateway_total, empty.gateways) == (0, (), 0, ())
    assert registered.kinds == (KindRow("heart rate", (2, 0, 0), 2),)
    assert (registered.gateways_active, registered.gateway_total) == (1, 1)
    (found,) = registered.gateways
    address = format_address(gateway.address)
    assert found == GatewayRow("ward 3", address, HOSPITAL.org_id, "active", found.height, 0)
    assert 0 < found.height < registered.height
    assert changed.kinds == (KindRow("heart rate", (1, 0, 1), 2),)
    assert (changed.totals, changed.total) == ((1, 0, 1), 2)
    assert [g.state for g in changed.gateways] == ["revoked"]
    assert (changed.gateways_active, changed.gateways_revoked) == (0, 1)


def _anchors(report: VerifyReport | None) -> AnchorView:
    with (
        served(lambda: AnchoringNode(make_chain(), report)) as running,
        HttpChain(running.url) as chain,
    ):
        return overview(chain).anchors


def test_anchors_verified_up_to_a_height() -> None:
    view = _anchors(verified_report())
    assert (view.configured, view.anchored_height, view.final_height) == (True, 12, 10)
    assert view.contract.lower() == "0x" + "ab" * 20
    assert view.state == "verified up to height 10; 1 invalid anchors ignored; 1 pending"
    assert (view.alarm, view.warning) == ("", "")


def test_a_mismatch_with_a_final_anchor_is_an_alarm() -> None:
    forged = Mismatch(8, "state_root", b"\x01" * 32, b"\x02" * 32, "rewritten")
    early = Mismatch(11, "block_hash", b"\x03" * 32, b"\x04" * 32)
    view = _anchors(verified_report(forged, early))
    assert view.alarm == "state_root at height 8: rewritten"
    assert view.warning == "a pending anchor disagrees: block_hash at height 11"


def test_anchors_not_checked_yet() -> None:
    assert _anchors(None).state == "not checked yet"

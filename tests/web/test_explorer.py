"""What the explorer reads from a node, through the node's public API."""

from __future__ import annotations

from medchain.app import Role
from medchain.client import HttpChain
from medchain.crypto import format_address
from medchain.web._explorer import accounts_with, block_page, latest_blocks, overview
from tests.web.conftest import Ward


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
    assert info.anchoring["configured"] is False


def test_accounts_by_role_are_paged(ward: Ward) -> None:
    with HttpChain(ward.node.url) as chain:
        total, first = accounts_with(chain, Role.PATIENT, 0, count=2)
        _, rest = accounts_with(chain, Role.PATIENT, 2, count=50)
    assert total == len(first) + len(rest)
    assert len(first) == 2
    assert format_address(ward.patient.address) in {r.address for r in first + rest}

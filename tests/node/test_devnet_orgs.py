"""A devnet's founding organisations: each with an admin and an account key file in
the devnet's home, named in the genesis, funded, and running its validators."""

from __future__ import annotations

from pathlib import Path

from medchain.app import genesis_state, get_account, get_organisation, member_organisations
from medchain.crypto import load_keys
from medchain.node import FOUNDING_ORGS, ORG_FUNDS, create_devnet, load_devnet


def test_a_devnet_founds_its_organisations_with_key_files(tmp_path: Path) -> None:
    devnet = create_devnet(tmp_path, 4, "afbft", api_port=18_100)
    genesis = devnet.genesis()
    state = genesis_state(genesis)
    assert [o.org_id for o in member_organisations(state)] == sorted(
        o.org_id for o in FOUNDING_ORGS
    )
    for founding in FOUNDING_ORGS:
        admin = load_keys(devnet.admin_key(founding.org_id))
        account = load_keys(devnet.org_key(founding.org_id))
        assert devnet.admin_key(founding.org_id) == (
            tmp_path / "orgs" / founding.org_id / "admin.key"
        )
        org = get_organisation(state, founding.org_id)
        assert org is not None and org.kind.value == founding.kind
        assert org.admins == (admin.address,) and org.account == account.address
        assert get_account(state, admin.address).balance == ORG_FUNDS
        assert get_account(state, account.address).balance == ORG_FUNDS
    assert load_devnet(tmp_path).admin_key("northlab") == devnet.admin_key("northlab")


def test_one_validator_per_organisation_then_round_again(tmp_path: Path) -> None:
    genesis = create_devnet(tmp_path, 5, "pbft", api_port=18_200).genesis()
    ids = [o.org_id for o in FOUNDING_ORGS]
    assert [v.organisation for v in genesis.validators] == [*ids, ids[0]]

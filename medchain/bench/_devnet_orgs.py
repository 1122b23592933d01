"""The keys of a devnet's founding organisations, as its home keeps them
(orgs/<org_id>/admin.key and orgs/<org_id>/org.key): benchmarks on a devnet act as
one of them, since only organisations register gateways and open anonymous scopes."""

from __future__ import annotations

from medchain.crypto import AccountKeys, load_keys
from medchain.node import Devnet
from medchain.types import MedchainError

ADMIN_KEY = "admin.key"
"""An organisation admin's key file: registers gateways and devices, credentials."""
ACCOUNT_KEY = "org.key"
"""The organisation account's key file: receives research copies, opens scopes."""


def founding_key(devnet: Devnet, name: str) -> AccountKeys:
    """Key file `name` of the devnet's first founding organisation (by id)."""
    found = sorted((devnet.home / "orgs").glob(f"*/{name}"))
    if not found:
        raise MedchainError(
            f"the devnet in {devnet.home} keeps no organisation key (orgs/*/{name}); "
            "create it again with this medchain (`medchain devnet up --fresh`)"
        )
    return load_keys(found[0])

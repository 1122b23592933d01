"""The keys of a devnet's founding organisations, as its home keeps them
(orgs/<org_id>/admin.key and orgs/<org_id>/org.key): benchmarks on a devnet act as
one of them, since only organisations register gateways and open anonymous scopes."""

from __future__ import annotations

from medchain.app import OrgKind
from medchain.crypto import AccountKeys, load_keys
from medchain.node import ORGS_DIR, Devnet
from medchain.types import MedchainError


def founding_key(devnet: Devnet, name: str, kind: OrgKind | None = None) -> AccountKeys:
    """Key file `name` (`medchain.node`'s ADMIN_KEY_FILE: an admin, who registers
    gateways and devices; ORG_KEY_FILE: the organisation account, which receives
    research copies and opens scopes) of the devnet's first founding organisation
    (by id) of `kind` (of any kind by default)."""
    founders = sorted(devnet.genesis().organisations, key=lambda org: org.org_id)
    for org in founders:
        path = devnet.home / ORGS_DIR / org.org_id / name
        if (kind is None or org.kind == kind.value) and path.exists():
            return load_keys(path)
    of_kind = "" if kind is None else f" {kind.value}"
    raise MedchainError(
        f"the devnet in {devnet.home} keeps no key of a founding{of_kind} organisation "
        f"(orgs/<org_id>/{name}); create it again with this medchain"
    )

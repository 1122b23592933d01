"""The founding organisations of a devnet: who runs its validators, with key files
an operator can act with (`medchain org ... --key orgs/st-mary/admin.key`).

Each founding organisation gets one admin and its organisation account, each an
ordinary account key file under `orgs/<org_id>/` in the devnet's home, funded from
the genesis like the faucet. Validator i belongs to organisation i (modulo their
number): one validator per organisation for the first ones."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from medchain.crypto import AccountKeys, save_keys
from medchain.types import Allocation, GenesisOrganisation

ORGS_DIR = "orgs"
ADMIN_KEY_FILE = "admin.key"
ORG_KEY_FILE = "org.key"
ORG_FUNDS = 1_000_000_000
"""What each admin and organisation account starts with: fees for years of use."""


@dataclass(frozen=True, slots=True)
class FoundingOrg:
    org_id: str
    name: str
    kind: str


FOUNDING_ORGS = (
    FoundingOrg("st-mary", "St Mary's Hospital", "hospital"),
    FoundingOrg("riverside", "Riverside General Hospital", "hospital"),
    FoundingOrg("northlab", "Northlab Research Institute", "research"),
    FoundingOrg("civic-insure", "Civic Health Insurance", "insurer"),
)


def org_dir(home: Path, org_id: str) -> Path:
    """Where a devnet in `home` keeps an organisation's key files."""
    return home / ORGS_DIR / org_id


def admin_key_file(home: Path, org_id: str) -> Path:
    return org_dir(home, org_id) / ADMIN_KEY_FILE


def org_key_file(home: Path, org_id: str) -> Path:
    """The organisation account's key file (an ordinary account key file)."""
    return org_dir(home, org_id) / ORG_KEY_FILE


def organisation_of_validator(index: int) -> str:
    """The founding organisation that runs validator `index`."""
    return FOUNDING_ORGS[index % len(FOUNDING_ORGS)].org_id


@dataclass(frozen=True, slots=True)
class FoundingKeys:
    """A founding organisation with its fresh admin and account keys."""

    org: FoundingOrg
    admin: AccountKeys
    account: AccountKeys

    def genesis_entry(self) -> GenesisOrganisation:
        return GenesisOrganisation(
            self.org.org_id,
            self.org.name,
            self.org.kind,
            (self.admin.public_key,),
            self.account.public_key,
            self.account.encryption_public_key,
        )

    def allocations(self) -> tuple[Allocation, Allocation]:
        return Allocation(self.admin.address, ORG_FUNDS), Allocation(
            self.account.address, ORG_FUNDS
        )

    def save(self, home: Path) -> None:
        org_dir(home, self.org.org_id).mkdir(parents=True, exist_ok=True)
        save_keys(admin_key_file(home, self.org.org_id), self.admin)
        save_keys(org_key_file(home, self.org.org_id), self.account)


def founding_keys() -> list[FoundingKeys]:
    """Fresh keys for every founding organisation."""
    return [FoundingKeys(o, AccountKeys.generate(), AccountKeys.generate()) for o in FOUNDING_ORGS]

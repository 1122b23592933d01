"""The organisations the story acts as: a hospital whose admin credentials the
doctors, and a research institute whose account receives research copies and opens
the study. Their key files are where a devnet or `medchain init` writes them
(`orgs/<org_id>/admin.key` and `org.key`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from medchain.app import Organisation, OrgKind
from medchain.client import ChainBackend
from medchain.crypto import AccountKeys, load_keys
from medchain.node import ADMIN_KEY_FILE, ORG_KEY_FILE
from medchain.types import MedchainError


@dataclass(frozen=True, slots=True)
class Member:
    org: Organisation
    admin: AccountKeys
    account: AccountKeys


@dataclass(frozen=True, slots=True)
class Consortium:
    members: tuple[Member, ...]
    """Every member organisation whose key files the demo holds, by id."""

    def first(self, kind: OrgKind) -> Member:
        return next(m for m in self.members if m.org.kind is kind)


def load_consortium(chain: ChainBackend, orgs_dir: Path | None) -> Consortium:
    """The member organisations of `chain` whose admin and account key files are under
    `orgs_dir`; a hospital and a research institute among them."""
    members = []
    for org in chain.organisations():
        folder = orgs_dir / org.org_id if orgs_dir is not None else None
        if not org.member or folder is None or not (folder / ADMIN_KEY_FILE).exists():
            continue
        admin, account = load_keys(folder / ADMIN_KEY_FILE), load_keys(folder / ORG_KEY_FILE)
        if admin.address in org.admins and account.address == org.account:
            members.append(Member(org, admin, account))
    kinds = {m.org.kind for m in members}
    if not {OrgKind.HOSPITAL, OrgKind.RESEARCH} <= kinds:
        raise MedchainError(
            "the demo acts as a member hospital and a member research institute: give "
            "--orgs DIR holding their key files (<org_id>/admin.key and org.key, as a "
            "devnet's home has under orgs/)"
        )
    return Consortium(tuple(members))

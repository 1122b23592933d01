"""A tiny world for contract tests: real keys, real signed transactions, a Ledger."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from medchain.app import (
    LABEL_BLOCK_BYTES,
    ApproveArgs,
    BlockContext,
    CredentialRole,
    IssueArgs,
    KeyWrap,
    Ledger,
    OrganisationSpec,
    OrgKind,
    ProposalAction,
    ProposeArgs,
    RegisterArgs,
    Role,
    SealedLabel,
    get_organisation,
    proposals,
)
from medchain.crypto import CONTENT_OVERHEAD, WRAPPED_KEY_SIZE, AccountKeys, sha256
from medchain.offchain import cid_for
from medchain.types import (
    Allocation,
    ChainParams,
    Genesis,
    GenesisOrganisation,
    GenesisValidator,
    Receipt,
    Tx,
    encode,
)

CHAIN_ID = "medchain-test"


@dataclass(frozen=True)
class OrgKeys:
    """A founding organisation of a test world: its id, an admin and its account."""

    org_id: str
    kind: str
    admin: AccountKeys
    account: AccountKeys

    def genesis_entry(self) -> GenesisOrganisation:
        return GenesisOrganisation(
            self.org_id,
            self.org_id.replace("-", " ").title(),
            self.kind,
            (self.admin.public_key,),
            self.account.public_key,
            self.account.encryption_public_key,
        )


def make_org(org_id: str, kind: str = "hospital") -> OrgKeys:
    return OrgKeys(org_id, kind, AccountKeys.generate(), AccountKeys.generate())


@dataclass
class World:
    ledger: Ledger
    height: int = 0
    nonces: dict[bytes, int] = field(default_factory=dict)
    proposer: bytes = b"\x07" * 20
    """Address of the proposer of the next blocks (fees and block rewards go to it)."""
    orgs: tuple[OrgKeys, ...] = ()
    """The founding organisations; the first is the one `staff` credentials with."""

    def context(self) -> BlockContext:
        return BlockContext(
            CHAIN_ID,
            self.height + 1,
            1_000 + self.height,
            self.proposer,
            self.ledger.genesis.params,
        )

    def tx(
        self, keys: AccountKeys, method: str, args: Any, nonce: int | None = None, fee: int = 0
    ) -> Tx:
        n = self.nonces.get(keys.address, 0) if nonce is None else nonce
        unsigned = Tx(CHAIN_ID, n, keys.public_key, fee, method, encode(args))
        return Tx(
            CHAIN_ID,
            n,
            keys.public_key,
            fee,
            method,
            encode(args),
            keys.sign(unsigned.signing_bytes()),
        )

    def run(self, *txs: Tx) -> list[Receipt]:
        outcome = self.ledger.execute_block(self.context(), txs)
        self.height += 1
        for tx, receipt in zip(txs, outcome.receipts, strict=True):
            del receipt
            self.nonces[_addr(tx)] = tx.nonce + 1
        return list(outcome.receipts)

    def empty_blocks(self, count: int) -> None:
        for _ in range(count):
            self.run()

    def call(self, keys: AccountKeys, method: str, args: Any) -> Receipt:
        (receipt,) = self.run(self.tx(keys, method, args))
        return receipt

    def ok(self, keys: AccountKeys, method: str, args: Any) -> Receipt:
        receipt = self.call(keys, method, args)
        assert receipt.ok, f"{method} failed: {receipt.code}: {receipt.message}"
        return receipt

    def register(self, keys: AccountKeys, role: Role, name: str = "") -> None:
        """Register `keys` as the chain now allows: a patient registers itself; a doctor
        is a patient the first founding organisation credentials; a validator registers
        with a validator credential; an institution is the account of a research
        organisation admitted by proposal."""
        if role is Role.INSTITUTION:
            slug = "research-" + keys.address.hex()[:8]
            self.admit(OrgKeys(slug, "research", AccountKeys.generate(), keys), name)
            return
        if role is Role.VALIDATOR:
            self.credential(keys, CredentialRole.VALIDATOR, name or "validator")
        own_role = Role.VALIDATOR if role is Role.VALIDATOR else Role.PATIENT
        self.ok(
            keys,
            "registry.register",
            RegisterArgs(
                own_role,
                (name or "validator") if own_role is Role.VALIDATOR else "",
                b"" if own_role is Role.VALIDATOR else keys.encryption_public_key,
            ),
        )
        if role is Role.DOCTOR:
            self.credential(keys, CredentialRole.DOCTOR, name or "Dr.")

    def admit(self, org: OrgKeys, name: str = "") -> None:
        """`org` joins by a proposal of the first founding organisation that the others
        approve until it passes."""
        spec = OrganisationSpec(
            org.org_id,
            name or org.org_id,
            OrgKind(org.kind),
            (org.admin.public_key,),
            org.account.public_key,
            org.account.encryption_public_key,
        )
        self.ok(self.orgs[0].admin, "orgs.propose", ProposeArgs(ProposalAction.JOIN, spec, ""))
        pid = proposals(self.ledger.state)[-1].proposal_id
        for other in self.orgs[1:]:
            if get_organisation(self.ledger.state, org.org_id) is not None:
                break
            self.ok(other.admin, "orgs.approve", ApproveArgs(pid))
        assert get_organisation(self.ledger.state, org.org_id) is not None
        self.orgs = (*self.orgs, org)

    def now_ms(self) -> int:
        """The block time of the next block."""
        return self.context().time_ms

    def credential(
        self,
        subject: AccountKeys,
        role: CredentialRole,
        name: str = "",
        *,
        org: OrgKeys | None = None,
        expires_ms: int = 0,
    ) -> Receipt:
        """Credential `subject` by an admin of `org` (the first founding one)."""
        issuer = org or self.orgs[0]
        args = IssueArgs(
            subject.address, role, name or f"{role.value} {subject.address.hex()[:6]}", expires_ms
        )
        return self.ok(issuer.admin, "credentials.issue", args)

    def staff(
        self, role: CredentialRole, name: str = "", *, org: OrgKeys | None = None
    ) -> AccountKeys:
        """A new account, registered (as a patient: the only self-registered role) and
        credentialed for `role` by `org`."""
        keys = AccountKeys.generate()
        self.register(keys, Role.PATIENT)
        self.credential(keys, role, name, org=org)
        return keys

    def refused(self, keys: AccountKeys, method: str, args: Any, code: str) -> str:
        """Run a call that must be refused with `code` and change nothing but the fee
        and nonce; returns the refusal's message."""
        before = self.entries_but_accounts()
        receipt = self.call(keys, method, args)
        assert (receipt.ok, receipt.code) == (False, code), receipt.message
        assert self.entries_but_accounts() == before
        return receipt.message

    def entries_but_accounts(self) -> dict[bytes, bytes]:
        """The state without balances and nonces: what a refused call must not change."""
        return {k: v for k, v in self.ledger.state.entries() if not k.startswith(b"acct/")}


def make_world(
    orgs: tuple[OrgKeys, ...],
    validator: AccountKeys,
    rich: AccountKeys,
    params: ChainParams | None = None,
) -> World:
    genesis = Genesis(
        CHAIN_ID,
        0,
        params or ChainParams(unbonding_blocks=3),
        (Allocation(rich.address, 1_000_000),),
        (GenesisValidator(validator.public_key, "validator-0", 1, orgs[0].org_id),),
        organisations=tuple(org.genesis_entry() for org in orgs),
    )
    return World(Ledger(genesis), orgs=orgs)


def _addr(tx: Tx) -> bytes:
    from medchain.crypto import address_from_public_key

    return address_from_public_key(tx.sender)


def fake_blob(tag: bytes) -> tuple[str, bytes]:
    """A CID and hash of some ciphertext (contract tests need no real encryption)."""
    return cid_for(tag), sha256(tag)


def fake_wraps(*readers: bytes) -> tuple[KeyWrap, ...]:
    return tuple(KeyWrap(r, b"\x01" * WRAPPED_KEY_SIZE) for r in sorted(set(readers)))


def fake_label(*readers: bytes, blocks: int = 1) -> bytes:
    """A device label shaped as a sealed one for `readers` (contract tests need no real
    encryption: the contract checks the shape and the readers)."""
    ciphertext = b"\x02" * (CONTENT_OVERHEAD + blocks * LABEL_BLOCK_BYTES)
    return encode(SealedLabel(ciphertext, fake_wraps(*readers)))


@pytest.fixture
def validator() -> AccountKeys:
    return AccountKeys.generate()


@pytest.fixture
def rich() -> AccountKeys:
    return AccountKeys.generate()


@pytest.fixture
def founder() -> OrgKeys:
    """The test world's founding organisation (a hospital)."""
    return make_org("st-mary")


@pytest.fixture
def world(validator: AccountKeys, rich: AccountKeys, founder: OrgKeys) -> World:
    return make_world((founder,), validator, rich)


@pytest.fixture
def patient(world: World) -> AccountKeys:
    keys = AccountKeys.generate()
    world.register(keys, Role.PATIENT)
    return keys


@pytest.fixture
def doctor(world: World) -> AccountKeys:
    keys = AccountKeys.generate()
    world.register(keys, Role.DOCTOR, "Dr. Grey")
    return keys


@pytest.fixture
def doctor2(world: World) -> AccountKeys:
    keys = AccountKeys.generate()
    world.register(keys, Role.DOCTOR, "Dr. Shepherd")
    return keys


@pytest.fixture
def institution(world: World) -> AccountKeys:
    keys = AccountKeys.generate()
    world.register(keys, Role.INSTITUTION, "Institute of Cardiology Research")
    return keys

"""A NodeService over an in-memory LocalChain, the API reached without sockets (a
sync httpx transport over the ASGI app) or served by uvicorn in a thread, and
signed-transaction helpers. Shared by the API, HTTP client and CLI tests."""

from __future__ import annotations

import asyncio
import dataclasses
import math
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from medchain.api import ApiServer, create_api
from medchain.app import (
    CredentialRole,
    OrgKind,
    PurposeOfUse,
    RegisterGatewayArgs,
    Role,
)
from medchain.client import ChainBackend, MedchainClient, ReadAuth
from medchain.crypto import AccountKeys
from medchain.node import (
    AnchoringStatus,
    Bodies,
    BodyLedger,
    LocalChain,
    MemoryDisclosureLog,
    NodeStatus,
    PeerStatus,
    PendingFull,
    RateLimited,
    preflight,
    wall_clock_ms,
)
from medchain.offchain import BlobStore
from medchain.types import (
    UPLOAD_EXPIRES_HEADER,
    UPLOAD_SIGNATURE_HEADER,
    UPLOADER_HEADER,
    Allocation,
    ChainParams,
    Genesis,
    GenesisOrganisation,
    GenesisValidator,
    MedchainError,
    Receipt,
    Tx,
    bulk_upload_signing_bytes,
    encode,
    tx_id,
)

T = TypeVar("T")
FUNDS = 10**9


@dataclass(frozen=True)
class Org:
    """A founding organisation of a test chain: one admin and its own account."""

    org_id: str
    kind: OrgKind
    admin: AccountKeys
    account: AccountKeys

    @classmethod
    def generate(cls, org_id: str, kind: OrgKind = OrgKind.HOSPITAL) -> Org:
        return cls(org_id, kind, AccountKeys.generate(), AccountKeys.generate())

    def genesis(self) -> GenesisOrganisation:
        return GenesisOrganisation(
            self.org_id,
            f"{self.org_id} (test)",
            self.kind.value,
            (self.admin.public_key,),
            self.account.public_key,
            self.account.encryption_public_key,
        )


HOSPITAL = Org.generate("test-hospital")
"""The founding hospital of every test chain by default: its admin credentials
clinicians and registers gateways."""
RESEARCH = Org.generate("test-research", OrgKind.RESEARCH)
"""The founding research institute of every test chain by default: its account
receives research copies and opens anonymous scopes."""
FOUNDERS = (HOSPITAL, RESEARCH)


def read_as(
    who: MedchainClient | AccountKeys,
    purpose: PurposeOfUse = PurposeOfUse.TREATMENT,
    chain_id: str = "medchain-test",
) -> ReadAuth:
    """httpx auth signing each request as a read by `who` (for `auth=`)."""
    keys = who.keys if isinstance(who, MedchainClient) else who
    return ReadAuth(keys, chain_id, purpose)


def make_chain(validator: AccountKeys | None = None, **params: Any) -> LocalChain:
    """A fresh in-memory chain whose validator holds FUNDS, founded by FOUNDERS or by
    `orgs=(Org, ...)` (the validator is the first one's), whose block time is
    `clock=` (the wall clock by default); the other keywords are its ChainParams."""
    orgs: Sequence[Org] = params.pop("orgs", FOUNDERS)
    clock: Callable[[], int] = params.pop("clock", wall_clock_ms)
    validator = validator or AccountKeys.generate()
    genesis = Genesis(
        "medchain-test",
        1_700_000_000_000,
        ChainParams(**params),
        allocations=(Allocation(validator.address, FUNDS),),
        validators=(
            GenesisValidator(
                validator.public_key, "v0", organisation=orgs[0].org_id if orgs else ""
            ),
        ),
        organisations=tuple(org.genesis() for org in orgs),
    )
    return LocalChain.in_memory(genesis, validator, clock)


def credential(
    chain: ChainBackend,
    org: Org,
    subject: bytes,
    role: CredentialRole = CredentialRole.DOCTOR,
    name: str = "Dr. Test",
) -> Receipt:
    """`org`'s admin credentials `subject` for `role`, with no expiry."""
    return MedchainClient(org.admin, chain).issue_credential(subject, role, name)


def clinician(
    chain: ChainBackend,
    name: str = "Dr. Test",
    role: CredentialRole = CredentialRole.DOCTOR,
    org: Org = HOSPITAL,
    keys: AccountKeys | None = None,
) -> MedchainClient:
    """A new account that registers (as every self-registered account does, a patient:
    its encryption key lets it read what it is given) and that `org` credentials."""
    return enlist(
        MedchainClient(keys or AccountKeys.generate(), chain), Role.DOCTOR, name, role, org
    )


def enlist(
    person: MedchainClient,
    role: Role,
    name: str,
    credential_role: CredentialRole = CredentialRole.DOCTOR,
    org: Org = HOSPITAL,
) -> MedchainClient:
    """`person` on chain as a patient (`role` PATIENT) or as a doctor: registered, as
    every self-registered account is, as a patient, and credentialed by `org`."""
    if role not in (Role.PATIENT, Role.DOCTOR):
        raise ValueError(f"a test account is a patient or a doctor, not a {role.value}")
    person.register(Role.PATIENT, name)
    if role is Role.DOCTOR:
        credential(person.chain, org, person.address, credential_role, name)
    return person


def admin(chain: ChainBackend, org: Org = HOSPITAL) -> MedchainClient:
    """`org`'s admin (by default the founding hospital's): registers gateways, credentials
    clinicians, registers devices for patients."""
    return MedchainClient(org.admin, chain)


def institution(chain: ChainBackend, org: Org = RESEARCH) -> MedchainClient:
    """The account of `org` (a founding one, so an institution on chain)."""
    return MedchainClient(org.account, chain)


def submit_as(chain: LocalChain, keys: AccountKeys, method: str, args: object) -> Receipt:
    """`keys` calls `method` with `args` on `chain`, at its next nonce."""
    nonce = chain.account(keys.address).nonce
    return chain.submit(signed(keys, nonce, method, args, chain.chain_id))


def signed(keys: AccountKeys, nonce: int, method: str, args: object, chain_id: str = "") -> Tx:
    tx = Tx(chain_id or "medchain-test", nonce, keys.public_key, 0, method, encode(args))
    return dataclasses.replace(tx, signature=keys.sign(tx.signing_bytes()))


def registered_gateway(chain: LocalChain) -> AccountKeys:
    """A new edge gateway, registered on `chain` by the founding hospital's admin."""
    gateway = AccountKeys.generate()
    nonce = chain.account(HOSPITAL.admin.address).nonce
    args = RegisterGatewayArgs(gateway.address, "ward 3")
    chain.submit(signed(HOSPITAL.admin, nonce, "devices.register_gateway", args, chain.chain_id))
    return gateway


def upload_headers(
    keys: AccountKeys, chain_id: str, body: bytes, expires_ms: int | None = None
) -> dict[str, str]:
    """The headers of a bulk upload of `body` signed by `keys` (valid for a minute)."""
    expires = expires_ms if expires_ms is not None else time.time_ns() // 1_000_000 + 60_000
    signature = keys.sign(bulk_upload_signing_bytes(chain_id, expires, body))
    return {
        "content-type": "application/octet-stream",
        UPLOADER_HEADER: keys.public_key.hex(),
        UPLOAD_EXPIRES_HEADER: str(expires),
        UPLOAD_SIGNATURE_HEADER: signature.hex(),
    }


class FakeNode:
    """What the networked node does, minus the network: `submit` checks a transaction,
    dry-runs an access-controlled call as admission does (`preflight`), and (with
    `auto_commit`) seals it at once in its own block, any other refused call
    included, as consensus would. Its body ledger follows every block of the chain
    (`bodies`: quota `quota_bytes`, grace `grace_s`, clock `clock_ms`)."""

    def __init__(
        self,
        chain: LocalChain,
        *,
        auto_commit: bool = True,
        peers: tuple[PeerStatus, ...] = (),
        max_pending: int = 100,
        quota_bytes: int = 64 * 2**20,
        grace_s: int = 3_600,
        clock_ms: Callable[[], int] | None = None,
    ) -> None:
        self.local = chain
        self.auto_commit = auto_commit
        self.peers = peers
        self.max_pending = max_pending
        self.pending: dict[bytes, Tx] = {}
        self.registry = CollectorRegistry()
        options: dict[str, Any] = {} if clock_ms is None else {"clock_ms": clock_ms}
        self.bodies = Bodies(
            chain.blobs,
            BodyLedger(":memory:"),
            self.registry,
            quota_bytes=quota_bytes,
            grace_s=grace_s,
            **options,
        )
        self.bodies.catch_up(chain.store)
        chain.before_store = self.bodies.note_block
        self.clients: list[str | None] = []
        """The client address of each submission, in order."""
        self.waits: dict[str, float] = {}
        """Clients to refuse as over budget: address -> seconds to wait."""
        self.disclosures = MemoryDisclosureLog()
        """Every authenticated read the API served, in order."""

    @property
    def genesis(self) -> Genesis:
        return self.local.genesis

    @property
    def chain(self) -> LocalChain:
        return self.local

    @property
    def blobs(self) -> BlobStore:
        return self.local.blobs

    @property
    def metrics_registry(self) -> CollectorRegistry:
        return self.registry

    async def submit(self, tx: Tx, client: str | None = None) -> bool:
        """`client` is recorded in `clients`; `waits` (client -> seconds) refuses one."""
        self.clients.append(client)
        wait = self.admission_wait_s(client) if client is not None else 0.0
        if wait > 0:
            raise RateLimited(f"client {client} must wait", math.ceil(wait))
        identity = tx_id(tx)
        if identity in self.pending:
            return False
        if len(self.pending) >= self.max_pending:
            raise PendingFull(f"{len(self.pending)} transactions are pending; retry shortly")
        self.local.ledger.check_tx(tx)
        preflight(self.local.ledger, self.local.latest_block().header, tx, wall_clock_ms())
        self.pending[identity] = tx
        if self.auto_commit:
            self.commit()
        return True

    async def submit_batch(
        self, txs: Sequence[Tx], client: str | None = None
    ) -> list[bool | MedchainError]:
        results: list[bool | MedchainError] = []
        for tx in txs:
            try:
                results.append(await self.submit(tx, client))
            except RateLimited:
                raise
            except MedchainError as exc:
                results.append(exc)
        return results

    def admission_wait_s(self, client: str) -> float:
        return self.waits.get(client, 0.0)

    def commit(self) -> None:
        """Seal every pending transaction in one block."""
        if self.pending:
            self.local.seal(list(self.pending.values()))
            self.pending.clear()

    async def wait_committed(self, tx_hash: bytes, timeout_s: float) -> Receipt | None:
        """The node's wait for a commit (None at the deadline), as a poll of the fake's chain."""
        deadline = asyncio.get_running_loop().time() + timeout_s
        while (receipt := self.local.receipt(tx_hash)) is None:
            if asyncio.get_running_loop().time() >= deadline:
                return None
            await asyncio.sleep(0.005)
        return receipt

    def is_pending(self, tx_hash: bytes) -> bool:
        return tx_hash in self.pending

    def pending_txs(self, limit: int) -> tuple[Tx, ...]:
        return tuple(self.pending.values())[:limit]

    def anchoring_status(self) -> AnchoringStatus | None:
        return None

    def status(self) -> NodeStatus:
        block = self.local.latest_block()
        return NodeStatus(
            name="fake-0",
            node_key=self.local.validator.public_key,
            validator=True,
            consensus=self.genesis.params.consensus,
            chain_id=self.genesis.chain_id,
            height=block.height,
            latest_hash=block.certificate.block_hash,
            latest_time_ms=block.header.time_ms,
            state_root=block.header.state_root,
            round=0,
            primary=self.local.validator.public_key,
            round_changes=0,
            syncing=False,
            peers=self.peers,
            mempool_txs=len(self.pending),
            mempool_bytes=sum(len(tx.encoded) for tx in self.pending.values()),
            started_ms=1_700_000_000_000,
        )


class SyncASGITransport(httpx.BaseTransport):
    """A sync httpx transport that runs each request through the ASGI app on a fresh
    loop in the calling thread (where the in-memory chain's SQLite lives)."""

    def __init__(self, app: FastAPI) -> None:
        self._transport = httpx.ASGITransport(app)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        async def run() -> httpx.Response:
            response = await self._transport.handle_async_request(request)
            body = await response.aread()
            return httpx.Response(
                response.status_code, headers=response.headers, content=body, request=request
            )

        return asyncio.run(run())


def api_client(node: FakeNode, **options: Any) -> httpx.Client:
    transport = SyncASGITransport(create_api(node, **options))
    return httpx.Client(transport=transport, base_url="http://node")


@dataclass
class Served:
    """The API of a FakeNode on a real socket; the node lives in the server's thread."""

    url: str
    node: FakeNode
    loop: asyncio.AbstractEventLoop

    def call(self, fn: Callable[[FakeNode], T]) -> T:
        """Run `fn(node)` on the server's loop thread (its SQLite store lives there)."""

        async def run() -> T:
            return fn(self.node)

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(10)


@contextmanager
def served(make_node: Callable[[], FakeNode]) -> Iterator[Served]:
    """uvicorn serving the API of `make_node()` on 127.0.0.1, a free port, in a thread."""
    ready = threading.Event()
    found: dict[str, Any] = {}

    async def main() -> None:
        try:
            node = make_node()
            server = ApiServer(node, port=0)
            await server.start()
        except BaseException as exc:
            found["error"] = exc
            ready.set()
            raise
        stop = asyncio.Event()
        found.update(node=node, url=server.url, loop=asyncio.get_running_loop(), stop=stop)
        ready.set()
        await stop.wait()
        await server.stop()

    thread = threading.Thread(target=asyncio.run, args=(main(),), daemon=True)
    thread.start()
    if not ready.wait(20) or "error" in found:
        raise RuntimeError(f"the test API server did not start: {found.get('error')!r}")
    try:
        yield Served(found["url"], found["node"], found["loop"])
    finally:
        found["loop"].call_soon_threadsafe(found["stop"].set)
        thread.join(20)


def ok(response: httpx.Response, status: int = 200) -> Any:
    """The JSON body of a response that must have `status`."""
    assert response.status_code == status, response.text
    return response.json()


def refused(response: httpx.Response, status: int, code: str) -> str:
    """The message of an error response: `status`, a body holding only `error`, with
    `code` and a message that is not empty."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and body["error"]["code"] == code, body
    message: str = body["error"]["message"]
    assert message
    return message

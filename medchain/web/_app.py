"""The web app assembled: the explorer (no key) or a key holder's app, behind the
guard, with the package's own static files."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractContextManager, asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from medchain.app import Credential, CredentialStatus, Role
from medchain.client import ChainBackend, MedchainClient
from medchain.crypto import AccountKeys, format_address
from medchain.gateway import CheckedBundles
from medchain.types import MedchainError
from medchain.web._access_routes import access_routes
from medchain.web._clinician_routes import clinician_routes
from medchain.web._device_routes import device_routes
from medchain.web._explorer import ExplorerChain
from medchain.web._explorer_routes import explorer_routes
from medchain.web._fhir_mount import FhirMount
from medchain.web._guard import FHIR_PATH, Guard, Secrets
from medchain.web._pages import STATIC_DIR, Site
from medchain.web._patient_routes import patient_routes
from medchain.web._person_routes import person_routes
from medchain.web._record_routes import record_routes
from medchain.web._research_routes import research_routes
from medchain.web._research_share_routes import research_share_routes
from medchain.web._vitals_routes import vitals_routes
from medchain.web._vitals_warmup import VitalsWarmup
from medchain.web._worker import ChainWorker


class NotRegistered(MedchainError):
    """The key file's account is not registered on this chain."""


def _starlette(
    site: Site,
    routes: list[BaseRoute],
    fhir: FhirMount | None = None,
    warmup: VitalsWarmup | None = None,
) -> Starlette:
    static = Mount("/static", app=StaticFiles(directory=STATIC_DIR), name="static")
    mounts = [static] if fhir is None else [static, Mount(FHIR_PATH, app=fhir)]
    return Starlette(
        routes=[*routes, *mounts],
        middleware=[Middleware(BaseHTTPMiddleware, dispatch=site.guard)],
        lifespan=lambda _: _closes(site.worker, fhir, warmup),
    )


@asynccontextmanager
async def _closes(
    worker: ChainWorker[Any], fhir: FhirMount | None, warmup: VitalsWarmup | None
) -> AsyncIterator[None]:
    """The chain (and the FHIR facade on it) stay open while the app serves, and are
    closed when it stops; the vitals warm-up runs meanwhile and stops first."""
    if warmup is not None:
        warmup.start()
    try:
        yield
    finally:
        if warmup is not None:
            warmup.close()
        if fhir is not None:
            fhir.close()
        worker.close()


def explorer_app(
    open_node: Callable[[], AbstractContextManager[ExplorerChain]], port: int, keys: Secrets
) -> Starlette:
    """The operator's read-only explorer of the node `open_node` opens: it holds no key."""
    site = Site(Guard(keys, port), ChainWorker(open_node), "explorer")
    return _starlette(site, list(explorer_routes(site)))


def person_app(
    account: AccountKeys,
    open_chain: Callable[[], AbstractContextManager[ChainBackend]],
    port: int,
    keys: Secrets,
) -> Starlette:
    """The app of the account in `account`, on the chain `open_chain` opens."""
    worker: ChainWorker[Any] = ChainWorker(open_chain)
    client = worker.call(lambda: MedchainClient(account, worker.backend))
    identity = worker.call(lambda: worker.backend.identity(account.address))
    if identity is None:
        worker.close()
        raise NotRegistered(
            f"{format_address(account.address)} is not registered on this chain; register it "
            "with `medchain register` first"
        )
    credentials = worker.call(lambda: worker.backend.credentials_of(account.address))
    clinician = any(c.status is CredentialStatus.ACTIVE for c in credentials)
    name = worker.call(lambda: _own_name(client, credentials, identity.name))
    me = {"name": name, "address": format_address(identity.address)}
    site = Site(Guard(keys, port), worker, "clinician" if clinician else identity.role.value, me)
    checked = CheckedBundles()  # a chart viewed again is not checked again
    fhir = FhirMount(worker, client, keys.fhir, checked)
    routes: list[BaseRoute] = [*_role_routes(site, client), *person_routes(site, client)]
    routes += [*patient_routes(site, client, checked), *device_routes(site, client)]
    routes += [*vitals_routes(site, client), *access_routes(site, client)]
    routes += research_share_routes(site, client)
    routes += record_routes(site, client)
    patient = identity.role is Role.PATIENT  # only a patient's own vitals are warmed
    warmup = VitalsWarmup(worker, client, checked) if patient else None
    app = _starlette(site, routes, fhir, warmup)
    app.state.vitals_warmup = warmup  # how far it got: for a benchmark's figures
    return app


def _role_routes(site: Site, client: MedchainClient) -> list[Route]:
    """The routes a clinician's or a research organisation's app adds (before the
    person routes: a role's home page replaces theirs)."""
    if site.mode == "clinician":
        return clinician_routes(site, client)
    if site.mode == Role.INSTITUTION.value:
        return research_routes(site, client)
    return []


def _own_name(client: MedchainClient, credentials: list[Credential], public: str) -> str:
    """The key holder's name: public, vouched for by a credential, or in their sealed
    profile (a patient's, which only they can open)."""
    for credential in credentials:
        if credential.status is CredentialStatus.ACTIVE and credential.name:
            return credential.name
    if public:
        return public
    try:
        return str(client.my_profile().get("name") or "")
    except MedchainError:
        return ""

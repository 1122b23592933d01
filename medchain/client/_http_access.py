"""`HttpChain`'s reads of who may act: organisations, proposals, credentials and
attestations, from the node's routes (GET /v1/orgs, /v1/proposals,
/v1/accounts/{address}/credentials, /v1/patients/{address}/attestations)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote

from medchain import app
from medchain.crypto import format_address

T = TypeVar("T")


class AccessReads:
    """A mixin of HttpChain: the ChainBackend queries on organisations and credentials."""

    if TYPE_CHECKING:
        url: str

        def _get(self, path: str, missing: tuple[str, ...] = ()) -> Any: ...

        def _decoded(self, cls: type[T], body: Any) -> T: ...

        def _list(self, cls: type[T], body: Mapping[str, Any], key: str) -> list[T]: ...

        def _addresses(self, body: Mapping[str, Any], key: str) -> tuple[bytes, ...]: ...

    # -- organisations and proposals ------------------------------------------------

    def organisations(self) -> list[app.Organisation]:
        return self._list(app.Organisation, self._get("/v1/orgs"), "organisations")

    def member_organisations(self) -> list[app.Organisation]:
        """Today's members, by id (what break-glass splits an emergency key among)."""
        return [org for org in self.organisations() if org.member]

    def organisation(self, org_id: str) -> app.Organisation | None:
        path = f"/v1/orgs/{quote(org_id, safe='')}"
        body = self._get(path, missing=("unknown_organisation", "invalid_org_id"))
        return None if body is None else self._decoded(app.Organisation, body)

    def proposals(self) -> list[app.Proposal]:
        return self._list(app.Proposal, self._get("/v1/proposals"), "proposals")

    def proposal(self, proposal_id: int) -> app.Proposal | None:
        if proposal_id < 0:
            return None
        body = self._get(f"/v1/proposals/{proposal_id}", missing=("unknown_proposal",))
        return None if body is None else self._decoded(app.Proposal, body)

    def staff_of(self, org_id: str) -> list[app.Credential]:
        path = f"/v1/orgs/{quote(org_id, safe='')}/staff"
        body = self._get(path, missing=("unknown_organisation", "invalid_org_id"))
        return [] if body is None else self._list(app.Credential, body, "staff")

    # -- credentials ----------------------------------------------------------------

    def _credentials(self, subject: bytes) -> list[Any]:
        body = self._get(f"/v1/accounts/{format_address(subject)}/credentials")
        items = body.get("credentials")
        return items if isinstance(items, list) else []

    def credentials_of(self, subject: bytes) -> list[app.Credential]:
        return [self._decoded(app.Credential, item) for item in self._credentials(subject)]

    def credential_history(self, subject: bytes, org_id: str) -> list[app.CredentialEvent]:
        for item in self._credentials(subject):
            if isinstance(item, dict) and item.get("org_id") == org_id:
                return self._list(app.CredentialEvent, item, "history")
        return []

    # -- patients: attestations ------------------------------------------

    def _patient(self, patient: bytes, route: str) -> Any:
        """The patient's route; None for an address that is not a registered patient."""
        path = f"/v1/patients/{format_address(patient)}/{route}"
        return self._get(path, missing=("not_registered",))

    def attestations_of(self, patient: bytes) -> list[app.Attestation]:
        body = self._patient(patient, "attestations")
        return [] if body is None else self._list(app.Attestation, body, "attestations")

    def is_verified_patient(self, patient: bytes) -> bool:
        body = self._patient(patient, "attestations")
        return body is not None and body.get("verified") is True

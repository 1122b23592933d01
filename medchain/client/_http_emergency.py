"""`HttpChain`'s reads of break-glass, from the node's routes (GET
/v1/emergency-requests/{id}[/answers], /v1/orgs/{org_id}/emergency-requests[/pending],
/v1/patients/{address}/emergency-requests and /notifications): what the clinician, the
organisations' accounts and the patient's feed read."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote

from medchain import app
from medchain.crypto import format_address

T = TypeVar("T")


class EmergencyReads:
    """A mixin of HttpChain: the queries of `EmergencyChain`."""

    if TYPE_CHECKING:

        def _get(self, path: str, missing: tuple[str, ...] = ()) -> Any: ...

        def _decoded(self, cls: type[T], body: Any) -> T: ...

        def _list(self, cls: type[T], body: Mapping[str, Any], key: str) -> list[T]: ...

        def organisations(self) -> list[app.Organisation]: ...

    def member_organisations(self) -> list[app.Organisation]:
        return [org for org in self.organisations() if org.member]

    def emergency_request(self, request_id: bytes) -> app.EmergencyRequest | None:
        body = self._get(
            f"/v1/emergency-requests/{request_id.hex()}",
            missing=("unknown_emergency_request", "invalid_request_id"),
        )
        return None if body is None else self._decoded(app.EmergencyRequest, body)

    def emergency_answers(self, request_id: bytes) -> list[app.EmergencyAnswer]:
        body = self._get(
            f"/v1/emergency-requests/{request_id.hex()}/answers",
            missing=("unknown_emergency_request", "invalid_request_id"),
        )
        return [] if body is None else self._list(app.EmergencyAnswer, body, "answers")

    def _org_requests(self, org_id: str, tail: str) -> list[app.EmergencyRequest]:
        path = f"/v1/orgs/{quote(org_id, safe='')}/emergency-requests{tail}"
        body = self._get(path, missing=("unknown_organisation", "invalid_org_id"))
        return [] if body is None else self._list(app.EmergencyRequest, body, "requests")

    def pending_emergency_requests(self, org_id: str) -> list[app.EmergencyRequest]:
        return self._org_requests(org_id, "/pending")

    def emergency_requests_by_org(self, org_id: str) -> list[app.EmergencyRequest]:
        return self._org_requests(org_id, "")

    def _patient_list(self, patient: bytes, route: str, key: str, cls: type[T]) -> list[T]:
        path = f"/v1/patients/{format_address(patient)}/{route}"
        body = self._get(path, missing=("not_registered",))
        return [] if body is None else self._list(cls, body, key)

    def emergency_requests_of(self, patient: bytes) -> list[app.EmergencyRequest]:
        return self._patient_list(patient, "emergency-requests", "requests", app.EmergencyRequest)

    def notifications_of(self, patient: bytes) -> list[app.Notification]:
        return self._patient_list(patient, "notifications", "notifications", app.Notification)

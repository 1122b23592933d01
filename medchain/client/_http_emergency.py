"""`HttpChain`'s reads of break-glass: a patient's policy, emergency requests, their
answers and a patient's notifications, from the node's routes under /v1/emergency and
/v1/patients/{address}/... (tag `emergency`). A node without them answers
`endpoint_missing`, which says to upgrade it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote

from medchain import app
from medchain.crypto import format_address

T = TypeVar("T")


class EmergencyReads:
    """A mixin of HttpChain: the queries of `medchain.client.EmergencyChain`."""

    if TYPE_CHECKING:

        def _get(
            self,
            path: str,
            missing: tuple[str, ...] = (),
            read_of: tuple[bytes | None, app.PurposeOfUse | None] | None = None,
        ) -> Any: ...

        def _decoded(self, cls: type[T], body: Any) -> T: ...

        def _list(self, cls: type[T], body: Mapping[str, Any], key: str) -> list[T]: ...

    def emergency_policy(self, patient: bytes) -> app.EmergencyPolicy | None:
        path = f"/v1/patients/{format_address(patient)}/emergency-policy"
        body = self._get(path, missing=("not_registered", "no_emergency_policy"))
        return None if body is None else self._decoded(app.EmergencyPolicy, body)

    def emergency_request(self, request_id: bytes) -> app.EmergencyRequest | None:
        if len(request_id) != app.REQUEST_ID_SIZE:
            return None
        path = f"/v1/emergency/requests/{request_id.hex()}"
        body = self._get(path, missing=("unknown_emergency_request",))
        return None if body is None else self._decoded(app.EmergencyRequest, body)

    def emergency_answers(self, request_id: bytes) -> list[app.EmergencyAnswer]:
        """The request's answers by share index; empty for an unknown request."""
        if len(request_id) != app.REQUEST_ID_SIZE:
            return []
        path = f"/v1/emergency/requests/{request_id.hex()}/answers"
        emergency = (None, app.PurposeOfUse.EMERGENCY_TREATMENT)
        body = self._get(path, missing=("unknown_emergency_request",), read_of=emergency)
        return [] if body is None else self._list(app.EmergencyAnswer, body, "answers")

    def pending_emergency_requests(self, org_id: str) -> list[app.EmergencyRequest]:
        """What `org_id`'s account has yet to answer, as of the node's latest block."""
        path = f"/v1/emergency/pending?org={quote(org_id, safe='')}"
        return self._org_requests(path)

    def emergency_requests_by_org(self, org_id: str) -> list[app.EmergencyRequest]:
        return self._org_requests(f"/v1/orgs/{quote(org_id, safe='')}/emergency-requests")

    def emergency_requests_of(self, patient: bytes) -> list[app.EmergencyRequest]:
        path = f"/v1/patients/{format_address(patient)}/emergency-requests"
        body = self._get(path, missing=("not_registered",))
        return [] if body is None else self._list(app.EmergencyRequest, body, "requests")

    def notifications_of(self, patient: bytes) -> list[app.Notification]:
        path = f"/v1/patients/{format_address(patient)}/notifications"
        body = self._get(path, missing=("not_registered",))
        return [] if body is None else self._list(app.Notification, body, "notifications")

    def _org_requests(self, path: str) -> list[app.EmergencyRequest]:
        """The requests at an organisation's route; none for an unknown organisation."""
        body = self._get(path, missing=("unknown_organisation",))
        return [] if body is None else self._list(app.EmergencyRequest, body, "requests")

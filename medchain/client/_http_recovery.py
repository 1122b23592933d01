"""`HttpChain`'s reads of key recovery, from the node's routes tagged `recovery`: a
patient's policy and requests, one request, a guardian's open requests."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from medchain import app
from medchain.client._read_signing import ReadHints
from medchain.crypto import format_address

T = TypeVar("T")


class RecoveryReads:
    """A mixin of HttpChain: the queries of `medchain.client.RecoveryChain`."""

    if TYPE_CHECKING:
        _hints: ReadHints

        def _get(self, path: str, missing: tuple[str, ...] = ()) -> Any: ...

        def _decoded(self, cls: type[T], body: Any) -> T: ...

        def _list(self, cls: type[T], body: Mapping[str, Any], key: str) -> list[T]: ...

    def _patient_recovery(self, patient: bytes) -> Any:
        path = f"/v1/patients/{format_address(patient)}/recovery"
        return self._get(path, missing=("not_registered",))

    def recovery_policy(self, patient: bytes) -> app.RecoveryPolicy | None:
        body = self._patient_recovery(patient)
        found = None if body is None else body.get("policy")
        if found is None:
            return None
        policy = self._decoded(app.RecoveryPolicy, found)
        query = {"recovery": format_address(patient)}  # a blob is fetched as what holds it
        for cid in (policy.kit_cid, *(s.cid for s in policy.shares)):
            self._hints.blob(cid, query, patient)
        return policy

    def recovery_requests_of(self, patient: bytes) -> list[app.RecoveryRequest]:
        body = self._patient_recovery(patient)
        return [] if body is None else self._list(app.RecoveryRequest, body, "requests")

    def recovery_request(self, request_id: bytes) -> app.RecoveryRequest | None:
        if len(request_id) != app.RECOVERY_ID_SIZE:
            return None
        body = self._get(f"/v1/recovery/{request_id.hex()}", missing=("unknown_recovery_request",))
        if body is None:
            return None
        request = self._decoded(app.RecoveryRequest, body)
        for approval in request.approvals:
            query = {"recovery_request": request_id.hex()}
            self._hints.blob(approval.cid, query, request.patient)
        return request

    def guardian_recovery_requests(self, guardian: bytes) -> list[app.RecoveryRequest]:
        path = f"/v1/guardians/{format_address(guardian)}/recovery-requests"
        return self._list(app.RecoveryRequest, self._get(path), "requests")

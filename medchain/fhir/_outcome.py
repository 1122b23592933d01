"""OperationOutcome: how the facade says what went wrong, with the HTTP status FHIR's
REST API gives it. A validation failure names each element at fault in `expression`
(FHIRPath), from `InvalidFhirResource`'s "path: reason" problems."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from medchain.client import InvalidFhirResource

NO_EXPRESSION = "(resource)"


@dataclass(frozen=True, slots=True)
class Issue:
    """One OperationOutcome issue (https://hl7.org/fhir/R4/valueset-issue-type.html)."""

    code: str
    diagnostics: str
    severity: str = "error"
    expression: tuple[str, ...] = ()

    def as_fhir(self) -> dict[str, Any]:
        issue: dict[str, Any] = {
            "severity": self.severity,
            "code": self.code,
            "diagnostics": self.diagnostics,
        }
        if self.expression:
            issue["expression"] = list(self.expression)
        return issue


class FhirError(Exception):
    """A request the facade refuses: its HTTP status and the issues it reports."""

    def __init__(self, status: int, issues: tuple[Issue, ...]) -> None:
        super().__init__(status, issues)
        self.status = status
        self.issues = issues

    def __str__(self) -> str:
        return "; ".join(issue.diagnostics for issue in self.issues)

    def outcome(self) -> dict[str, Any]:
        return operation_outcome(self.issues)


def operation_outcome(issues: Sequence[Issue]) -> dict[str, Any]:
    return {"resourceType": "OperationOutcome", "issue": [i.as_fhir() for i in issues]}


def fhir_error(status: int, code: str, diagnostics: str, expression: str = "") -> FhirError:
    """A refusal with one issue (naming the element `expression`, if given)."""
    return FhirError(status, (Issue(code, diagnostics, expression=_expressions(expression)),))


def invalid_resource(exc: InvalidFhirResource) -> FhirError:
    """400: one `invalid` issue per problem, its expression the element's path (the
    message alone when the resource could not be parsed at all)."""
    issues = []
    for problem in exc.problems:
        path, _, reason = problem.partition(": ")
        where = f"{exc.resource_type}.{path}" if exc.resource_type and path else path
        issues.append(Issue("invalid", f"{path}: {reason}", expression=_expressions(where)))
    return FhirError(400, tuple(issues) or (Issue("invalid", exc.message),))


def _expressions(path: str) -> tuple[str, ...]:
    if not path or path.endswith(NO_EXPRESSION) or "(nested resource)" in path:
        return ()
    return (path,)


def not_found(resource_type: str, fhir_id: str) -> FhirError:
    return fhir_error(
        404, "not-found", f"no {resource_type} with id {fhir_id!r} on this server; check the id"
    )


def forbidden(what: str) -> FhirError:
    return fhir_error(
        403,
        "forbidden",
        f"this account may not read {what}; the patient (or their proxy) grants access",
    )


def gone(resource_type: str, fhir_id: str) -> FhirError:
    return fhir_error(
        410, "deleted", f"{resource_type}/{fhir_id} was erased by its patient; it cannot be read"
    )

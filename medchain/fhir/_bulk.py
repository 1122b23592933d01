"""FHIR Bulk Data export (the Bulk Data Access IG's asynchronous pattern): a kick-off
answers at once with a status URL, a worker thread writes one NDJSON file per resource
type, the status URL reports progress and then the manifest that lists the files.

A research organisation exports its de-identified copies (system level, `/$export`), a
patient everything they own (`/Patient/$export`); what each holds comes from an
`ExportSource`. The files are plaintext health data: they live in a private temporary
directory (0700, files 0600), go when the export is cancelled, fails or expires (an hour
after it finished), and are served only to the bearer of the facade's token, which the
app that includes `bulk_router` checks on every route. Every line written is one
resource, validated as FHIR R4; one that fails is left out and reported in the
manifest's error file as an OperationOutcome instead.
"""

from __future__ import annotations

import enum
import json
import logging
import os
import secrets
import shutil
import tempfile
import threading
import time
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Final

from medchain.client import InvalidFhirResource, validate_resource
from medchain.fhir._outcome import Issue, operation_outcome
from medchain.types import MedchainError

log = logging.getLogger("medchain.fhir.bulk")

EXPIRY_MS: Final = 3_600_000
MAX_RUNNING: Final = 3
ERROR_FILE: Final = "errors.ndjson"  # lower case: never a resource type's file name


class ExportKind(enum.StrEnum):
    SYSTEM = "system"
    PATIENT = "patient"


ExportSource = Callable[[ExportKind, frozenset[str] | None, int | None], Iterable[dict[str, Any]]]
"""(kind, the `_type` filter or None for all, `_since` in ms or None) -> the resources."""


class ExportRefused(MedchainError):
    """A kick-off, status or file request the exports cannot serve; `status` is its HTTP
    status and `issue_code` its OperationOutcome issue code."""

    code = "export_refused"

    def __init__(self, status: int, issue_code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.issue_code = issue_code


class JobState(enum.Enum):
    RUNNING = "running"
    COMPLETE = "complete"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class ExportRequest:
    kind: ExportKind
    types: frozenset[str] | None
    since_ms: int | None
    url: str
    """The kick-off request's full URL, echoed in the manifest."""
    ignored: tuple[str, ...] = ()
    """Parameters a lenient kick-off asked for that this server does not support."""


@dataclass(frozen=True, slots=True)
class ExportFile:
    type: str
    name: str
    count: int


@dataclass(frozen=True, slots=True)
class ExportStatus:
    """A snapshot of one job, for its status URL."""

    job_id: str
    state: JobState
    request: ExportRequest
    transaction_ms: int
    written: int
    output: tuple[ExportFile, ...]
    errors: tuple[ExportFile, ...]
    expires_ms: int | None
    failure: ExportRefused | None


@dataclass(eq=False)
class _Job:
    id: str
    request: ExportRequest
    directory: Path
    started_ms: int
    cancelled: threading.Event = field(default_factory=threading.Event)
    state: JobState = JobState.RUNNING
    counts: dict[str, int] = field(default_factory=dict)
    error_count: int = 0
    finished_ms: int | None = None
    failure: ExportRefused | None = None
    thread: threading.Thread | None = None


def _wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


class BulkExports:
    """Export jobs, each run by its own worker thread. At most `max_running` run at
    once (a further kick-off is refused with 429); a finished job's files are kept for
    `expiry_ms`. `close()` (or leaving the `with` block) cancels every job and deletes
    every file; the directory goes at interpreter exit in any case."""

    def __init__(
        self,
        source: ExportSource,
        *,
        kinds: frozenset[ExportKind] = frozenset(ExportKind),
        resource_types: frozenset[str] | None = None,
        max_running: int = MAX_RUNNING,
        expiry_ms: int = EXPIRY_MS,
        clock: Callable[[], int] = _wall_clock_ms,
    ) -> None:
        """`kinds`: the exports this account may run; `resource_types`: the types the
        source can hold (a `_type` naming another is refused), None for any."""
        self.kinds = kinds
        self.resource_types = resource_types
        self._source = source
        self._max_running = max_running
        self._expiry_ms = expiry_ms
        self._clock = clock
        self._lock = threading.Lock()
        self._jobs: dict[str, _Job] = {}
        self.root = Path(tempfile.mkdtemp(prefix="medchain-fhir-export-"))  # mode 0700
        self._remove_root = weakref.finalize(self, shutil.rmtree, self.root, True)

    def __enter__(self) -> BulkExports:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def start(self, request: ExportRequest) -> str:
        """Start an export job; its id. ExportRefused (403) for a kind this account
        has no export of, (429) when `max_running` jobs run already."""
        if request.kind not in self.kinds:
            raise ExportRefused(
                403,
                "forbidden",
                f"this account has no {request.kind} export: a research organisation "
                "exports its de-identified records at /$export, a patient their own "
                "records at /Patient/$export",
            )
        with self._lock:
            self._expire()
            running = sum(job.state is JobState.RUNNING for job in self._jobs.values())
            if running >= self._max_running:
                raise ExportRefused(
                    429,
                    "throttled",
                    f"{running} exports are running, the most this server runs at once; "
                    "retry when one has finished, or cancel one (DELETE its status URL)",
                )
            job_id = secrets.token_urlsafe(16)
            directory = Path(tempfile.mkdtemp(prefix="job-", dir=self.root))
            job = _Job(job_id, request, directory, self._clock())
            job.thread = threading.Thread(
                target=self._run, args=(job,), name=f"fhir-export-{job_id[:8]}", daemon=True
            )
            self._jobs[job_id] = job
        job.thread.start()
        return job_id

    def status(self, job_id: str) -> ExportStatus:
        """The job's state now; ExportRefused (404) for an unknown, cancelled or expired
        job."""
        with self._lock:
            self._expire()
            job = self._job(job_id)
            names = {t: f"{t}.ndjson" for t in job.counts}
            done = job.state is JobState.COMPLETE
            return ExportStatus(
                job_id=job.id,
                state=job.state,
                request=job.request,
                transaction_ms=job.started_ms,
                written=sum(job.counts.values()),
                output=tuple(
                    ExportFile(t, names[t], n) for t, n in sorted(job.counts.items()) if done
                ),
                errors=(
                    (ExportFile("OperationOutcome", ERROR_FILE, job.error_count),)
                    if done and job.error_count
                    else ()
                ),
                expires_ms=self._expires_ms(job),
                failure=job.failure,
            )

    def open_file(self, job_id: str, name: str) -> BinaryIO:
        """One of a finished job's files, open for reading (it stays readable if the job
        is cancelled meanwhile); ExportRefused (404) for a file the job has not."""
        with self._lock:
            self._expire()
            job = self._job(job_id)
            names = {f"{t}.ndjson" for t in job.counts} | (
                {ERROR_FILE} if job.error_count else set()
            )
            if job.state is not JobState.COMPLETE or name not in names:
                raise ExportRefused(
                    404, "not-found", f"export {job_id} has no file {name!r}; see its manifest"
                )
            return (job.directory / name).open("rb")

    def cancel(self, job_id: str) -> None:
        """Stop the job if it runs and delete its files; ExportRefused (404) if unknown."""
        with self._lock:
            self._expire()
            job = self._job(job_id)
            del self._jobs[job_id]
            job.cancelled.set()
            if job.state is not JobState.RUNNING:
                shutil.rmtree(job.directory, ignore_errors=True)
            # a running job's worker deletes its own files when it sees the cancel

    def close(self) -> None:
        """Cancel every job, wait briefly for their workers, delete every file."""
        with self._lock:
            jobs, self._jobs = list(self._jobs.values()), {}
        for job in jobs:
            job.cancelled.set()
        for job in jobs:
            if job.thread is not None:
                job.thread.join(timeout=5)
        self._remove_root()

    # -- inside ---------------------------------------------------------------------

    def _job(self, job_id: str) -> _Job:
        job = self._jobs.get(job_id)
        if job is None:
            raise ExportRefused(
                404,
                "not-found",
                f"no export {job_id!r}: it was cancelled, has expired (files are kept "
                f"{self._expiry_ms // 60_000} minutes) or never existed; start a new one",
            )
        return job

    def _expires_ms(self, job: _Job) -> int | None:
        return None if job.finished_ms is None else job.finished_ms + self._expiry_ms

    def _expire(self) -> None:
        """Forget finished jobs past their expiry and delete their files (lock held)."""
        now = self._clock()
        for job in list(self._jobs.values()):
            expires = self._expires_ms(job)
            if expires is not None and expires <= now:
                del self._jobs[job.id]
                shutil.rmtree(job.directory, ignore_errors=True)

    def _run(self, job: _Job) -> None:
        failure = None
        try:
            with _NdjsonFiles(job.directory) as files:
                self._write_all(job, files)
        except MedchainError as exc:
            failure = ExportRefused(
                502, "exception", f"the export stopped: {exc.message}; start a new one"
            )
        except Exception:  # a bug: reported to the client, logged in full here
            log.exception("export %s failed", job.id)
            failure = ExportRefused(
                500, "exception", "the export failed on an internal error; start a new one"
            )
        with self._lock:
            job.finished_ms = self._clock()
            job.state = JobState.COMPLETE if failure is None else JobState.FAILED
            job.failure = failure
            if failure is not None or job.cancelled.is_set():
                shutil.rmtree(job.directory, ignore_errors=True)

    def _write_all(self, job: _Job, files: _NdjsonFiles) -> None:
        request = job.request
        for name in request.ignored:
            job.error_count += files.write(ERROR_FILE, _ndjson_line(_ignored(name)))
        for resource in self._source(request.kind, request.types, request.since_ms):
            if job.cancelled.is_set():
                return
            resource_type = str(resource.get("resourceType"))
            if request.types is not None and resource_type not in request.types:
                continue  # the source should not have sent it
            try:
                # validated, but written as the source gave it: as the REST reads show it
                validate_resource(resource)
                line = _ndjson_line(resource)
            except InvalidFhirResource as exc:
                job.error_count += files.write(ERROR_FILE, _ndjson_line(_invalid(resource, exc)))
                continue
            files.write(f"{resource_type}.ndjson", line)
            with self._lock:
                job.counts[resource_type] = job.counts.get(resource_type, 0) + 1


class _NdjsonFiles:
    """Append-only NDJSON files in one directory, each created 0600 on its first line."""

    def __init__(self, directory: Path) -> None:
        self._directory = directory
        self._open: dict[str, Any] = {}

    def __enter__(self) -> _NdjsonFiles:
        return self

    def __exit__(self, *exc_info: object) -> None:
        for handle in self._open.values():
            handle.close()

    def write(self, name: str, line: str) -> int:
        """Append one line; 1, the number of lines written."""
        handle = self._open.get(name)
        if handle is None:
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
            handle = os.fdopen(os.open(self._directory / name, flags, 0o600), "w", encoding="utf-8")
            self._open[name] = handle
        handle.write(line)
        return 1


def _ndjson_line(resource: dict[str, Any]) -> str:
    """One resource as one line: json.dumps escapes every control and non-ASCII
    character, so no newline can hide inside; InvalidFhirResource for what JSON cannot
    hold (NaN, a non-JSON type)."""
    try:
        return json.dumps(resource, separators=(",", ":"), allow_nan=False) + "\n"
    except (TypeError, ValueError) as exc:
        raise InvalidFhirResource(
            f"the resource holds a value JSON cannot represent ({exc})"
        ) from None


def _invalid(resource: dict[str, Any], exc: InvalidFhirResource) -> dict[str, Any]:
    what = f"{resource.get('resourceType', 'a resource')}/{resource.get('id', '?')}"
    return outcome("error", "invalid", f"{what} was left out: {exc.message}")


def _ignored(parameter: str) -> dict[str, Any]:
    return outcome(
        "warning", "not-supported", f"the parameter {parameter} is not supported and was ignored"
    )


def outcome(severity: str, code: str, diagnostics: str) -> dict[str, Any]:
    """An OperationOutcome of one issue: how export refusals and notes are written."""
    return operation_outcome([Issue(code, diagnostics, severity)])

"""The facade's local index: the current version of each decrypted resource, searchable the
way FHIR search asks, in an in-memory SQLite.

Search columns (patient, clinical date range, codes, categories, statuses) are extracted
once at `put`, so a search is SQL over indexes rather than a scan of decrypted JSON. The
database lives in memory only and is never written to disk: it holds plaintext.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from medchain.fhir._search import (
    CATEGORY_ELEMENTS,
    CODE_ELEMENTS,
    DATE_PATHS,
    STATUS_ELEMENTS,
    DateBound,
    SearchQuery,
    Token,
    date_range,
)

_BATCH = 256
_SCHEMA = """
CREATE TABLE resources (
    pk INTEGER PRIMARY KEY,
    rtype TEXT NOT NULL,
    id TEXT NOT NULL,
    version INTEGER NOT NULL,
    last_updated INTEGER NOT NULL,
    patient TEXT NOT NULL,
    date_lo INTEGER,
    date_hi INTEGER,
    body TEXT NOT NULL,
    UNIQUE (rtype, id)
);
CREATE INDEX resources_patient ON resources (rtype, patient, date_lo);
CREATE INDEX resources_updated ON resources (rtype, last_updated);
CREATE TABLE tokens (
    res INTEGER NOT NULL,
    param TEXT NOT NULL,
    system TEXT,
    code TEXT NOT NULL
);
CREATE INDEX tokens_code ON tokens (param, code, system, res);
CREATE INDEX tokens_res ON tokens (res);
"""
_COLUMNS = "rtype, id, version, last_updated, patient, body"
_ORDER = {
    None: "rtype, id",
    "date": "date_lo IS NULL, date_lo, rtype, id",
    "-date": "date_lo IS NULL, date_lo DESC, rtype, id",
    "_lastUpdated": "last_updated, rtype, id",
    "-_lastUpdated": "last_updated DESC, rtype, id",
}
_DATE_TESTS = {
    # FHIR R4 search 3.1.1.4: [lo, hi] is the resource's range, [a, b] the search value's;
    # each test with the search bounds its placeholders take, in order.
    "eq": ("({lo} >= ? AND {hi} <= ?)", "ab"),
    "gt": ("({hi} > ?)", "b"),
    "lt": ("({lo} < ?)", "a"),
    "ge": ("({hi} > ? OR ({lo} >= ? AND {hi} <= ?))", "bab"),
    "le": ("({lo} < ? OR ({lo} >= ? AND {hi} <= ?))", "aab"),
}


@dataclass(frozen=True, slots=True)
class IndexedResource:
    """The current version of one resource as the facade serves it."""

    resource_type: str
    id: str
    version: int
    last_updated_ms: int
    patient: str
    resource: dict[str, Any]


@dataclass(frozen=True)
class SearchPage:
    """One page of matches; `total` counts every match, `offset` is where the page starts."""

    items: list[IndexedResource]
    total: int
    offset: int
    count: int


class ResourceIndex:
    """Current versions of decrypted resources, in an in-memory SQLite, searchable as FHIR
    search asks. Thread-safe (one lock). Never written to disk: it holds plaintext."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._db = sqlite3.connect(":memory:", check_same_thread=False)
        self._db.executescript(_SCHEMA)

    def put(self, item: IndexedResource) -> None:
        """Insert or replace the resource (type, id). A version older than the one held is
        ignored, so a slow refresh cannot roll a resource back."""
        body = json.dumps(item.resource, separators=(",", ":"), sort_keys=True)
        lower, upper = clinical_date(item.resource_type, item.resource) or (None, None)
        tokens = sorted(_tokens(item.resource_type, item.resource), key=_token_order)
        row = (item.resource_type, item.id, item.version, item.last_updated_ms, item.patient)
        with self._lock, self._db:
            held = self._db.execute(
                "SELECT pk, version FROM resources WHERE rtype = ? AND id = ?", row[:2]
            ).fetchone()
            if held is not None and held[1] > item.version:
                return
            if held is not None:
                self._delete(held[0])
            pk = self._db.execute(
                "INSERT INTO resources (rtype, id, version, last_updated, patient,"
                " date_lo, date_hi, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (*row, lower, upper, body),
            ).lastrowid
            self._db.executemany(
                "INSERT INTO tokens (res, param, system, code) VALUES (?, ?, ?, ?)",
                [(pk, param, system, code) for param, system, code in tokens],
            )

    def remove(self, resource_type: str, id: str) -> None:
        """Forget a resource (an erased record); absent ones are fine."""
        with self._lock:
            held = self._db.execute(
                "SELECT pk FROM resources WHERE rtype = ? AND id = ?", (resource_type, id)
            ).fetchone()
            if held is not None:
                with self._db:
                    self._delete(held[0])

    def get(self, resource_type: str, id: str) -> IndexedResource | None:
        with self._lock:
            row = self._db.execute(
                f"SELECT {_COLUMNS} FROM resources WHERE rtype = ? AND id = ?",
                (resource_type, id),
            ).fetchone()
        return None if row is None else _item(row)

    def count(self) -> int:
        """How many resources the index holds."""
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM resources").fetchone()[0])

    def search(self, query: SearchQuery) -> SearchPage:
        """One page of the resources matching `query`, in its sort order, and the total."""
        where, args = _where(query)
        with self._lock:
            total = self._db.execute(f"SELECT COUNT(*) FROM resources WHERE {where}", args)
            total_count = int(total.fetchone()[0])
            rows = self._db.execute(
                f"SELECT {_COLUMNS} FROM resources WHERE {where}"
                f" ORDER BY {_ORDER[query.sort]} LIMIT ? OFFSET ?",
                [*args, query.count, query.offset],
            ).fetchall()
        return SearchPage([_item(r) for r in rows], total_count, query.offset, query.count)

    def all_of(
        self, patient: str | None, types: frozenset[str] | None, since_ms: int | None
    ) -> Iterator[IndexedResource]:
        """Every resource of a patient (None: all), of some types (None: all), updated at or
        after `since_ms` (None: ever), in (type, id) order. Reads in batches, so the lock is
        never held between items and writers may go on meanwhile."""
        filters = ["(rtype, id) > (?, ?)"]
        args: list[Any] = []
        if patient is not None:
            filters.append("patient = ?")
            args.append(patient)
        if types is not None:
            filters.append(f"rtype IN ({', '.join('?' * len(types))})")
            args.extend(sorted(types))
        if since_ms is not None:
            filters.append("last_updated >= ?")
            args.append(since_ms)
        sql = (
            f"SELECT {_COLUMNS} FROM resources WHERE {' AND '.join(filters)}"
            f" ORDER BY rtype, id LIMIT {_BATCH}"
        )
        after: tuple[Any, ...] = ("", "")
        while True:
            with self._lock:
                rows = self._db.execute(sql, [*after, *args]).fetchall()
            yield from (_item(row) for row in rows)
            if len(rows) < _BATCH:
                return
            after = (rows[-1][0], rows[-1][1])

    def _delete(self, pk: int) -> None:
        self._db.execute("DELETE FROM tokens WHERE res = ?", (pk,))
        self._db.execute("DELETE FROM resources WHERE pk = ?", (pk,))


def clinical_date(resource_type: str, resource: Mapping[str, Any]) -> tuple[int, int] | None:
    """[lower, upper] ms of the resource's clinical date (the first of its type's date
    elements present and well formed), or None if it has none."""
    for path in DATE_PATHS.get(resource_type, ()):
        value: Any = resource
        for step in path:
            value = value.get(step) if isinstance(value, Mapping) else None
        if isinstance(value, str):
            try:
                return date_range(value)
            except ValueError:
                continue
    return None


def _tokens(resource_type: str, resource: Mapping[str, Any]) -> set[tuple[str, str | None, str]]:
    """(parameter, system, code) of each code, category and status the resource carries."""
    found: set[tuple[str, str | None, str]] = set()
    for param, elements in (
        ("code", CODE_ELEMENTS),
        ("category", CATEGORY_ELEMENTS),
        ("status", STATUS_ELEMENTS),
    ):
        if resource_type in elements:
            value = resource.get(elements[resource_type])
            found.update((param, system, code) for system, code in _codings(value))
    return found


def _codings(value: Any) -> Iterable[tuple[str | None, str]]:
    """(system, code) pairs in a code, a CodeableConcept, or a list of either."""
    if isinstance(value, str) and value:
        yield None, value
    elif isinstance(value, list):
        for entry in value:
            yield from _codings(entry)
    elif isinstance(value, Mapping):
        for coding in value.get("coding") or ():
            code = coding.get("code") if isinstance(coding, Mapping) else None
            if isinstance(code, str) and code:
                system = coding.get("system")
                yield (system if isinstance(system, str) and system else None), code


def _token_order(token: tuple[str, str | None, str]) -> tuple[str, str, str]:
    return token[0], token[1] or "", token[2]


def _where(query: SearchQuery) -> tuple[str, list[Any]]:
    """The WHERE clause (with its arguments) that selects what `query` asks for."""
    clauses = ["rtype = ?"]
    args: list[Any] = [query.resource_type]
    if query.patient is not None:
        clauses.append("patient = ?")
        args.append(query.patient)
    for group in query.ids:
        clauses.append(f"id IN ({', '.join('?' * len(group))})")
        args.extend(group)
    for param, groups in (
        ("code", query.codes),
        ("category", query.categories),
        ("status", query.statuses),
    ):
        for tokens in groups:
            args.append(param)
            tests = [_token_test(token, args) for token in tokens]
            clauses.append(
                f"pk IN (SELECT res FROM tokens WHERE param = ? AND ({' OR '.join(tests)}))"
            )
    for column, bounds in (("date", query.dates), ("last_updated", query.last_updated)):
        for bound in bounds:
            clauses.append(_date_test(column, bound, args))
    return " AND ".join(clauses), args


def _token_test(token: Token, args: list[Any]) -> str:
    if token.system is None:
        args.append(token.code)
        return "code = ?"
    if token.system == "":
        args.append(token.code)
        return "(code = ? AND system IS NULL)"
    if token.code == "":
        args.append(token.system)
        return "system = ?"
    args.extend((token.code, token.system))
    return "(code = ? AND system = ?)"


def _date_test(column: str, bound: DateBound, args: list[Any]) -> str:
    """FHIR's range rule for a prefix; last_updated is a point (ms precision)."""
    lo, hi = ("date_lo", "date_hi") if column == "date" else ("last_updated", "last_updated")
    test, order = _DATE_TESTS[bound.prefix]
    args.extend(bound.lower_ms if which == "a" else bound.upper_ms for which in order)
    return test.format(lo=lo, hi=hi)


def _item(row: tuple[Any, ...]) -> IndexedResource:
    rtype, id_, version, last_updated, patient, body = row
    return IndexedResource(rtype, id_, version, last_updated, patient, json.loads(body))

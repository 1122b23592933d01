"""Search-set paging links and history bundles."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlsplit

from medchain.client import validate_resource
from medchain.fhir._bundles import history, searchset
from medchain.fhir._index import IndexedResource, SearchPage

BASE = "http://127.0.0.1:8700/fhir"


def _item(n: int) -> IndexedResource:
    resource = {
        "resourceType": "Basic",
        "id": f"{n:02x}",
        "meta": {"versionId": "1"},
        "code": {"text": "x"},
    }
    return IndexedResource("Basic", resource["id"], 1, 0, "p", resource)  # type: ignore[arg-type]


def _links(bundle: dict[str, Any]) -> dict[str, dict[str, str]]:
    return {
        link["relation"]: dict(parse_qsl(urlsplit(link["url"]).query)) for link in bundle["link"]
    }


def test_next_and_previous_carry_the_offset_and_the_search() -> None:
    page = SearchPage([_item(i) for i in range(10, 20)], total=25, offset=10, count=10)
    bundle = validate_resource(searchset(BASE, "Basic", [("code", "x"), ("_offset", "3")], page))
    links = _links(bundle)
    assert links["self"] == {"code": "x", "_count": "10", "_offset": "10"}
    assert links["next"]["_offset"] == "20"
    assert links["previous"]["_offset"] == "0"
    assert bundle["total"] == 25
    assert bundle["entry"][0]["fullUrl"] == f"{BASE}/Basic/0a"


def test_last_page_has_no_next() -> None:
    page = SearchPage([_item(i) for i in range(20, 25)], total=25, offset=20, count=10)
    assert "next" not in _links(searchset(BASE, "Basic", [], page))


def test_history_says_how_each_version_was_written() -> None:
    first = {"resourceType": "Basic", "id": "ab", "meta": {"versionId": "1"}, "code": {"text": "x"}}
    second = {**first, "meta": {"versionId": "2", "lastUpdated": "2024-01-01T00:00:00.000Z"}}
    bundle = validate_resource(history(BASE, f"{BASE}/Basic/ab/_history", [second, first]))
    assert [e["request"]["method"] for e in bundle["entry"]] == ["PUT", "POST"]
    assert bundle["entry"][0]["response"]["etag"] == 'W/"2"'

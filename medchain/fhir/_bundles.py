"""The Bundles the facade answers with: a search set with its `total` and paging links
(the `next` link carries the `_offset` cursor), and an instance's history."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import urlencode

from medchain.fhir._index import SearchPage

PAGING = frozenset({"_count", "_offset"})


def full_url(base: str, resource: dict[str, Any]) -> str:
    return f"{base}/{resource['resourceType']}/{resource['id']}"


def searchset(
    base: str,
    path: str,
    params: Sequence[tuple[str, str]],
    page: SearchPage,
    warnings: Sequence[dict[str, Any]] = (),
) -> dict[str, Any]:
    """A page of results; `params` the search's own parameters (paging aside), which the
    `self`, `previous` and `next` links repeat; `warnings` OperationOutcomes to enclose."""
    kept = [(name, value) for name, value in params if name not in PAGING]

    def link(relation: str, offset: int) -> dict[str, str]:
        query = urlencode([*kept, ("_count", str(page.count)), ("_offset", str(offset))])
        return {"relation": relation, "url": f"{base}/{path}?{query}"}

    links = [link("self", page.offset)]
    if page.offset > 0:
        links.append(link("previous", max(0, page.offset - page.count)))
    if page.offset + page.count < page.total:
        links.append(link("next", page.offset + page.count))
    entries = [
        {
            "fullUrl": full_url(base, item.resource),
            "resource": item.resource,
            "search": {"mode": "match"},
        }
        for item in page.items
    ]
    entries += [{"resource": outcome, "search": {"mode": "outcome"}} for outcome in warnings]
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": page.total,
        "link": links,
        "entry": entries,
    }


def collection(base: str, self_url: str, resources: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """All of a set at once (`$everything`), as a search set."""
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": len(resources),
        "link": [{"relation": "self", "url": self_url}],
        "entry": [
            {"fullUrl": full_url(base, r), "resource": r, "search": {"mode": "match"}}
            for r in resources
        ],
    }


def history(base: str, self_url: str, versions: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """An instance's versions, newest first, each with how it was written."""
    entries = []
    for resource in versions:
        version = resource["meta"]["versionId"]
        first = version == "1"
        entries.append(
            {
                "fullUrl": full_url(base, resource),
                "resource": resource,
                "request": {
                    "method": "POST" if first else "PUT",
                    "url": resource["resourceType"]
                    if first
                    else f"{resource['resourceType']}/{resource['id']}",
                },
                "response": {
                    "status": "201 Created" if first else "200 OK",
                    "etag": f'W/"{version}"',
                    **(
                        {"lastModified": resource["meta"]["lastUpdated"]}
                        if "lastUpdated" in resource["meta"]
                        else {}
                    ),
                },
            }
        )
    return {
        "resourceType": "Bundle",
        "type": "history",
        "total": len(entries),
        "link": [{"relation": "self", "url": self_url}],
        "entry": entries,
    }

"""medchain's FHIR R4 side: chain records <-> FHIR resources (in one place), the R4 REST
facade that a local process holding one account's key serves to an EHR, and Bulk Data
export. It sits on the SDK, as the CLI does: the key never leaves that process."""

from medchain.fhir._index import IndexedResource, ResourceIndex, SearchPage
from medchain.fhir._search import (
    DateBound,
    InvalidSearch,
    SearchQuery,
    Token,
    UnsupportedSearchParameter,
    parse_search,
    supported_parameters,
)

__all__: list[str] = [
    "DateBound",
    "IndexedResource",
    "InvalidSearch",
    "ResourceIndex",
    "SearchPage",
    "SearchQuery",
    "Token",
    "UnsupportedSearchParameter",
    "parse_search",
    "supported_parameters",
]

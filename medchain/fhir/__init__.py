"""medchain's FHIR R4 side: chain records <-> FHIR resources (in one place), the R4 REST
facade that a local process holding one account's key serves to an EHR, and Bulk Data
export. It sits on the SDK, as the CLI does: the key never leaves that process."""

from medchain.fhir._bulk import (
    BulkExports,
    ExportKind,
    ExportRefused,
    ExportRequest,
    ExportSource,
    ExportStatus,
    JobState,
)
from medchain.fhir._bulk_router import bulk_router
from medchain.fhir._index import IndexedResource, ResourceIndex, SearchPage
from medchain.fhir._research import research_resource
from medchain.fhir._search import (
    DateBound,
    InvalidSearch,
    SearchQuery,
    Token,
    UnsupportedSearchParameter,
    parse_search,
    supported_parameters,
)
from medchain.fhir._vitals import vital_observation, vital_observation_id

__all__: list[str] = [
    "BulkExports",
    "DateBound",
    "ExportKind",
    "ExportRefused",
    "ExportRequest",
    "ExportSource",
    "ExportStatus",
    "IndexedResource",
    "InvalidSearch",
    "JobState",
    "ResourceIndex",
    "SearchPage",
    "SearchQuery",
    "Token",
    "UnsupportedSearchParameter",
    "bulk_router",
    "parse_search",
    "research_resource",
    "supported_parameters",
    "vital_observation",
    "vital_observation_id",
]

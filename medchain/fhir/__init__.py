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
from medchain.fhir._convert import (
    FHIR_JSON,
    RECORD_TYPES,
    consent_resource,
    for_chain,
    instant_of,
    patient_fhir_id,
    patient_of_reference,
    patient_reference,
    patient_resource,
    record_fhir_id,
    record_id_of,
    record_resource,
)
from medchain.fhir._index import IndexedResource, ResourceIndex, SearchPage
from medchain.fhir._outcome import FhirError
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
from medchain.fhir._server import create_fhir_app
from medchain.fhir._source import AccountSource
from medchain.fhir._token import bearer_matches, new_token
from medchain.fhir._vitals import vital_observation, vital_observation_id

__all__: list[str] = [
    "FHIR_JSON",
    "RECORD_TYPES",
    "AccountSource",
    "BulkExports",
    "DateBound",
    "ExportKind",
    "ExportRefused",
    "ExportRequest",
    "ExportSource",
    "ExportStatus",
    "FhirError",
    "IndexedResource",
    "InvalidSearch",
    "JobState",
    "ResourceIndex",
    "SearchPage",
    "SearchQuery",
    "Token",
    "UnsupportedSearchParameter",
    "bearer_matches",
    "bulk_router",
    "consent_resource",
    "create_fhir_app",
    "for_chain",
    "instant_of",
    "new_token",
    "parse_search",
    "patient_fhir_id",
    "patient_of_reference",
    "patient_reference",
    "patient_resource",
    "record_fhir_id",
    "record_id_of",
    "record_resource",
    "research_resource",
    "supported_parameters",
    "vital_observation",
    "vital_observation_id",
]

"""The Python SDK: keys, transactions, record encryption and FHIR handling."""

from medchain.client._backend import ChainBackend
from medchain.client._deidentify import deidentify
from medchain.client._envelope import Sealed, open_sealed, seal
from medchain.client._fhir import InvalidFhirResource, canonical_json, validate_resource
from medchain.client._sdk import (
    BlobUnavailable,
    MedchainClient,
    NotAReader,
    ResearchItem,
    UnknownParty,
)

__all__ = [
    "BlobUnavailable",
    "ChainBackend",
    "InvalidFhirResource",
    "MedchainClient",
    "NotAReader",
    "ResearchItem",
    "Sealed",
    "UnknownParty",
    "canonical_json",
    "deidentify",
    "open_sealed",
    "seal",
    "validate_resource",
]

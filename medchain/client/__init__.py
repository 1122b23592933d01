"""The Python SDK: keys, transactions, record encryption and FHIR handling, on an
in-process chain or on a node over HTTP (`HttpChain`)."""

from medchain.client._backend import ChainBackend
from medchain.client._deidentify import deidentify
from medchain.client._envelope import Sealed, open_sealed, seal
from medchain.client._fhir import InvalidFhirResource, canonical_json, validate_resource
from medchain.client._http import (
    DEFAULT_NODE_URL,
    HttpBlobStore,
    HttpChain,
    NodeError,
    NodeUnreachable,
    NotCommitted,
    TxStatus,
    UploadNotSigned,
)
from medchain.client._labels import (
    DeviceLabel,
    InvalidLabel,
    LabelStatus,
    label_context,
    read_label,
    seal_label,
)
from medchain.client._sdk import (
    BlobUnavailable,
    MedchainClient,
    NotAReader,
    ResearchItem,
    UnknownBatch,
    UnknownParty,
)
from medchain.client._search import (
    InvalidCapability,
    NoSearchCapability,
    OpenedRecord,
    RecordNotIndexed,
    SearchCapability,
    SearchResult,
    SearchStateError,
    SkippedRecord,
    keywords_of,
    open_capability,
    search_state_path,
)

__all__ = [
    "DEFAULT_NODE_URL",
    "BlobUnavailable",
    "ChainBackend",
    "DeviceLabel",
    "HttpBlobStore",
    "HttpChain",
    "InvalidCapability",
    "InvalidFhirResource",
    "InvalidLabel",
    "LabelStatus",
    "MedchainClient",
    "NoSearchCapability",
    "NodeError",
    "NodeUnreachable",
    "NotAReader",
    "NotCommitted",
    "OpenedRecord",
    "RecordNotIndexed",
    "ResearchItem",
    "Sealed",
    "SearchCapability",
    "SearchResult",
    "SearchStateError",
    "SkippedRecord",
    "TxStatus",
    "UnknownBatch",
    "UnknownParty",
    "UploadNotSigned",
    "canonical_json",
    "deidentify",
    "keywords_of",
    "label_context",
    "open_capability",
    "open_sealed",
    "read_label",
    "seal",
    "seal_label",
    "search_state_path",
    "validate_resource",
]

"""Plain data: transactions, blocks, receipts, genesis, and their canonical encoding;
the content identifiers (CIDs) by which the chain names off-chain bodies."""

from medchain.types._block import (
    ZERO_HASH,
    Attribute,
    Block,
    Certificate,
    CommitSig,
    Event,
    Header,
    Receipt,
    TxFailed,
    block_hash,
    commit_signing_bytes,
)
from medchain.types._cid import CID_PREFIX_TEXT, InvalidCid, cid_for, cid_from_digest, parse_cid
from medchain.types._codec import decode, encode
from medchain.types._consensus import (
    Accusation,
    EquivocationEvidence,
    InvalidProposalEvidence,
    SignedProposal,
    accusation_signing_bytes,
    proposal_signing_bytes,
)
from medchain.types._errors import DecodeError, MedchainError
from medchain.types._genesis import (
    Allocation,
    ChainParams,
    ForkOrigin,
    Genesis,
    GenesisError,
    GenesisOrganisation,
    GenesisValidator,
    StateEntry,
)
from medchain.types._hashing import HASH_SIZE, sha256, tagged_hash
from medchain.types._hex import fixed_hex
from medchain.types._snapshot import (
    BucketRoot,
    ChunkInfo,
    SnapshotChunk,
    SnapshotInvalid,
    SnapshotManifest,
)
from medchain.types._status import NodeStatus, PeerStatus
from medchain.types._tx import TX_SIGNING_DOMAIN, Tx, decode_tx_bytes, tx_id
from medchain.types._uploads import (
    BULK_UPLOAD_DOMAIN,
    MAX_UPLOAD_EXPIRES_MS,
    UPLOAD_EXPIRES_HEADER,
    UPLOAD_SIGNATURE_HEADER,
    UPLOADER_HEADER,
    bulk_upload_signing_bytes,
)

__all__ = [
    "BULK_UPLOAD_DOMAIN",
    "CID_PREFIX_TEXT",
    "HASH_SIZE",
    "MAX_UPLOAD_EXPIRES_MS",
    "TX_SIGNING_DOMAIN",
    "UPLOADER_HEADER",
    "UPLOAD_EXPIRES_HEADER",
    "UPLOAD_SIGNATURE_HEADER",
    "ZERO_HASH",
    "Accusation",
    "Allocation",
    "Attribute",
    "Block",
    "BucketRoot",
    "Certificate",
    "ChainParams",
    "ChunkInfo",
    "CommitSig",
    "DecodeError",
    "EquivocationEvidence",
    "Event",
    "ForkOrigin",
    "Genesis",
    "GenesisError",
    "GenesisOrganisation",
    "GenesisValidator",
    "Header",
    "InvalidCid",
    "InvalidProposalEvidence",
    "MedchainError",
    "NodeStatus",
    "PeerStatus",
    "Receipt",
    "SignedProposal",
    "SnapshotChunk",
    "SnapshotInvalid",
    "SnapshotManifest",
    "StateEntry",
    "Tx",
    "TxFailed",
    "accusation_signing_bytes",
    "block_hash",
    "bulk_upload_signing_bytes",
    "cid_for",
    "cid_from_digest",
    "commit_signing_bytes",
    "decode",
    "decode_tx_bytes",
    "encode",
    "fixed_hex",
    "parse_cid",
    "proposal_signing_bytes",
    "sha256",
    "tagged_hash",
    "tx_id",
]

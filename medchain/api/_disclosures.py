"""The accounting of disclosures: a patient's entries in this node's disclosure log
(signed by the patient or their `read` proxy), every entry's salted hash (public:
anyone recomputes the heads), and the heads nodes committed on chain.

The log's two routes are made by `disclosure_log_routes` from two dependencies (where
the log is, who may see a patient's entries), so the edge gateway serves its own log
with the same routes and models over its own checks."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from medchain import app as contracts
from medchain.api import _parse as parse
from medchain.api._deps import Chain, Service
from medchain.api._errors import ApiError
from medchain.api._lookups import registered_patient
from medchain.api._models import Address, Encoded, FromChain, Hex, Name
from medchain.api._reads import SignedRead
from medchain.crypto import format_address
from medchain.node import DisclosureRecords, LogEntry

MAX_HASHES = 10_000
"""Most entry hashes one GET /v1/disclosures/hashes answers (page with from/to)."""
MAX_COMMITS = 1_000


class DisclosureModel(BaseModel):
    """One read this node served: who read what of the patient's, when, why."""

    seq: int = Field(description="Position in this node's log, from 1.")
    time_ms: int
    reader: Address
    patient: Address
    kind: Name
    purpose: str = Field(description="The PurposeOfUse code the reader named.")
    basis: Name = Field(description="Why the node let the reader read.")
    record_id: Hex
    version: int
    on_behalf: Address
    detail: str
    node: Address
    hash: Hex = Field(description="The entry's salted hash, as in /v1/disclosures/hashes.")
    encoded: Encoded = Field(description="The entry (LoggedDisclosure) canonically encoded.")

    @classmethod
    def of(cls, item: LogEntry) -> DisclosureModel:
        read = item.entry.disclosure
        return cls.model_validate(
            {
                "seq": item.seq,
                "time_ms": read.time_ms,
                "reader": read.reader,
                "patient": read.patient,
                "kind": read.kind,
                "purpose": read.purpose,
                "basis": read.basis,
                "record_id": read.record_id,
                "version": read.version,
                "on_behalf": read.on_behalf,
                "detail": read.detail,
                "node": item.entry.node,
                "hash": item.hash,
                "encoded": item.encoded,
            }
        )


class DisclosuresModel(BaseModel):
    node: Address = Field(description="The node whose log this is.")
    length: int = Field(description="Entries in the node's log, everyone's.")
    entries: list[DisclosureModel]


class HashesModel(BaseModel):
    node: Address
    length: int
    first: int = Field(description="The seq of hashes[0].")
    hashes: list[Hex]


class HeadCommitModel(FromChain):
    """A head of a node's disclosure log, as committed on chain."""

    node: Address
    seq: int = Field(description="Entries the head covers.")
    head: Hex
    api_url: str
    height: int
    time_ms: int
    encoded: Encoded


class HeadCommitsModel(BaseModel):
    node: Address
    count: int = Field(description="Commits the node made, in all.")
    latest: HeadCommitModel | None = Field(description="Its latest commit (none yet: null).")
    commits: list[HeadCommitModel]


LogDependency = Callable[..., Awaitable[DisclosureRecords]]
"""A FastAPI dependency giving the log the routes serve (a 404 ApiError without one)."""
ViewerDependency = Callable[..., Awaitable[bytes]]
"""A FastAPI dependency taking the `patient` query parameter and the request's signed
read: the patient's address once the signer may see their entries, or an ApiError
(401 unsigned, 404 no such patient, 403 not the patient nor their `read` proxy)."""

PatientQuery = Annotated[str, Query(description="The patient's address.")]


def disclosure_log_routes(log_of: LogDependency, viewer: ViewerDependency) -> APIRouter:
    """GET /v1/disclosures (a patient's entries, to the patient or their `read` proxy)
    and GET /v1/disclosures/hashes (every entry's salted hash) over the log `log_of`
    gives, the signer checked by `viewer`."""
    routes = APIRouter(prefix="/v1", tags=["disclosures"])
    log_dependency = Depends(log_of)  # defaults, not Annotated: these are not module names

    @routes.get("/disclosures", summary="A patient's disclosures through this log (signed)")
    async def disclosures(
        log: DisclosureRecords = log_dependency,
        patient: bytes = Depends(viewer),
        record: Annotated[str, Query(description="Only this record's (hex id).")] = "",
    ) -> DisclosuresModel:
        record_id = parse.record_id(record) if record else b""
        entries = [DisclosureModel.of(e) for e in log.entries_of(patient, record_id)]
        return DisclosuresModel(node=format_address(log.node), length=log.length, entries=entries)

    @routes.get("/disclosures/hashes", summary="Entry hashes of this disclosure log")
    async def hashes(
        log: DisclosureRecords = log_dependency,
        first: Annotated[int, Query(alias="from", ge=1, description="First seq.")] = 1,
        last: Annotated[int, Query(alias="to", ge=1, description="Last seq (inclusive).")] = 0,
    ) -> HashesModel:
        length = log.length
        last = length if last == 0 else min(last, length)
        if last - first + 1 > MAX_HASHES:
            raise ApiError(
                400,
                "invalid_argument",
                f"at most {MAX_HASHES} hashes per request; ask for from..to in pages",
            )
        found = log.hashes(first, last) if last >= first else []
        return HashesModel(
            node=format_address(log.node),
            length=length,
            first=first,
            hashes=[h.hex() for h in found],
        )

    return routes


async def _node_log(service: Service) -> DisclosureRecords:
    found: Any = getattr(service, "disclosures", None)
    if not isinstance(found, DisclosureRecords):
        raise ApiError(
            404, "no_disclosure_log", "this node keeps no disclosure log; ask a networked node"
        )
    return found


async def _node_viewer(reader: SignedRead, chain: Chain, patient: PatientQuery) -> bytes:
    raw = registered_patient(chain, patient)
    if reader.account == raw:
        return raw
    state = chain.ledger.state
    now_ms = chain.latest_block().header.time_ms
    if not contracts.proxy_allows(state, reader.account, raw, contracts.ProxyScope.READ, now_ms):
        raise ApiError(
            403,
            contracts.NotAuthorised.code,
            f"{format_address(reader.account)} may not see {format_address(raw)}'s "
            "disclosures: only the patient and their proxies with the read scope may",
        )
    return raw


router = disclosure_log_routes(_node_log, _node_viewer)


@router.get("/disclosures/nodes", summary="Every node's latest committed disclosure head")
async def nodes(chain: Chain) -> list[HeadCommitModel]:
    return [HeadCommitModel.of(c) for c in contracts.disclosure_nodes(chain.ledger.state)]


@router.get("/disclosures/commits", summary="The disclosure heads a node committed")
async def commits(
    chain: Chain,
    node: Annotated[str, Query(description="The committer's (validator's or gateway's) address.")],
    start: Annotated[int, Query(ge=0, description="Index of the first commit.")] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_COMMITS)] = MAX_COMMITS,
) -> HeadCommitsModel:
    raw = parse.address(node, "node")
    state = chain.ledger.state
    found = contracts.head_commits(state, raw, start, limit)
    latest = contracts.latest_head(state, raw)
    return HeadCommitsModel(
        node=format_address(raw),
        count=contracts.head_commit_count(state, raw),
        latest=None if latest is None else HeadCommitModel.of(latest),
        commits=[HeadCommitModel.of(c) for c in found],
    )

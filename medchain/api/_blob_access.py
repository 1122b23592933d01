"""Which signed readers GET /v1/blobs/{cid} serves: a blob is served only as part of
something on chain that names it, which the request names in its query (a record's
version, an institution's research copy, a patient's bundle in a batch, or an
anonymous scope's contribution). The node checks that the named thing holds the CID,
then asks the read-access rules as the route serving that thing would. The state is
the index: no table of CIDs to keep, and a few state reads per blob."""

from __future__ import annotations

from dataclasses import dataclass

from medchain import app as contracts
from medchain.api import _parse as parse
from medchain.api._errors import ApiError
from medchain.api._reads import Reader, allowed, disclose, serve_record, serve_research_copy
from medchain.api._service import NodeService
from medchain.node import DisclosureKind

_NAME_IT = (
    "name what the blob belongs to in the query: ?record=ID&version=N (a record's "
    "version), ?institution=ADDR&record=ID (a research copy), ?batch=ID&patient=ADDR "
    "(a bundle of vitals), ?scope=NAME&index=N (an anonymous contribution), "
    "?recovery=ADDR (a recovery kit or share) or ?recovery_request=ID (a re-sealed share); "
    "medchain.client.HttpChain does for blobs it learnt of from the chain"
)


@dataclass(frozen=True, slots=True)
class BlobOwner:
    """What a blob request says the blob belongs to (the query parameters)."""

    record: str | None = None
    version: int | None = None
    institution: str | None = None
    batch: str | None = None
    patient: str | None = None
    scope: str | None = None
    index: int | None = None
    recovery: str | None = None
    recovery_request: str | None = None


def _not_there(cid: str, what: str) -> ApiError:
    return ApiError(
        404, "blob_not_named", f"{what} does not name blob {cid}; check the query, or {_NAME_IT}"
    )


def authorise_blob(service: NodeService, reader: Reader, cid: str, owner: BlobOwner) -> None:
    """Let `reader` fetch `cid` as part of `owner`, logging the read; 400 when the
    query names nothing, 404 when what it names does not hold the CID, else the
    access check's 403/410."""
    if owner.record is not None and owner.institution is None and owner.version is not None:
        _record_version(service, reader, cid, owner.record, owner.version)
    elif owner.institution is not None and owner.record is not None:
        _research_copy(service, reader, cid, owner.institution, owner.record)
    elif owner.batch is not None and owner.patient is not None:
        _bundle(service, reader, cid, owner.batch, owner.patient)
    elif owner.scope is not None and owner.index is not None:
        _contribution(service, reader, cid, owner.scope, owner.index)
    elif owner.recovery is not None or owner.recovery_request is not None:
        _recovery(service, reader, cid, owner.recovery, owner.recovery_request)
    else:
        raise ApiError(400, "blob_owner_required", f"a node serves a blob to a reader: {_NAME_IT}")


def _record_version(service: NodeService, reader: Reader, cid: str, text: str, number: int) -> None:
    record_id = parse.record_id(text)
    record = service.chain.record(record_id)
    version = None if record is None else service.chain.record_version(record_id, number)
    if record is None or version is None or version.cid != cid:
        raise _not_there(cid, f"version {number} of record {record_id.hex()}")
    serve_record(service, reader, record, DisclosureKind.BODY, number, cid)


def _research_copy(service: NodeService, reader: Reader, cid: str, who: str, text: str) -> None:
    institution, record_id = parse.address(who, "institution"), parse.record_id(text)
    state = service.chain.ledger.state
    entry = contracts.research_copy(state, institution, record_id)
    if entry is None or entry.cid != cid:
        raise _not_there(cid, f"the research copy of record {record_id.hex()} for {who}")
    serve_research_copy(service, reader, entry, cid)


def _bundle(service: NodeService, reader: Reader, cid: str, batch_text: str, who: str) -> None:
    batch_id = parse.hex_bytes(batch_text, "a batch id", contracts.BATCH_ID_SIZE)
    patient = parse.address(who, "patient")
    batch = service.chain.batch(batch_id)
    bundles = () if batch is None else batch.bundles
    if not any(b.cid == cid and b.patient == patient for b in bundles):
        raise _not_there(cid, f"batch {batch_id.hex()} for {who}")
    state = service.chain.ledger.state
    access = allowed(lambda: contracts.vitals_access(state, patient, reader.account, reader.now_ms))
    disclose(service, reader, access, DisclosureKind.VITALS, patient, detail=cid)


def _contribution(service: NodeService, reader: Reader, cid: str, name: str, index: int) -> None:
    state = service.chain.ledger.state
    scope = service.chain.anon_scope(name)
    entry = contracts.anon_contribution(state, name, index)
    if scope is None or entry is None or entry.cid != cid:
        raise _not_there(cid, f"contribution {index} to scope {name!r}")
    access = allowed(lambda: contracts.anon_access(scope, reader.account))
    detail = f"{cid} (anonymous contribution {index} to {name})"
    disclose(service, reader, access, DisclosureKind.RESEARCH_COPY, b"", detail=detail)


def _recovery(
    service: NodeService, reader: Reader, cid: str, who: str | None, request_text: str | None
) -> None:
    chain = service.chain
    request = None
    if request_text is not None:
        request_id = parse.hex_bytes(request_text, "a recovery id", contracts.RECOVERY_ID_SIZE)
        request = chain.recovery_request(request_id)
        named = () if request is None else tuple(a.cid for a in request.approvals)
        patient = b"" if request is None else request.patient
        policy = None
    else:
        assert who is not None
        patient = parse.address(who, "recovery")
        policy = chain.recovery_policy(patient)
        named = () if policy is None else (policy.kit_cid, *(s.cid for s in policy.shares))
    if cid not in named:
        raise _not_there(cid, "the recovery named")
    access = allowed(lambda: contracts.recovery_access(policy, request, patient, reader.account))
    disclose(service, reader, access, DisclosureKind.WRAPS, patient, detail=f"{cid} (recovery)")

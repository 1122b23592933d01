"""Read-only endpoints on committed state: blocks, genesis, accounts, the registry,
records, search, research, anonymous scopes, staking and validators."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from medchain import app as contracts
from medchain.api import _parse as parse
from medchain.api._blobs import OCTETS, blob_response, read_blob
from medchain.api._deps import Chain, Service
from medchain.api._errors import ApiError
from medchain.api._lookups import on_chain, registered_patient
from medchain.api._models import (
    MAX_ROLE_INDEX,
    MAX_VERSION_NUMBER,
    AccountModel,
    AnonEntriesModel,
    AnonScopeModel,
    AuditModel,
    BlockModel,
    BlockSummariesModel,
    CandidatesModel,
    GenesisModel,
    IdentityModel,
    PatientRecordsModel,
    ReaderGrantModel,
    RecordModel,
    RecordVersionModel,
    ResearchDataModel,
    RoleCountModel,
    RoleMemberModel,
    SearchBody,
    SearchResultModel,
    StakeModel,
    ValidatorModel,
    ValidatorsModel,
    address_of,
    block_model,
    block_summary,
    genesis_model,
)
from medchain.api._reads import (
    READ_RESPONSES,
    SignedRead,
    allowed,
    disclose,
    serve_record,
    serve_research_copy,
)
from medchain.api._service import NodeService
from medchain.app import Role
from medchain.crypto import KEY_WRAP_HEADER, SearchToken, address_from_public_key
from medchain.node import ChainQueries, DisclosureKind, LedgerApp
from medchain.store import MAX_HEIGHT
from medchain.types import DecodeError, decode

AddressPath = Annotated[str, Path(description="Account address, bech32 (mc1...).")]
RecordIdPath = Annotated[str, Path(description="Record id: 32 hex characters.")]
VersionPath = Annotated[int, Path(ge=1, le=MAX_VERSION_NUMBER)]
ScopePath = Annotated[str, Path(description="Scope name (URL-encoded).")]


router = APIRouter(prefix="/v1")


def _record(chain: ChainQueries, record_id: bytes) -> contracts.Record:
    return on_chain(
        chain.record(record_id),
        contracts.UnknownRecord.code,
        f"no record {record_id.hex()} on this chain; check the id",
    )


def _scope(chain: ChainQueries, name: str) -> contracts.AnonScope:
    return on_chain(
        chain.anon_scope(name),
        contracts.UnknownScope.code,
        f"no anonymous scope {name!r}; check its name",
    )


# -- blocks and genesis ---------------------------------------------------------------


@router.get("/blocks/latest", tags=["blocks"], summary="The latest committed block")
async def latest_block(service: Service) -> BlockModel:
    return block_model(service.chain.latest_block(), service.genesis)


MAX_SUMMARIES = 100
"""Block summaries one request may ask for."""


@router.get("/blocks", tags=["blocks"], summary="Summaries of the blocks from a height")
async def block_summaries(
    service: Service,
    from_height: Annotated[int, Query(ge=0, le=MAX_HEIGHT)] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_SUMMARIES)] = MAX_SUMMARIES,
) -> BlockSummariesModel:
    """Height, hash, time, proposer and transaction ids of each block from
    `from_height`, with the latest height: what a follower of the chain needs, without
    the transactions' bodies `GET /v1/blocks/{height}` carries."""
    chain = service.chain
    latest = chain.height
    last = min(latest, from_height + limit - 1)
    blocks = [block_summary(h, ids) for h, ids in chain.block_summaries(from_height, last)]
    return BlockSummariesModel(latest=latest, blocks=blocks)


@router.get("/blocks/{height}", tags=["blocks"], summary="The block at a height")
async def block_at(
    height: Annotated[int, Path(ge=0, le=MAX_HEIGHT)], service: Service
) -> BlockModel:
    latest = service.chain.height
    block = on_chain(
        service.chain.block_at(height) if height <= latest else None,
        "unknown_block",
        f"no block at height {height}; the latest is {latest}",
    )
    return block_model(block, service.genesis)


@router.get("/genesis", tags=["chain"], summary="The genesis document")
async def genesis(service: Service) -> GenesisModel:
    return genesis_model(service.genesis)


@router.get("/validators", tags=["chain"], summary="The validators and their standing")
async def validators(service: Service) -> ValidatorsModel:
    return _validators(service)


# -- accounts and the registry ----------------------------------------------------------


@router.get("/accounts/{address}", tags=["accounts"], summary="Balance and nonce")
async def account(address: AddressPath, chain: Chain) -> AccountModel:
    raw = parse.address(address)
    return AccountModel.of(chain.account(raw), address=raw)


@router.get("/identities/{address}", tags=["accounts"], summary="A registered identity")
async def identity(address: AddressPath, chain: Chain) -> IdentityModel:
    raw = parse.address(address)
    found = on_chain(
        chain.identity(raw),
        contracts.NotRegistered.code,
        f"{address_of(raw)} is not registered on this chain",
    )
    return IdentityModel.of(found)


@router.get("/roles/{role}", tags=["accounts"], summary="How many accounts hold a role")
async def role_count(role: Role, chain: Chain) -> RoleCountModel:
    return RoleCountModel(role=role, count=chain.role_count(role))


@router.get("/roles/{role}/{index}", tags=["accounts"], summary="The n-th holder of a role")
async def role_member(
    role: Role, index: Annotated[int, Path(ge=0, le=MAX_ROLE_INDEX)], chain: Chain
) -> RoleMemberModel:
    count = chain.role_count(role)
    member = on_chain(
        chain.role_member(role, index) if index < count else None,
        "no_member",
        f"{count} accounts hold role {role.value}; index {index} is past them",
    )
    return RoleMemberModel.model_validate({"role": role, "index": index, "address": member})


@router.get("/stakes/{address}", tags=["staking"], summary="Bonded stake and votes")
async def stake(address: AddressPath, chain: Chain) -> StakeModel:
    raw = parse.address(address)
    return StakeModel.of(chain.stake(raw), address=raw)


@router.get("/candidates", tags=["staking"], summary="Candidates in election order")
async def candidates(chain: Chain) -> CandidatesModel:
    return CandidatesModel.model_validate({"candidates": chain.candidates()})


# -- records --------------------------------------------------------------------------


@router.get("/records/{record_id}", tags=["records"], summary="A record's public metadata")
async def record(record_id: RecordIdPath, chain: Chain) -> RecordModel:
    found = _record(chain, parse.record_id(record_id))
    grants = [ReaderGrantModel.of(g) for g in chain.reader_grants(found.record_id)]
    return RecordModel.of(found, grants=grants)


def _version(
    chain: ChainQueries, record_id: str, number: int
) -> tuple[contracts.Record, contracts.RecordVersion]:
    raw = parse.record_id(record_id)
    record = _record(chain, raw)
    count = record.version_count
    version = on_chain(
        chain.record_version(raw, number) if number <= count else None,
        "unknown_version",
        f"record {raw.hex()} has versions 1 to {count}, not {number}",
    )
    return record, version


@router.get(
    "/records/{record_id}/versions/{number}",
    tags=["records"],
    summary="One version and its key wraps (signed read)",
    responses=READ_RESPONSES,
)
async def record_version(
    record_id: RecordIdPath,
    number: VersionPath,
    service: Service,
    reader: SignedRead,
) -> RecordVersionModel:
    """A version's CID, hash and key wraps, to its owner, a reader whose grant is in
    force for the signed purpose, a read proxy of the owner, or a clinician whose open
    emergency request covers the record."""
    record, version = _version(service.chain, record_id, number)
    serve_record(service, reader, record, DisclosureKind.WRAPS, number)
    return RecordVersionModel.of(version)


@router.get(
    "/records/{record_id}/versions/{number}/body",
    tags=["records"],
    summary="A version's ciphertext (signed read)",
    response_class=Response,
    responses={200: {"content": {OCTETS: {}}, "description": "The ciphertext."}, **READ_RESPONSES},
)
async def record_body(
    record_id: RecordIdPath,
    number: VersionPath,
    service: Service,
    reader: SignedRead,
) -> Response:
    """The version's ciphertext (checked against its CID), to whoever may read its
    wraps; with the signer's own key wrap, when it has one, in the `Medchain-Key-Wrap`
    header (hex), so that a reader opens a record in one request."""
    record, version = _version(service.chain, record_id, number)
    serve_record(service, reader, record, DisclosureKind.BODY, number, version.cid)
    response = blob_response(version.cid, await read_blob(service.blobs, version.cid))
    wrap = next((w for w in version.wraps if w.reader == reader.account), None)
    if wrap is not None:
        response.headers[KEY_WRAP_HEADER] = wrap.wrapped_key.hex()
    return response


@router.get("/records/{record_id}/audit", tags=["records"], summary="A record's audit trail")
async def audit(record_id: RecordIdPath, chain: Chain) -> AuditModel:
    raw = parse.record_id(record_id)
    _record(chain, raw)
    return AuditModel.model_validate({"record_id": raw, "entries": chain.audit(raw)})


@router.get("/patients/{address}/records", tags=["records"], summary="A patient's records")
async def patient_records(address: AddressPath, chain: Chain) -> PatientRecordsModel:
    raw = registered_patient(chain, address)
    ids = chain.patient_records(raw)
    return PatientRecordsModel.model_validate({"patient": raw, "record_ids": ids})


@router.post(
    "/search",
    tags=["records"],
    summary="Look up an encrypted keyword index (signed read)",
    responses=READ_RESPONSES,
)
async def search(body: SearchBody, service: Service, reader: SignedRead) -> SearchResultModel:
    """The node sees label keys only: it returns the encrypted values stored under
    them, which only the index owner (or a capability holder) can read. Served to the
    owner, their read proxy, or a reader of one of their records (for the purpose)."""
    owner = parse.address(body.owner, "owner")
    try:
        token = decode(SearchToken, parse.hex_bytes(body.token, "token"))
    except DecodeError as exc:
        raise ApiError(
            400,
            "malformed_token",
            f"the token is not a search token ({exc.message}); send the hex of the "
            "canonical encoding your client's search index built",
        ) from None
    state = service.chain.ledger.state
    access = allowed(
        lambda: contracts.search_access(state, owner, reader.account, reader.purpose, reader.now_ms)
    )
    values = service.chain.search(owner, token)
    disclose(service, reader, access, DisclosureKind.SEARCH, owner)
    return SearchResultModel.model_validate({"owner": owner, "values": values})


@router.get(
    "/research/{institution}",
    tags=["research"],
    summary="What an institution may read (signed read, by the institution)",
    responses=READ_RESPONSES,
)
async def research(
    institution: AddressPath, service: Service, reader: SignedRead
) -> ResearchDataModel:
    """The institution's research copies with their key wraps, to the institution
    itself; each copy served is logged as a disclosure of its patient's record."""
    raw = parse.address(institution, "institution")
    if reader.account != raw:
        raise ApiError(
            403,
            contracts.ReadNotAllowed.code,
            f"{address_of(reader.account)} may not read the research copies shared with "
            f"{address_of(raw)}: only that institution reads them",
        )
    entries = service.chain.research_data(raw)
    for entry in entries:
        serve_research_copy(service, reader, entry)
    return ResearchDataModel.model_validate({"institution": raw, "entries": entries})


# -- anonymous scopes (names may hold '/', hence the path converters) --------------------


@router.get("/anon/{scope:path}/entries", tags=["anonymous"], summary="A scope's entries")
async def anon_entries(scope: ScopePath, chain: Chain) -> AnonEntriesModel:
    _scope(chain, scope)
    return AnonEntriesModel.model_validate({"scope": scope, "entries": chain.anon_entries(scope)})


@router.get("/anon/{scope:path}", tags=["anonymous"], summary="An anonymous scope")
async def anon_scope(scope: ScopePath, chain: Chain) -> AnonScopeModel:
    return AnonScopeModel.of(_scope(chain, scope))


def _validators(service: NodeService) -> ValidatorsModel:
    """Genesis validators with stake, votes and bans read from state. The PBFT voting
    set is the genesis validators (PBFT, AFBFT); under DPoS it is the elected committee,
    known when the chain is a LedgerApp (the networked node's)."""
    chain, genesis = service.chain, service.genesis
    state, params = chain.ledger.state, genesis.params
    height = chain.height + 1
    keys = [v.public_key for v in genesis.validators]
    voting: set[bytes] | None = set(keys)
    primaries: set[bytes] | None = None
    if params.consensus == "dpos":
        voting = set(chain.committee()) if isinstance(chain, LedgerApp) else None
    if params.consensus == "afbft" and isinstance(chain, LedgerApp):
        primaries = set(chain.primary_candidates())
    rows = []
    for v in genesis.validators:
        address = address_from_public_key(v.public_key)
        candidate = contracts.get_candidate(state, address)
        row = {
            "name": v.name,
            "public_key": v.public_key,
            "address": address,
            "power": v.power,
            "bonded": contracts.get_stake(state, address).bonded,
            "votes": 0 if candidate is None else candidate.votes,
            "banned": contracts.is_banned(state, address, height),
            "banned_until": contracts.get_ban(state, address),
            "voting": None if voting is None else v.public_key in voting,
            "primary_candidate": None if primaries is None else v.public_key in primaries,
        }
        rows.append(ValidatorModel.model_validate(row))
    return ValidatorsModel(consensus=params.consensus, height=chain.height, validators=rows)

"""Read-only endpoints on committed state: blocks, genesis, accounts, the registry,
records, search, research, anonymous scopes, staking and validators."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from medchain import app as contracts
from medchain.api import _parse as parse
from medchain.api._errors import ApiError
from medchain.api._lookups import registered_patient
from medchain.api._models import (
    MAX_ROLE_INDEX,
    MAX_VERSION_NUMBER,
    AccountModel,
    AnonEntriesModel,
    AnonScopeModel,
    AuditModel,
    BlockModel,
    CandidatesModel,
    GenesisModel,
    IdentityModel,
    PatientRecordsModel,
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
    account_model,
    address_of,
    anon_entries_model,
    audit_model,
    block_model,
    candidates_model,
    genesis_model,
    hex_of,
    identity_model,
    record_model,
    research_model,
    scope_model,
    stake_model,
    version_model,
)
from medchain.api._service import NodeService
from medchain.app import Role
from medchain.crypto import SearchToken, address_from_public_key
from medchain.node import LedgerApp
from medchain.store import MAX_HEIGHT
from medchain.types import DecodeError, decode

AddressPath = Annotated[str, Path(description="Account address, bech32 (mc1...).")]
RecordIdPath = Annotated[str, Path(description="Record id: 32 hex characters.")]
ScopePath = Annotated[str, Path(description="Scope name (URL-encoded).")]


def _not_found(code: str, message: str) -> ApiError:
    return ApiError(404, code, message)


def state_routes(service: NodeService) -> APIRouter:
    router = APIRouter(prefix="/v1")

    def chain_record(record_id: bytes) -> contracts.Record:
        record = service.chain.record(record_id)
        if record is None:
            raise _not_found(
                contracts.UnknownRecord.code,
                f"no record {record_id.hex()} on this chain; check the id",
            )
        return record

    # -- blocks and genesis -----------------------------------------------------------

    @router.get("/blocks/latest", tags=["blocks"], summary="The latest committed block")
    async def latest_block() -> BlockModel:
        return block_model(service.chain.latest_block(), service.genesis)

    @router.get("/blocks/{height}", tags=["blocks"], summary="The block at a height")
    async def block_at(height: Annotated[int, Path(ge=0, le=MAX_HEIGHT)]) -> BlockModel:
        latest = service.chain.height
        block = service.chain.block_at(height) if height <= latest else None
        if block is None:
            raise _not_found(
                "unknown_block", f"no block at height {height}; the latest is {latest}"
            )
        return block_model(block, service.genesis)

    @router.get("/genesis", tags=["chain"], summary="The genesis document")
    async def genesis() -> GenesisModel:
        return genesis_model(service.genesis)

    @router.get("/validators", tags=["chain"], summary="The validators and their standing")
    async def validators() -> ValidatorsModel:
        return _validators(service)

    # -- accounts and the registry ------------------------------------------------------

    @router.get("/accounts/{address}", tags=["accounts"], summary="Balance and nonce")
    async def account(address: AddressPath) -> AccountModel:
        raw = parse.address(address)
        return account_model(raw, service.chain.account(raw))

    @router.get("/identities/{address}", tags=["accounts"], summary="A registered identity")
    async def identity(address: AddressPath) -> IdentityModel:
        raw = parse.address(address)
        found = service.chain.identity(raw)
        if found is None:
            raise _not_found(
                contracts.NotRegistered.code, f"{address_of(raw)} is not registered on this chain"
            )
        return identity_model(found)

    @router.get("/roles/{role}", tags=["accounts"], summary="How many accounts hold a role")
    async def role_count(role: Role) -> RoleCountModel:
        return RoleCountModel(role=role.value, count=service.chain.role_count(role))

    @router.get("/roles/{role}/{index}", tags=["accounts"], summary="The n-th holder of a role")
    async def role_member(
        role: Role, index: Annotated[int, Path(ge=0, le=MAX_ROLE_INDEX)]
    ) -> RoleMemberModel:
        count = service.chain.role_count(role)
        member = service.chain.role_member(role, index) if index < count else None
        if member is None:
            raise _not_found(
                "no_member", f"{count} accounts hold role {role.value}; index {index} is past them"
            )
        return RoleMemberModel(role=role.value, index=index, address=address_of(member))

    @router.get("/stakes/{address}", tags=["staking"], summary="Bonded stake and votes")
    async def stake(address: AddressPath) -> StakeModel:
        raw = parse.address(address)
        return stake_model(raw, service.chain.stake(raw))

    @router.get("/candidates", tags=["staking"], summary="Candidates in election order")
    async def candidates() -> CandidatesModel:
        return candidates_model(service.chain.candidates())

    # -- records --------------------------------------------------------------------------

    @router.get("/records/{record_id}", tags=["records"], summary="A record's public metadata")
    async def record(record_id: RecordIdPath) -> RecordModel:
        return record_model(chain_record(parse.record_id(record_id)))

    @router.get("/records/{record_id}/versions/{number}", tags=["records"], summary="One version")
    async def record_version(
        record_id: RecordIdPath, number: Annotated[int, Path(ge=1, le=MAX_VERSION_NUMBER)]
    ) -> RecordVersionModel:
        raw = parse.record_id(record_id)
        count = chain_record(raw).version_count
        version = service.chain.record_version(raw, number) if number <= count else None
        if version is None:
            raise _not_found(
                "unknown_version", f"record {raw.hex()} has versions 1 to {count}, not {number}"
            )
        return version_model(version)

    @router.get("/records/{record_id}/audit", tags=["records"], summary="A record's audit trail")
    async def audit(record_id: RecordIdPath) -> AuditModel:
        raw = parse.record_id(record_id)
        chain_record(raw)
        return audit_model(raw, service.chain.audit(raw))

    @router.get("/patients/{address}/records", tags=["records"], summary="A patient's records")
    async def patient_records(address: AddressPath) -> PatientRecordsModel:
        raw = registered_patient(service.chain, address)
        ids = service.chain.patient_records(raw)
        return PatientRecordsModel(patient=address_of(raw), record_ids=[hex_of(i) for i in ids])

    @router.post("/search", tags=["records"], summary="Look up an encrypted keyword index")
    async def search(body: SearchBody) -> SearchResultModel:
        """The node sees label keys only: it returns the encrypted values stored
        under them, which only the index owner (or a capability holder) can read."""
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
        values = service.chain.search(owner, token)
        return SearchResultModel(
            owner=address_of(owner), values=[[hex_of(v) for v in vs] for vs in values]
        )

    @router.get(
        "/research/{institution}", tags=["research"], summary="What an institution may read"
    )
    async def research(institution: AddressPath) -> ResearchDataModel:
        raw = parse.address(institution, "institution")
        return research_model(raw, service.chain.research_data(raw))

    # -- anonymous scopes (names may hold '/', hence the path converters) --------------------

    def scope_of(name: str) -> contracts.AnonScope:
        scope = service.chain.anon_scope(name)
        if scope is None:
            raise _not_found(
                contracts.UnknownScope.code, f"no anonymous scope {name!r}; check its name"
            )
        return scope

    @router.get("/anon/{scope:path}/entries", tags=["anonymous"], summary="A scope's entries")
    async def anon_entries(scope: ScopePath) -> AnonEntriesModel:
        scope_of(scope)
        return anon_entries_model(scope, service.chain.anon_entries(scope))

    @router.get("/anon/{scope:path}", tags=["anonymous"], summary="An anonymous scope")
    async def anon_scope(scope: ScopePath) -> AnonScopeModel:
        return scope_model(scope_of(scope))

    return router


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
        rows.append(
            ValidatorModel(
                name=v.name,
                public_key=hex_of(v.public_key),
                address=address_of(address),
                power=v.power,
                bonded=contracts.get_stake(state, address).bonded,
                votes=0 if candidate is None else candidate.votes,
                banned=contracts.is_banned(state, address, height),
                banned_until=contracts.get_ban(state, address),
                voting=None if voting is None else v.public_key in voting,
                primary_candidate=None if primaries is None else v.public_key in primaries,
            )
        )
    return ValidatorsModel(consensus=params.consensus, height=chain.height, validators=rows)

"""The routes on who may act: organisations, their staff, proposals, an account's
credentials with history, a patient's attestations; 404 for what is not on chain, 422
for a malformed id; and the refusals of these contracts answered at submission."""

from __future__ import annotations

import httpx
import pytest

from medchain.app import (
    ApproveArgs,
    AttestArgs,
    Attestation,
    Credential,
    CredentialActionArgs,
    CredentialEvent,
    CredentialRole,
    IssueArgs,
    Organisation,
    OrganisationSpec,
    OrgKind,
    Proposal,
    ProposalAction,
    ProposeArgs,
    RegisterArgs,
    Role,
)
from medchain.crypto import AccountKeys, format_address
from medchain.node import LocalChain
from medchain.types import decode, tx_id
from tests.api.harness import (
    FakeNode,
    Org,
    api_client,
    credential,
    make_chain,
    ok,
    refused,
    signed,
    submit_as,
)

HOSPITAL = Org.generate("st-mary")
CLINIC = Org.generate("riverside", OrgKind.CLINIC)
INSTITUTE = Org.generate("inst", OrgKind.RESEARCH)
DOCTOR = AccountKeys.generate()
PATIENT = AccountKeys.generate()


def _spec(org: Org, name: str) -> OrganisationSpec:
    return OrganisationSpec(
        org.org_id,
        name,
        org.kind,
        (org.admin.public_key,),
        org.account.public_key,
        org.account.encryption_public_key,
    )


@pytest.fixture(scope="module")
def chain() -> LocalChain:
    chain = make_chain(orgs=(HOSPITAL, CLINIC, INSTITUTE))
    credential(chain, HOSPITAL, DOCTOR.address, CredentialRole.DOCTOR, "Dr. Ana Ruiz")
    submit_as(
        chain, HOSPITAL.admin, "credentials.suspend", CredentialActionArgs(DOCTOR.address, "x")
    )
    register = RegisterArgs(Role.PATIENT, "", PATIENT.encryption_public_key)
    submit_as(chain, PATIENT, "registry.register", register)
    submit_as(chain, CLINIC.admin, "orgs.attest", AttestArgs(PATIENT.address))
    newcomer = Org.generate("north-lab", OrgKind.LABORATORY)
    propose = ProposeArgs(ProposalAction.JOIN, _spec(newcomer, "North Lab"), "a lab")
    submit_as(chain, HOSPITAL.admin, "orgs.propose", propose)
    return chain


@pytest.fixture
def api(chain: LocalChain) -> httpx.Client:
    return api_client(FakeNode(chain))


def test_organisations_and_one_organisation(chain: LocalChain, api: httpx.Client) -> None:
    listed = ok(api.get("/v1/orgs"))["organisations"]
    assert [o["org_id"] for o in listed] == ["inst", "riverside", "st-mary"]
    one = ok(api.get("/v1/orgs/st-mary"))
    assert one == listed[2]
    assert one["kind"] == "hospital" and one["member"] is True
    assert one["account"] == format_address(HOSPITAL.account.address)
    assert one["admins"] == [format_address(HOSPITAL.admin.address)]
    assert decode(Organisation, bytes.fromhex(one["encoded"])) == chain.organisation("st-mary")


def test_unknown_and_malformed_organisation_ids(api: httpx.Client) -> None:
    for path in ("/v1/orgs/nobody", "/v1/orgs/nobody/staff"):
        assert "GET /v1/orgs" in refused(api.get(path), 404, "unknown_organisation")
    for bad in ("Capital", "-dash", "x", "a" * 33, "under_score"):
        refused(api.get(f"/v1/orgs/{bad}"), 422, "invalid_org_id")
        refused(api.get(f"/v1/orgs/{bad}/staff"), 422, "invalid_org_id")


def test_staff_and_an_accounts_credentials_with_history(
    chain: LocalChain, api: httpx.Client
) -> None:
    (staff,) = ok(api.get("/v1/orgs/st-mary/staff"))["staff"]
    assert staff["subject"] == format_address(DOCTOR.address)
    assert (staff["role"], staff["name"], staff["status"]) == (
        "doctor",
        "Dr. Ana Ruiz",
        "suspended",
    )
    assert ok(api.get("/v1/orgs/riverside/staff"))["staff"] == []
    body = ok(api.get(f"/v1/accounts/{format_address(DOCTOR.address)}/credentials"))
    (held,) = body["credentials"]
    assert (
        decode(Credential, bytes.fromhex(held["encoded"]))
        == chain.credentials_of(DOCTOR.address)[0]
    )
    assert [e["action"] for e in held["history"]] == ["issued", "suspended"]
    events = [decode(CredentialEvent, bytes.fromhex(e["encoded"])) for e in held["history"]]
    assert events == chain.credential_history(DOCTOR.address, "st-mary")
    assert held["history"][1]["actor"] == format_address(HOSPITAL.admin.address)
    stranger = format_address(AccountKeys.generate().address)
    assert ok(api.get(f"/v1/accounts/{stranger}/credentials"))["credentials"] == []
    refused(api.get("/v1/accounts/mc1nope/credentials"), 400, "invalid_address")


def test_proposals_and_one_proposal(chain: LocalChain, api: httpx.Client) -> None:
    (listed,) = ok(api.get("/v1/proposals"))["proposals"]
    one = ok(api.get(f"/v1/proposals/{listed['proposal_id']}"))
    assert one == listed
    assert (one["action"], one["status"], one["proposer_org"]) == ("join", "open", "st-mary")
    assert one["spec"]["org_id"] == "north-lab" and one["approvals_needed"] == 2
    assert [a["org_id"] for a in one["approvals"]] == ["st-mary"]
    assert decode(Proposal, bytes.fromhex(one["encoded"])) == chain.proposal(one["proposal_id"])
    refused(api.get("/v1/proposals/9999"), 404, "unknown_proposal")
    refused(api.get("/v1/proposals/first"), 422, "invalid_request")


def test_a_patients_attestations(chain: LocalChain, api: httpx.Client) -> None:
    body = ok(api.get(f"/v1/patients/{format_address(PATIENT.address)}/attestations"))
    assert body["verified"] is True
    (attestation,) = body["attestations"]
    assert attestation["org_id"] == "riverside"
    assert attestation["attester"] == format_address(CLINIC.admin.address)
    decoded = decode(Attestation, bytes.fromhex(attestation["encoded"]))
    assert [decoded] == chain.attestations_of(PATIENT.address)
    doctor = format_address(DOCTOR.address)  # not a registered patient
    refused(api.get(f"/v1/patients/{doctor}/attestations"), 404, "not_registered")


def test_refusals_of_these_contracts_are_answered_at_submission() -> None:
    chain = make_chain(orgs=(HOSPITAL, CLINIC, INSTITUTE))
    api = api_client(FakeNode(chain))
    height = chain.height

    def post(keys: AccountKeys, method: str, args: object) -> httpx.Response:
        tx = signed(keys, chain.account(keys.address).nonce, method, args)
        response = api.post("/v1/txs?wait=1", json={"tx": tx.encoded.hex()})
        assert chain.receipt(tx_id(tx)) is None  # refused: nothing committed
        return response

    outsider = AccountKeys.generate()
    issue = IssueArgs(outsider.address, CredentialRole.DOCTOR, "Dr. Self", 0)
    refused(post(outsider, "credentials.issue", issue), 403, "not_an_admin")
    past = IssueArgs(outsider.address, CredentialRole.DOCTOR, "Dr. Late", 1)
    refused(post(HOSPITAL.admin, "credentials.issue", past), 422, "invalid_argument")
    refused(post(HOSPITAL.admin, "orgs.approve", ApproveArgs(7)), 409, "proposal_error")
    assert chain.height == height
    assert chain.credentials_of(outsider.address) == []


def test_documented_under_organisations(api: httpx.Client) -> None:
    doc = ok(api.get("/openapi.json"))
    for path in (
        "/v1/orgs",
        "/v1/orgs/{org_id}",
        "/v1/orgs/{org_id}/staff",
        "/v1/proposals",
        "/v1/proposals/{proposal_id}",
        "/v1/accounts/{address}/credentials",
        "/v1/patients/{address}/attestations",
    ):
        assert doc["paths"][path]["get"]["tags"] == ["organisations"], path
    described = {tag["name"] for tag in doc["tags"] if tag["description"]}
    assert {"organisations", "proxies"} <= described

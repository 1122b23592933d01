"""Break-glass from the SDK: the patient's policy, the organisations' answers and the
clinician's reading of an emergency set.

The patient's client makes the emergency key, splits it t-of-n among the member
organisations, seals each share to the organisation's account and forgets the key:
nobody holds it whole from then on. Each record of a type in the set gets its content
key wrapped to the key's point. An organisation's account answers an open request with
one partial decryption (and its proof) per snapshotted wrap, sealed to the clinician.
The clinician checks every proof, combines t answers per wrap, and opens the records.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol, runtime_checkable

from medchain import app
from medchain.app import (
    DEFAULT_EMERGENCY_TYPES,
    PARTIAL_SIZE,
    AnswerArgs,
    EmergencyPolicyArgs,
    EmergencyRequest,
    OpenArgs,
    SealedShare,
    WrapRecordArgs,
    emergency_context,
    new_request_id,
)
from medchain.client._backend import ChainBackend
from medchain.client._emergency_wraps import emergency_wrap_args, in_emergency_set
from medchain.client._envelope import unwrap_for, version_context
from medchain.client._sdk import MedchainClient, UnknownParty
from medchain.crypto import (
    AccountKeys,
    DecryptionFailed,
    DleqProof,
    EmergencyWrap,
    Share,
    combine_points,
    decrypt_content,
    encrypt_content,
    new_content_key,
    new_threshold_key,
    open_emergency_wrap,
    partial_decrypt,
    share_commitment,
    split_secret,
    unwrap_key,
    verify_partial,
    wrap_key,
)
from medchain.types import MedchainError, Receipt, TxFailed


class EmergencyNotOpen(MedchainError):
    """The emergency set cannot be opened (yet): too few valid answers, or none."""

    code = "emergency_not_open"


@runtime_checkable
class EmergencyChain(ChainBackend, Protocol):
    """The queries break-glass needs besides ChainBackend's (a LocalChain answers them)."""

    def member_organisations(self) -> list[app.Organisation]: ...

    def emergency_request(self, request_id: bytes) -> app.EmergencyRequest | None: ...

    def emergency_answers(self, request_id: bytes) -> list[app.EmergencyAnswer]: ...

    def pending_emergency_requests(self, org_id: str) -> list[app.EmergencyRequest]: ...

    def emergency_requests_of(self, patient: bytes) -> list[app.EmergencyRequest]: ...

    def emergency_requests_by_org(self, org_id: str) -> list[app.EmergencyRequest]: ...

    def notifications_of(self, patient: bytes) -> list[app.Notification]: ...


@dataclass(frozen=True, slots=True)
class EmergencyRecord:
    record_id: bytes
    version: int
    resource: dict[str, Any]


def share_context(patient: bytes, org_id: str) -> bytes:
    return b"medchain/emergency-share/v1\x00" + patient + org_id.encode()


def answer_context(request_id: bytes, org_id: str) -> bytes:
    return b"medchain/emergency-answer/v1\x00" + request_id + org_id.encode()


def default_threshold(holders: int) -> int:
    """Two thirds of the organisations, rounded up, and never fewer than two."""
    return max(2, -(-2 * holders // 3))


# -- the patient ------------------------------------------------------------------------


def policy_args(
    patient: bytes,
    organisations: Mapping[str, bytes],
    threshold: int | None = None,
    resource_types: Iterable[str] = DEFAULT_EMERGENCY_TYPES,
) -> EmergencyPolicyArgs:
    """A new emergency key split among `organisations` (org id -> its account's encryption
    key), each share sealed to its organisation. The key itself is not kept."""
    org_ids = sorted(organisations)
    if len(org_ids) < 2:
        raise EmergencyNotOpen(
            "break-glass needs at least two member organisations: no single organisation "
            "may hold the emergency key alone"
        )
    t = default_threshold(len(org_ids)) if threshold is None else threshold
    secret, public = new_threshold_key()
    shares = split_secret(secret, t, len(org_ids))
    sealed = tuple(
        SealedShare(
            org_id,
            share_commitment(share),
            wrap_key(share.value, organisations[org_id], share_context(patient, org_id)),
        )
        for org_id, share in zip(org_ids, shares, strict=True)
    )
    return EmergencyPolicyArgs(True, tuple(sorted(set(resource_types))), public, t, sealed)


def set_up_emergency_policy(
    client: MedchainClient,
    threshold: int | None = None,
    resource_types: Iterable[str] = DEFAULT_EMERGENCY_TYPES,
    patient: bytes | None = None,
) -> Receipt:
    """Patient, or their `grant` proxy (`patient`): turn break-glass on, or renew the key
    after the consortium changed, then put the records already on chain that belong in
    the set into it (those this account can read)."""
    chain = emergency_chain(client)
    whose = patient or client.address
    keys = {
        org.org_id: client._identity(org.account).encryption_key
        for org in chain.member_organisations()
    }
    args = policy_args(whose, keys, threshold, resource_types)
    receipt = client.send("emergency.set_policy", _for(args, whose, client))
    wrap_emergency_set(client, whose)
    return receipt


def opt_out_of_emergency(client: MedchainClient, patient: bytes | None = None) -> Receipt:
    """Patient (or their `grant` proxy): no emergency set at all; existing wraps stay on
    chain, but no request can be opened."""
    whose = patient or client.address
    args = EmergencyPolicyArgs(False, (), b"", 0, ())
    return client.send("emergency.set_policy", _for(args, whose, client))


def _for(args: EmergencyPolicyArgs, patient: bytes, client: MedchainClient) -> EmergencyPolicyArgs:
    """The policy arguments naming `patient` when a proxy sends them."""
    return args if patient == client.address else replace(args, patient=patient)


def wrap_emergency_set(client: MedchainClient, patient: bytes | None = None) -> list[bytes]:
    """Wrap the latest version of each of the patient's records that the policy covers
    and this account can read (a record wrapped before gets its wrap replaced, under the
    current key). Returns the records wrapped."""
    whose = patient or client.address
    policy = client.chain.emergency_policy(whose)
    if policy is None or not policy.enabled:
        return []
    done = []
    for record_id in client.chain.patient_records(whose):
        record = client.record(record_id)
        stored = client.chain.record_version(record_id, record.version_count)
        assert stored is not None
        readable = any(w.reader == client.address for w in stored.wraps)
        if record.resource_type not in policy.resource_types or not readable:
            continue
        if not in_emergency_set(policy, client.read_record(record_id)):
            continue
        content_key = unwrap_for(
            client.keys, client._my_wrap(stored), version_context(record_id, stored.number)
        )
        wrap = emergency_wrap_args(policy, content_key, record_id, stored.number)
        client.send("emergency.wrap", WrapRecordArgs(record_id, wrap))
        done.append(record_id)
    return done


# -- the clinician ----------------------------------------------------------------------


def open_emergency(client: MedchainClient, patient: bytes, reason: str) -> bytes:
    """Credentialed clinician: open the patient's emergency set; returns the request id
    (TxFailed, saying why, when the chain refuses)."""
    nonce = client.chain.account(client.address).nonce
    client.send("emergency.open", OpenArgs(patient, reason))
    return new_request_id(client.address, nonce)


def read_emergency_set(client: MedchainClient, request_id: bytes) -> list[EmergencyRecord]:
    """Clinician: the records of an emergency request, once `threshold` organisations have
    answered with partials whose proofs hold; EmergencyNotOpen before that."""
    chain = emergency_chain(client)
    request = chain.emergency_request(request_id)
    if request is None or request.clinician != client.address:
        raise EmergencyNotOpen(f"no emergency request {request_id.hex()} opened by this account")
    content_keys = emergency_content_keys(client.keys, request, chain.emergency_answers(request_id))
    found = []
    for item, content_key in zip(request.items, content_keys, strict=True):
        stored = client.chain.record_version(item.record_id, item.version)
        assert stored is not None
        plaintext = decrypt_content(
            content_key,
            client._fetch(stored.cid, stored.ciphertext_hash),
            version_context(item.record_id, item.version),
        )
        found.append(EmergencyRecord(item.record_id, item.version, dict(json.loads(plaintext))))
    return found


def emergency_content_keys(
    keys: AccountKeys, request: EmergencyRequest, answers: Sequence[app.EmergencyAnswer]
) -> list[bytes]:
    """The content key of each snapshotted record version, in the request's order, from
    the first `threshold` valid answers; EmergencyNotOpen while there are fewer."""
    partials = valid_partials(keys, request, answers)
    if len(partials) < request.threshold:
        raise EmergencyNotOpen(
            f"{len(partials)} of the {request.threshold} organisations needed have answered "
            f"request {request.request_id.hex()} with valid partials; wait for more answers"
        )
    chosen = dict(sorted(partials.items())[: request.threshold])
    return [
        open_emergency_wrap(
            combine_points({i: p[position] for i, p in chosen.items()}, request.threshold),
            EmergencyWrap(item.ephemeral, item.sealed_key),
            emergency_context(item.record_id, item.version),
        )
        for position, item in enumerate(request.items)
    ]


def valid_partials(
    keys: AccountKeys, request: EmergencyRequest, answers: Sequence[app.EmergencyAnswer]
) -> dict[int, list[bytes]]:
    """Per share index, the partials of each answer that opens and whose every proof
    holds against its organisation's commitment; other answers are left out."""
    found = {}
    for answer in answers:
        commitment = request.shares[answer.index - 1].commitment
        try:
            payload = decrypt_content(
                unwrap_for(
                    keys, answer.wrapped_key, answer_context(request.request_id, answer.org_id)
                ),
                answer.sealed_partials,
                answer_context(request.request_id, answer.org_id),
            )
        except DecryptionFailed:
            continue
        chunks = [payload[i : i + PARTIAL_SIZE] for i in range(0, len(payload), PARTIAL_SIZE)]
        if len(chunks) == len(request.items) and all(
            verify_partial(commitment, item.ephemeral, c[:32], DleqProof(c[32:64], c[64:]))
            for item, c in zip(request.items, chunks, strict=True)
        ):
            found[answer.index] = [c[:32] for c in chunks]
    return found


# -- the organisation -------------------------------------------------------------------


def answer_args(
    keys: AccountKeys, request: EmergencyRequest, org_id: str, clinician_key: bytes
) -> AnswerArgs:
    """The organisation account's answer: its share opened, one partial and proof per
    snapshotted wrap, sealed to the clinician's encryption key `clinician_key`."""
    index = app.share_index(request, org_id)
    if not index:
        raise EmergencyNotOpen(f"{org_id!r} holds no share of this request's emergency key")
    share = open_share(keys, request.patient, index, request.shares[index - 1])
    payload = b""
    for item in request.items:
        partial, proof = partial_decrypt(share, item.ephemeral)
        payload += partial + proof.challenge + proof.response
    context = answer_context(request.request_id, org_id)
    key = new_content_key()
    return AnswerArgs(
        request.request_id,
        wrap_key(key, clinician_key, context + request.clinician),
        encrypt_content(key, payload, context),
    )


def open_share(keys: AccountKeys, patient: bytes, index: int, sealed: SealedShare) -> Share:
    """The organisation account's share, checked against its public commitment."""
    value = unwrap_key(
        sealed.sealed, keys.encryption_private_key, share_context(patient, sealed.org_id)
    )
    share = Share(index, value)
    if share_commitment(share) != sealed.commitment:
        raise EmergencyNotOpen(
            f"the share sealed to {sealed.org_id!r} does not match its commitment; "
            "the patient's client must set the policy again"
        )
    return share


def answer_pending(client: MedchainClient) -> list[bytes]:
    """Organisation account: answer every open request holding a share of ours that we
    have not answered yet; returns the request ids answered. A request the chain refuses
    an answer to by then (expired, or its clinician lost the credential) is skipped."""
    chain = emergency_chain(client)
    org = next((o for o in chain.member_organisations() if o.account == client.address), None)
    if org is None:
        raise UnknownParty("this account is not the account of a member organisation")
    answered = []
    for request in chain.pending_emergency_requests(org.org_id):
        clinician_key = client._identity(request.clinician).encryption_key
        args = answer_args(client.keys, request, org.org_id, clinician_key)
        try:
            client.send("emergency.answer", args)
        except TxFailed:
            continue
        answered.append(request.request_id)
    return answered


def emergency_chain(client: MedchainClient) -> EmergencyChain:
    if not isinstance(client.chain, EmergencyChain):
        raise EmergencyNotOpen(
            "this chain backend does not answer break-glass queries; use a node that does"
        )
    return client.chain

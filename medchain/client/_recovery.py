"""Key recovery and rotation for a patient's client (a mixin of MedchainClient).

Setting up: a fresh recovery secret is split among the guardians, each share sealed
to its guardian, and the patient's encryption secrets are sealed under it (the kit);
the policy names them all by CID and the node keeps them with the transaction.
Recovering: a client holding a NEW key file asks for the account; each approving
guardian re-seals their share to the new key; once the waiting period has passed the
new client completes, combines the shares, opens the kit and keeps the old secrets as
retired ones, then re-wraps the patient's records for the new key and issues a new
kit. Planned rotation does the same without guardians, signed by the current key.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import TYPE_CHECKING, Protocol

from medchain import app
from medchain.app import (
    ApproveRecoveryArgs,
    RecoveryRequestArgs,
    RequestRecoveryArgs,
    RewrapArgs,
    RotateArgs,
    SetRecoveryPolicyArgs,
    ShareRef,
    VersionWrap,
    new_recovery_id,
    rotation_message,
)
from medchain.client._account import AccountCore
from medchain.client._backend import ChainBackend
from medchain.client._envelope import unwrap_for, version_context
from medchain.client._recovery_kit import (
    RecoveryShare,
    combine_recovery_shares,
    new_recovery_secret,
    open_kit,
    open_share,
    reshare_context,
    seal_kit,
    seal_share,
    share_context,
    split_recovery_secret,
)
from medchain.crypto import (
    AccountKeys,
    DecryptionFailed,
    format_address,
    sha256,
    unwrap_key,
    wrap_key,
)
from medchain.types import MedchainError, Receipt, TxFailed, cid_from_digest

DEFAULT_RECOVERY_DELAY_MS = 24 * 3_600_000


class RecoveryUnavailable(MedchainError):
    """A recovery step that cannot be taken now; the message says why and what to do."""

    code = "recovery_unavailable"


class RecoveryChain(ChainBackend, Protocol):
    """What recovery reads besides the usual (LocalChain and HttpChain have it)."""

    def recovery_policy(self, patient: bytes) -> app.RecoveryPolicy | None: ...

    def recovery_request(self, request_id: bytes) -> app.RecoveryRequest | None: ...

    def recovery_requests_of(self, patient: bytes) -> list[app.RecoveryRequest]: ...

    def guardian_recovery_requests(self, guardian: bytes) -> list[app.RecoveryRequest]: ...

    def patient_records(self, patient: bytes) -> list[bytes]: ...


def new_key_file_keys(keys: AccountKeys) -> AccountKeys:
    """Fresh keys to rotate `keys`'s account to: they sign for the same account and
    keep every encryption secret it used, current one last."""
    fresh = AccountKeys.generate()
    retired = (*keys.retired_encryption_secrets, keys.encryption_secret)
    return AccountKeys(fresh.signing_seed, fresh.encryption_secret, keys.address, retired)


def _proof(chain_id: str, account: bytes, new: AccountKeys) -> bytes:
    message = rotation_message(
        chain_id, account, new.public_key, new.encryption_public_key, new.ring_public_key
    )
    return new.sign(message)


class RecoveryActions(AccountCore):
    """A mixin of MedchainClient: guardians, recovery requests and key rotation."""

    if TYPE_CHECKING:

        def _fetch(self, cid: str, expected_hash: bytes) -> bytes: ...

    @property
    def _recovery_chain(self) -> RecoveryChain:
        chain = self.chain
        if not hasattr(chain, "recovery_policy"):
            raise RecoveryUnavailable("this chain backend cannot answer recovery queries")
        return chain  # type: ignore[return-value]

    # -- the patient's policy -------------------------------------------------------

    def set_up_recovery(
        self, guardians: Iterable[bytes], threshold: int, delay_ms: int = DEFAULT_RECOVERY_DELAY_MS
    ) -> Receipt:
        """Choose guardians (2 to 10 registered accounts) of whom `threshold` must
        approve a recovery, and the waiting period after their approvals. Replaces an
        earlier policy and kit."""
        chosen = tuple(sorted(set(guardians)))
        secret = new_recovery_secret()
        if not 2 <= threshold <= len(chosen):
            raise RecoveryUnavailable(
                f"choose a threshold between 2 and the number of guardians ({len(chosen)})"
            )
        shares = split_recovery_secret(secret, threshold, len(chosen))
        sealed = [
            seal_share(share, self._encryption_key_of(g), share_context(self.address, g))
            for g, share in zip(chosen, shares, strict=True)
        ]
        secrets = (*self.keys.retired_encryption_secrets, self.keys.encryption_secret)
        kit = seal_kit(secret, self.address, secrets)
        args = SetRecoveryPolicyArgs(
            chosen,
            threshold,
            delay_ms,
            cid_from_digest(sha256(kit)),
            sha256(kit),
            tuple(
                ShareRef(g, cid_from_digest(sha256(b)), sha256(b))
                for g, b in zip(chosen, sealed, strict=True)
            ),
        )
        tx = self.build("recovery.set_policy", args)
        receipt = self.chain.submit_with_body(tx, kit)
        for body in sealed:  # the same committed transaction names each share
            self.chain.submit_with_body(tx, body)
        return receipt

    def clear_recovery(self) -> Receipt:
        return self.send("recovery.clear_policy", app.ClearRecoveryPolicyArgs())

    def recovery_policy(self, patient: bytes | None = None) -> app.RecoveryPolicy | None:
        return self._recovery_chain.recovery_policy(patient or self.address)

    def recovery_requests(self, patient: bytes | None = None) -> list[app.RecoveryRequest]:
        return self._recovery_chain.recovery_requests_of(patient or self.address)

    def recovery_requests_to_approve(self) -> list[app.RecoveryRequest]:
        """Open requests that name this account as a guardian."""
        return self._recovery_chain.guardian_recovery_requests(self.address)

    def _encryption_key_of(self, address: bytes) -> bytes:
        identity = self.chain.identity(address)
        if identity is None or not identity.encryption_key:
            raise RecoveryUnavailable(
                f"{format_address(address)} is not registered with an encryption key; a "
                "guardian must be a registered account"
            )
        return identity.encryption_key

    # -- a recovery: the new key asks, guardians approve, the old key may cancel ----

    def request_recovery(self, patient: bytes) -> bytes:
        """From a client holding a NEW key file: ask to become `patient`'s key. Returns
        the request id the guardians approve."""
        if self.keys.account:
            raise RecoveryUnavailable(
                "request a recovery with a fresh key file (`medchain keys new`), not one "
                "that already signs for an account"
            )
        nonce = self.chain.account(self.address).nonce
        args = RequestRecoveryArgs(
            patient,
            self.keys.public_key,
            self.keys.encryption_public_key,
            self.keys.ring_public_key,
            _proof(self.chain.chain_id, patient, self.keys),
        )
        _committed(self.chain.submit(self.build("recovery.request", args, nonce=nonce)))
        return new_recovery_id(self.address, nonce)

    def approve_recovery(self, request_id: bytes) -> Receipt:
        """As a guardian: re-seal this guardian's share to the request's new key and
        approve. Check with the patient first (in person, by phone) that they asked."""
        request = self._open_request(request_id)
        policy = self.recovery_policy(request.patient)
        ref = (
            next((s for s in policy.shares if s.guardian == self.address), None) if policy else None
        )
        if ref is None:
            raise RecoveryUnavailable(
                f"{format_address(self.address)} holds no share of "
                f"{format_address(request.patient)}'s recovery"
            )
        share = open_share(
            self._fetch(ref.cid, ref.hash),
            self.keys.decryption_keys,
            share_context(request.patient, self.address),
        )
        context = reshare_context(request.request_id, self.address)
        body = seal_share(share, request.new_encryption_key, context)
        args = ApproveRecoveryArgs(request.request_id, cid_from_digest(sha256(body)), sha256(body))
        return self.send_with_body("recovery.approve", args, body)

    def cancel_recovery(self, request_id: bytes | None = None) -> Receipt:
        """With the account's current key: cancel a recovery (the open one by default)."""
        if request_id is None:
            found = [r for r in self.recovery_requests() if r.status is app.RecoveryStatus.OPEN]
            if not found:
                raise RecoveryUnavailable("no recovery request is open for this account")
            request_id = found[-1].request_id
        return self.send("recovery.cancel", RecoveryRequestArgs(request_id))

    def complete_recovery(self, request_id: bytes) -> AccountKeys:
        """From the requesting client, once the waiting period passed: take over the
        account, restore its old encryption secrets from the kit, re-wrap its records
        for the new key and issue a new kit. Returns the keys to save as the key file
        (this client uses them from now on). Run again after a failure once the request
        is completed, it restores without completing again."""
        request = self._recovery_chain.recovery_request(request_id)
        done = request is not None and request.status is app.RecoveryStatus.COMPLETED
        if not done or request is None or request.new_public_key != self.keys.public_key:
            request = self._open_request(request_id)  # else: restore again after a failure
        policy = self.recovery_policy(request.patient)
        if policy is None:
            raise RecoveryUnavailable("the patient's recovery policy is gone")
        if not done:
            _committed(self.send("recovery.complete", RecoveryRequestArgs(request_id)))
        shares = [self._reshared(request, a) for a in request.approvals]
        secret = combine_recovery_shares(shares[: policy.threshold])
        old = open_kit(secret, request.patient, self._fetch(policy.kit_cid, policy.kit_hash))
        self.keys = replace(
            self.keys,
            account=request.patient,
            retired_encryption_secrets=tuple(s for s in old if s != self.keys.encryption_secret),
        )
        self.after_key_change()
        return self.keys

    def _reshared(
        self, request: app.RecoveryRequest, approval: app.RecoveryApproval
    ) -> RecoveryShare:
        return open_share(
            self._fetch(approval.cid, approval.hash),
            (self.keys.encryption_private_key,),
            reshare_context(request.request_id, approval.guardian),
        )

    def _open_request(self, request_id: bytes) -> app.RecoveryRequest:
        request = self._recovery_chain.recovery_request(request_id)
        if request is None:
            raise RecoveryUnavailable(f"no recovery request {request_id.hex()} on this chain")
        if request.status is not app.RecoveryStatus.OPEN:
            raise RecoveryUnavailable(
                f"recovery request {request_id.hex()} is {request.status.value}"
            )
        return request

    # -- planned rotation -----------------------------------------------------------

    def rotate_keys(self, new: AccountKeys) -> Receipt:
        """Move the account to `new` (from `new_key_file_keys`, saved first): sign the
        rotation with the current key, then re-wrap the records and re-issue the kit
        with the new one."""
        args = RotateArgs(
            new.public_key,
            new.encryption_public_key,
            new.ring_public_key,
            _proof(self.chain.chain_id, self.address, new),
        )
        receipt = _committed(self.send("keys.rotate", args))
        self.keys = new
        self.after_key_change()
        return receipt

    def after_key_change(self) -> None:
        """Re-wrap the patient's records for the current key and, with a policy,
        re-issue the recovery kit so it holds the current secret too."""
        self.rewrap_records()
        policy = self.recovery_policy()
        if policy is not None:
            self.set_up_recovery(policy.guardians, policy.threshold, policy.delay_ms)

    def rewrap_records(self) -> list[bytes]:
        """Replace the owner's wraps on every version of this patient's records that
        the new key cannot open yet; returns the records re-wrapped."""
        done: list[bytes] = []
        for record_id in self._recovery_chain.patient_records(self.address):
            wraps = self._new_wraps(record_id)
            if wraps:
                _committed(self.send("records.rewrap", RewrapArgs(record_id, wraps)))
                done.append(record_id)
        return done

    def _new_wraps(self, record_id: bytes) -> tuple[VersionWrap, ...]:
        """Fresh owner wraps for the versions the current key cannot open, and for the
        latest (the contract wants it named); () when every version already opens."""
        record = self.chain.record(record_id)
        if record is None or record.owner != self.address or record.erased_height:
            return ()
        own: dict[int, bytes] = {}
        for number in range(1, record.version_count + 1):
            version = self.chain.record_version(record_id, number)
            for wrap in version.wraps if version else ():
                if wrap.reader == self.address:
                    own[number] = wrap.wrapped_key
        stale = [n for n, wrapped in own.items() if not self._opens_now(record_id, n, wrapped)]
        if not stale or record.version_count not in own:
            return ()
        found: list[VersionWrap] = []
        for number in sorted({*stale, record.version_count}):
            context = version_context(record_id, number)
            key = unwrap_for(self.keys, own[number], context)
            fresh = wrap_key(key, self.keys.encryption_public_key, context + self.address)
            found.append(VersionWrap(number, fresh))
        return tuple(found)

    def _opens_now(self, record_id: bytes, number: int, wrapped: bytes) -> bool:
        """Whether the current encryption key alone opens the owner's wrap."""
        info = version_context(record_id, number) + self.address
        try:
            unwrap_key(wrapped, self.keys.encryption_private_key, info)
        except DecryptionFailed:
            return False
        return True


def _committed(receipt: Receipt) -> Receipt:
    if not receipt.ok:
        raise TxFailed(receipt)
    return receipt

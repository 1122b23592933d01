"""Named errors of the state machine.

`TxRejected` subclasses mean the transaction is not valid at all (bad signature,
replay, wrong nonce, oversized, malformed): it is never included and changes
nothing. `ContractError` subclasses mean a well-formed, correctly signed call that
the contract refused: state is left exactly as it was.
"""

from __future__ import annotations

from medchain.types import MedchainError


class TxRejected(MedchainError):
    code = "tx_rejected"


class MalformedTx(TxRejected):
    code = "malformed_tx"


class TxTooLarge(TxRejected):
    code = "tx_too_large"


class WrongChain(TxRejected):
    code = "wrong_chain"


class InvalidSignature(TxRejected):
    code = "invalid_signature"


class NonceReused(TxRejected):
    """The nonce was already consumed: a replay, or a duplicate submission."""

    code = "nonce_reused"


class NonceGap(TxRejected):
    code = "nonce_gap"


class FeeTooLow(TxRejected):
    code = "fee_too_low"


class InsufficientFunds(TxRejected):
    code = "insufficient_funds"


class UnknownMethod(TxRejected):
    code = "unknown_method"


class KeyRetired(TxRejected):
    """The signing key was the account's once; the account has rotated to another."""

    code = "key_retired"


class ContractError(MedchainError):
    code = "contract_error"


class InvalidArgument(ContractError):
    code = "invalid_argument"


class NotRegistered(ContractError):
    code = "not_registered"


class AlreadyRegistered(ContractError):
    code = "already_registered"


class WrongRole(ContractError):
    code = "wrong_role"


class UnknownRecord(ContractError):
    code = "unknown_record"


class NotOwner(ContractError):
    code = "not_owner"


class NotAuthorised(ContractError):
    code = "not_authorised"


class ReaderRequired(NotAuthorised):
    """A record's key wraps leave out a reader the patient requires (a `read` proxy, or
    the reader of a standing consent)."""

    code = "reader_required"


class RecordErased(ContractError):
    """The record was erased by its patient: nothing of it can be read or changed."""

    code = "record_erased"


class AlreadyAuthorised(ContractError):
    code = "already_authorised"


class KeyWrapMismatch(ContractError):
    """The wrapped keys of a version do not match exactly the owner and current readers."""

    code = "key_wrap_mismatch"


class BalanceTooLow(ContractError):
    code = "balance_too_low"


class StakeError(ContractError):
    code = "stake_error"


class InvalidEvidence(ContractError):
    """Misbehaviour evidence that does not prove an offence: nothing is punished."""

    code = "invalid_evidence"


class ForgedEvidence(InvalidEvidence):
    """A signature in the evidence does not verify: the evidence is forged or damaged."""

    code = "forged_evidence"


class NotEnoughAccusations(InvalidEvidence):
    """Fewer than 2f+1 distinct validators accuse the proposal."""

    code = "not_enough_accusations"


class DuplicateEvidence(InvalidEvidence):
    """This very evidence was already reported and punished."""

    code = "duplicate_evidence"


class AlreadyPunished(InvalidEvidence):
    """Other evidence of the same offence (primary, height, round) was already punished."""

    code = "already_punished"


class LabelTaken(ContractError):
    """An encrypted index label is already in the submitter's index: index entries are
    written once and never overwritten."""

    code = "label_taken"


class NotCredentialed(ContractError):
    """The sender holds no valid credential for the role the call needs."""

    code = "not_credentialed"


class NotAnAdmin(ContractError):
    """The sender is not an admin of a member organisation."""

    code = "not_an_admin"


class UnknownOrganisation(ContractError):
    code = "unknown_organisation"


class ProposalError(ContractError):
    """A membership proposal or approval that cannot be made."""

    code = "proposal_error"


class NotAProxy(ContractError):
    """No proxy relation, outside its scope, or expired."""

    code = "not_a_proxy"


class EmergencyError(ContractError):
    code = "emergency_error"


class RecoveryError(ContractError):
    """A key recovery step that the policy or the request's state does not allow."""

    code = "recovery_error"


class RecoveryNotReady(RecoveryError):
    """Completing a recovery before enough guardians approved and the delay passed."""

    code = "recovery_not_ready"

"""The state transition: `apply_tx(state, block, tx) -> Receipt`.

Order of checks, each a named rejection that changes nothing: size, chain id,
method, arguments, signature, nonce (replay), fee. Then the fee is charged and the
nonce consumed; the contract call runs in its own layer, so a refused call keeps
the fee and nonce change but nothing else.

Anonymous transactions (`ANONYMOUS_METHODS`) have no sender, nonce or fee: their
signature field holds a ring signature over the same signing bytes, checked
against the ring named in their arguments; the key image, unique per scope,
stands in for the nonce.
"""

from __future__ import annotations

from typing import Any

from medchain.app import (
    _accounts,
    _anon,
    _attestations,
    _consents,
    _credentials,
    _devices,
    _disclosure_heads,
    _emergency,
    _erasure,
    _keys,
    _penalties,
    _proposals,
    _proxies,
    _record_terms,
    _records,
    _recovery,
    _registration,
    _registry,
    _research,
    _rewrap,
    _search,
    _staking,
)
from medchain.app._accounts import Account, get_account, put_account
from medchain.app._context import BlockContext, Call, Methods
from medchain.app._errors import (
    ContractError,
    FeeTooLow,
    InsufficientFunds,
    MalformedTx,
    NonceGap,
    NonceReused,
    TxTooLarge,
    UnknownMethod,
    WrongChain,
)
from medchain.app._keys import sender_of
from medchain.app._signatures import SignatureCache, SignatureCheck, require_signature
from medchain.app._state import State
from medchain.crypto import PUBLIC_KEY_SIZE, RingSignature
from medchain.types import (
    ChainParams,
    DecodeError,
    Receipt,
    Tx,
    decode,
    decode_tx_bytes,
    tagged_hash,
    tx_id,
)

METHODS: Methods = {
    **_accounts.METHODS,
    **_registration.METHODS,
    **_registry.METHODS,
    **_records.METHODS,
    **_record_terms.METHODS,
    **_consents.METHODS,
    **_research.METHODS,
    **_staking.METHODS,
    **_penalties.METHODS,
    **_anon.METHODS,
    **_search.METHODS,
    **_devices.METHODS,
    **_emergency.METHODS,
    **_proxies.METHODS,
    **_proposals.METHODS,
    **_attestations.METHODS,
    **_credentials.METHODS,
    **_keys.METHODS,
    **_rewrap.METHODS,
    **_erasure.METHODS,
    **_recovery.METHODS,
    **_disclosure_heads.METHODS,
}


def decode_tx(raw: bytes, params: ChainParams) -> Tx:
    """Parse submitted bytes, refusing oversized input before any work is done."""
    if len(raw) > params.max_tx_bytes:
        raise TxTooLarge(
            f"transaction is {len(raw)} bytes; the limit is {params.max_tx_bytes}. "
            "Store large data off-chain and submit only its CID"
        )
    try:
        return decode_tx_bytes(raw)
    except DecodeError as exc:
        raise MalformedTx(f"transaction bytes are malformed: {exc.message}") from exc


def check_tx_static(
    tx: Tx,
    chain_id: str,
    params: ChainParams,
    verified: SignatureCache | None = None,
    *,
    verify: bool = True,
) -> Any:
    """Checks that need no state; returns the decoded call arguments. A signature found
    in `verified` is not checked again; with `verify` False it is not checked at all
    (the caller runs `ed25519_check` itself)."""
    size = len(tx.encoded)
    if size > params.max_tx_bytes:
        raise TxTooLarge(f"transaction is {size} bytes; the limit is {params.max_tx_bytes}")
    if tx.chain_id != chain_id:
        raise WrongChain(
            f"transaction is for chain {tx.chain_id!r}, this is {chain_id!r}; "
            "sign it for this chain"
        )
    method = METHODS.get(tx.method)
    if method is None:
        known = ", ".join(sorted(METHODS))
        raise UnknownMethod(f"unknown method {tx.method!r}; known methods: {known}")
    anonymous = tx.method in _anon.ANONYMOUS_METHODS
    if anonymous and (tx.sender or tx.nonce or tx.fee):
        raise MalformedTx(
            "an anonymous transaction carries no sender, nonce or fee; "
            "build it with `medchain anon submit`"
        )
    if not anonymous and len(tx.sender) != PUBLIC_KEY_SIZE:
        raise MalformedTx("the sender must be a 32-byte Ed25519 public key")
    try:
        args = tx.decoded_args(method[0])
    except DecodeError as exc:
        raise MalformedTx(f"arguments of {tx.method} are malformed: {exc.message}") from exc
    if anonymous:
        _ring_signature(tx)  # well-formed; checked against the ring with the state
        return args
    if verify:
        require_signature(ed25519_check(tx), verified)
    return args


def ed25519_check(tx: Tx) -> SignatureCheck:
    """The check of a signed transaction's signature by its sender."""
    return SignatureCheck(tx_id(tx), tx.signing_bytes(), tx.signature, public_key=tx.sender)


def _ring_signature(tx: Tx) -> RingSignature:
    try:
        return decode(RingSignature, tx.signature)
    except DecodeError as exc:
        raise MalformedTx(f"the ring signature is malformed: {exc.message}") from exc


def check_anonymous(
    state: State,
    tx: Tx,
    args: Any,
    params: ChainParams,
    verified: SignatureCache | None = None,
) -> RingSignature:
    """The ring fits its scope, the ring signature verifies over the transaction, and
    its key image is new in the scope. Reveals nothing about which member signed. The
    ring check is cached under the transaction and the ring's keys, its only inputs."""
    check = ring_check(state, tx, args, params)
    require_signature(check, verified)
    signature = check.signature
    assert isinstance(signature, RingSignature)
    _anon.require_fresh_key_image(state, args.scope, signature.key_image)
    return signature


def ring_check(state: State, tx: Tx, args: Any, params: ChainParams) -> SignatureCheck:
    """The check of an anonymous transaction's ring signature over the ring its
    arguments name, once that ring is found acceptable for its scope (TxRejected if not)."""
    signature = _ring_signature(tx)
    ring = tuple(_anon.ring_public_keys(state, args, params))
    limit = params.max_ring_size.to_bytes(4, "big")
    key = tagged_hash("medchain/ring-verified", tx_id(tx), limit, *ring)
    return SignatureCheck(
        key, tx.signing_bytes(), signature, ring=ring, max_ring_size=params.max_ring_size
    )


def check_tx_stateful(state: State, tx: Tx, params: ChainParams) -> Account:
    """The key is the account's current one, nonce and fee against current state;
    returns the sender's account."""
    return _check_nonce_and_fee(get_account(state, sender_of(state, tx.sender)), tx, params)


def _check_nonce_and_fee(account: Account, tx: Tx, params: ChainParams) -> Account:
    if tx.nonce < account.nonce:
        raise NonceReused(
            f"nonce {tx.nonce} was already used (next is {account.nonce}): "
            "this transaction, or another with the same nonce, was already applied"
        )
    if tx.nonce > account.nonce:
        raise NonceGap(
            f"nonce {tx.nonce} is ahead of the account (next is {account.nonce}); "
            "submit the missing transactions first"
        )
    if tx.fee < params.min_fee:
        raise FeeTooLow(f"fee {tx.fee} is below the chain's minimum of {params.min_fee}")
    if tx.fee > account.balance:
        raise InsufficientFunds(f"fee {tx.fee} exceeds the sender's balance of {account.balance}")
    return account


def apply_tx(state: State, block: BlockContext, tx: Tx) -> Receipt:
    """Apply one transaction; raises TxRejected (state untouched) or returns its receipt."""
    args = check_tx_static(tx, block.chain_id, block.params)
    return apply_checked_tx(state, block, tx, args)


def apply_checked_tx(
    state: State,
    block: BlockContext,
    tx: Tx,
    args: Any,
    verified: SignatureCache | None = None,
) -> Receipt:
    """Apply a transaction whose static checks already passed (see `check_tx_static`)."""
    if tx.method in _anon.ANONYMOUS_METHODS:
        return _apply_anonymous(state, block, tx, args, verified)
    sender = sender_of(state, tx.sender)
    account = _check_nonce_and_fee(get_account(state, sender), tx, block.params)
    identity = tx_id(tx)
    call = Call(block, sender, tx.sender, identity, tx.nonce)
    with state.layer():
        put_account(state, sender, Account(account.balance - tx.fee, account.nonce + 1))
        if tx.fee:
            _accounts.credit(state, block.proposer, tx.fee)
        return _run_call(state, call, tx.method, args)


def _apply_anonymous(
    state: State, block: BlockContext, tx: Tx, args: Any, verified: SignatureCache | None
) -> Receipt:
    signature = check_anonymous(state, tx, args, block.params, verified)
    call = Call(block, b"", b"", tx_id(tx), 0, key_image=signature.key_image)
    with state.layer():
        _anon.mark_key_image(state, args.scope, signature.key_image)  # spent like a nonce
        return _run_call(state, call, tx.method, args)


def _run_call(state: State, call: Call, method: str, args: Any) -> Receipt:
    """The contract call in its own layer: refused, it leaves no trace but its receipt."""
    try:
        with state.layer():
            METHODS[method][1](state, call, args)
    except ContractError as exc:
        return Receipt(call.tx_id, False, exc.code, exc.message, ())
    return Receipt(call.tx_id, True, "", "", tuple(call.events))

"""`Mempool`: transactions waiting for a block, checked on arrival against the
committed state, kept in arrival order, deduplicated by id, bounded, and checked
again after every commit.

Bounds keep one node's memory and one proposer's work in hand: a total count and
a total of encoded bytes for the pool, a count per sending account (so one
account cannot fill it), and a small count for anonymous transactions, which pay
no fee; their key image stands in for the nonce, so at most one per (scope, key
image) may wait."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from itertools import islice

from medchain.app import (
    ANONYMOUS_METHODS,
    METHODS,
    FeeTooLow,
    InsufficientFunds,
    KeyImageReused,
    KeyRetired,
    Ledger,
    MalformedTx,
    NonceGap,
    SignatureCheck,
    TxRejected,
    ed25519_check,
    get_account,
    require_signature,
    sender_of,
)
from medchain.crypto import RingSignature
from medchain.mempool._errors import AnonymousQueueFull, MempoolFull, SenderQueueFull
from medchain.types import DecodeError, Tx, decode, tx_id

DEFAULT_MAX_TXS = 20_000
DEFAULT_MAX_BYTES = 64 * 2**20
DEFAULT_MAX_PER_SENDER = 256
DEFAULT_MAX_ANONYMOUS = 256


@dataclass(frozen=True, slots=True)
class _Entry:
    tx: Tx
    size: int
    image: tuple[str, bytes] | None
    """(scope, key image) of an anonymous transaction; None for a signed one."""


class Mempool:
    """Pending transactions in arrival order, admissible against `ledger`'s committed
    state. A signed transaction may skip nonces only when pending transactions of the
    same sender fill the gap, so a client can queue consecutive transactions."""

    def __init__(
        self,
        ledger: Ledger,
        *,
        max_txs: int = DEFAULT_MAX_TXS,
        max_bytes: int = DEFAULT_MAX_BYTES,
        max_per_sender: int = DEFAULT_MAX_PER_SENDER,
        max_anonymous: int = DEFAULT_MAX_ANONYMOUS,
    ) -> None:
        limits = (max_txs, max_bytes, max_per_sender, max_anonymous)
        if min(limits) < 1:
            raise ValueError(f"mempool limits must be positive, not {limits}")
        self.ledger = ledger
        self.max_txs = max_txs
        self.max_bytes = max_bytes
        self.max_per_sender = max_per_sender
        self.max_anonymous = max_anonymous
        self._entries: dict[bytes, _Entry] = {}
        """By transaction id, in arrival order."""
        self._nonces: dict[bytes, dict[int, int]] = {}
        """Per sender key, how many pending transactions carry each nonce (a replacement
        may share a nonce with the transaction it replaces)."""
        self._per_sender: dict[bytes, int] = {}
        self._images: dict[tuple[str, bytes], bytes] = {}
        """(scope, key image) -> id of the anonymous transaction that holds it."""
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, identity: object) -> bool:
        return identity in self._entries

    @property
    def size_bytes(self) -> int:
        """Total encoded size of the pending transactions."""
        return self._bytes

    @property
    def anonymous_count(self) -> int:
        return len(self._images)

    def get(self, identity: bytes) -> Tx | None:
        entry = self._entries.get(identity)
        return None if entry is None else entry.tx

    def reap(self, max_txs: int | None = None) -> tuple[Tx, ...]:
        """The first `max_txs` pending transactions (all by default), in arrival order,
        for a proposal. They stay pending until `update` reports them committed."""
        entries = self._entries.values()
        chosen = entries if max_txs is None else islice(entries, max_txs)
        return tuple(entry.tx for entry in chosen)

    def next_nonce(self, sender_key: bytes, committed_nonce: int) -> int:
        """The first nonce from `committed_nonce` on that no pending transaction of
        `sender_key` carries: the nonce a new transaction of this sender should use."""
        queued = self._nonces.get(sender_key, {})
        nonce = committed_nonce
        while nonce in queued:
            nonce += 1
        return nonce

    # -- admission ----------------------------------------------------------------

    def add(self, tx: Tx, *, preflight: Callable[[Tx], None] | None = None) -> bool:
        """Admit `tx`; False if it is already pending. Raises the ledger's TxRejected
        errors when it cannot be valid next, KeyImageReused when an anonymous
        transaction with its key image is pending, and MempoolFull (or its kinds
        SenderQueueFull, AnonymousQueueFull) when there is no room for it. Its
        signature is verified last, unless the ledger's cache holds the check (see
        `prepare`); then `preflight`, if given, may refuse it by raising (the node
        dry-runs a call the contract would refuse, so its client hears it at once)."""
        check = self.prepare(tx, gaps_filled=False)
        if check is None:
            return False
        require_signature(check, self.ledger.verified)
        if preflight is not None:
            preflight(tx)
        identity = tx_id(tx)
        image = (_scope(tx), check.key_image) if check.anonymous else None
        self._insert(identity, _Entry(tx, len(tx.encoded), image))
        return True

    def prepare(self, tx: Tx, *, gaps_filled: bool = True) -> SignatureCheck | None:
        """Everything `add` checks but the signature, cheapest first, raising what
        `add` would; returns the signature check `add` will run (None if `tx` is
        already pending). Run the check elsewhere, record a pass in the ledger's
        signature cache, and `add` finds it done: how the node keeps verification off
        its event loop.

        With `gaps_filled`, a nonce gap is let through: transactions admitted before
        `tx` is added may fill it (`add` decides)."""
        if tx_id(tx) in self._entries:
            return None
        anonymous = tx.method in ANONYMOUS_METHODS
        self._require_room(tx, len(tx.encoded), anonymous)
        if anonymous:
            image = (_scope(tx), _key_image(tx))
            if image in self._images:
                raise KeyImageReused(
                    "an anonymous transaction with this key image is already pending in scope "
                    f"{image[0]!r}: each member may contribute once per scope (or this is a "
                    "replay)"
                )
        return self._check(tx, gaps_filled)

    def _require_room(self, tx: Tx, size: int, anonymous: bool) -> None:
        if len(self._entries) >= self.max_txs or self._bytes + size > self.max_bytes:
            raise MempoolFull(
                f"the mempool is full: {len(self._entries)} transactions of {self._bytes} bytes "
                f"are pending, the limits are {self.max_txs} transactions and "
                f"{self.max_bytes} bytes; retry shortly, once blocks have drained it"
            )
        if anonymous and len(self._images) >= self.max_anonymous:
            raise AnonymousQueueFull(
                f"{len(self._images)} anonymous transactions are pending, the limit "
                f"({self.max_anonymous}); retry shortly, once blocks have drained them"
            )
        if not anonymous and self._per_sender.get(tx.sender, 0) >= self.max_per_sender:
            raise SenderQueueFull(
                f"this account has {self.max_per_sender} transactions pending, the limit "
                "per account; retry once some are in a block"
            )

    def _check(self, tx: Tx, gaps_filled: bool) -> SignatureCheck:
        """The ledger's CheckTx but the signature, except that a nonce gap filled by
        pending transactions of the same sender is fine (its fee is then checked
        against the balance now)."""
        try:
            return self.ledger.check_unsigned(tx)
        except NonceGap:
            if gaps_filled:
                return ed25519_check(tx)  # only a signed transaction has a nonce
            state = self.ledger.state
            account = get_account(state, sender_of(state, tx.sender))
            queued = self._nonces.get(tx.sender, {})
            gap = range(account.nonce, tx.nonce)
            if len(gap) > len(queued) or any(n not in queued for n in gap):
                raise
            min_fee = self.ledger.genesis.params.min_fee
            if tx.fee < min_fee:
                raise FeeTooLow(f"fee {tx.fee} is below the chain's minimum of {min_fee}") from None
            if tx.fee > account.balance:
                raise InsufficientFunds(
                    f"fee {tx.fee} exceeds the sender's balance of {account.balance}"
                ) from None
            return ed25519_check(tx)

    def _insert(self, identity: bytes, entry: _Entry) -> None:
        self._entries[identity] = entry
        self._bytes += entry.size
        if entry.image is not None:
            self._images[entry.image] = identity
            return
        tx = entry.tx
        nonces = self._nonces.setdefault(tx.sender, {})
        nonces[tx.nonce] = nonces.get(tx.nonce, 0) + 1
        self._per_sender[tx.sender] = self._per_sender.get(tx.sender, 0) + 1

    def _remove(self, identity: bytes) -> None:
        entry = self._entries.pop(identity, None)
        if entry is None:
            return
        self._bytes -= entry.size
        if entry.image is not None:
            del self._images[entry.image]
            return
        tx = entry.tx
        nonces = self._nonces[tx.sender]
        nonces[tx.nonce] -= 1
        if not nonces[tx.nonce]:
            del nonces[tx.nonce]
        self._per_sender[tx.sender] -= 1
        if not self._per_sender[tx.sender]:
            del self._per_sender[tx.sender], self._nonces[tx.sender]

    # -- after a commit -------------------------------------------------------------

    def update(self, committed: Iterable[Tx], ledger: Ledger) -> tuple[Tx, ...]:
        """After a block is committed on `ledger`: drop its transactions, then those
        no longer admissible against the new state (a used nonce or key image, a fee
        the sender can no longer pay, a nonce gap nothing fills any more, a scope
        closed or a ring changed). Signatures are not verified again: they cannot
        change. Returns the transactions dropped as no longer admissible."""
        self.ledger = ledger
        for tx in committed:
            self._remove(tx_id(tx))
        accounts: dict[bytes, tuple[int, int]] = {}
        stale: list[bytes] = []
        for identity, entry in self._entries.items():
            tx = entry.tx
            if entry.image is not None:
                try:
                    ledger.check_tx(tx)  # cheap with a signature cache on the ledger
                except TxRejected:
                    stale.append(identity)
                continue
            if tx.sender not in accounts:
                try:
                    account = get_account(ledger.state, sender_of(ledger.state, tx.sender))
                except KeyRetired:  # the account rotated away from this key
                    stale.append(identity)
                    continue
                accounts[tx.sender] = (account.nonce, account.balance)
            nonce, balance = accounts[tx.sender]
            if tx.nonce < nonce or tx.fee > balance:
                stale.append(identity)
        dropped = [self._entries[identity].tx for identity in stale]
        for identity in stale:
            self._remove(identity)
        # a nonce is admissible while every nonce from the committed one up to it is pending
        frontier: dict[bytes, int] = {}
        for sender, (nonce, _) in accounts.items():
            queued = self._nonces.get(sender, {})
            while nonce in queued:
                nonce += 1
            frontier[sender] = nonce
        gapped = [
            identity
            for identity, entry in self._entries.items()
            if entry.image is None and entry.tx.nonce > frontier[entry.tx.sender]
        ]
        dropped += [self._entries[identity].tx for identity in gapped]
        for identity in gapped:
            self._remove(identity)
        return tuple(dropped)


def _scope(tx: Tx) -> str:
    """The scope an anonymous transaction contributes to."""
    try:
        args = tx.decoded_args(METHODS[tx.method][0])
    except DecodeError as exc:
        raise MalformedTx(f"the anonymous transaction is malformed: {exc.message}") from exc
    scope: str = args.scope
    return scope


def _key_image(tx: Tx) -> bytes:
    """The key image of an anonymous transaction, read before its costly ring check so
    a replay costs nothing."""
    try:
        signature = decode(RingSignature, tx.signature)
    except DecodeError as exc:
        raise MalformedTx(f"the anonymous transaction is malformed: {exc.message}") from exc
    return signature.key_image

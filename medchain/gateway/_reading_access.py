"""Who may ask the gateway about a reading (its status, batch, patient, time, bundle CID
and Merkle proof): its device, and for a committed reading the node's vitals rule
(medchain.app.vitals_access): the patient, their vitals readers, guardians (`devices`
proxies) and `read` proxies. A pending reading is answered to its device only.

The gateway holds no state, so it learns the rule's facts from its node through the
SDK's public lookups (`vitals_readers_of`, `proxies_of`, `identity`) and keeps them for
`ACCESS_CACHE_S` per patient. A signer is the allowed account whose current key signed
(so a rotated account signs with its new key, and a retired key opens nothing); a
device signs with its own key and costs no lookup.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from medchain.app import NotRegistered, ProxyScope, ReadAccess, ReadNotAllowed
from medchain.client import ChainBackend
from medchain.crypto import address_from_public_key, format_address

ACCESS_CACHE_S = 2.0
"""How long a patient's readers, guardians and proxies are trusted once read: a reader
whose access was revoked (the revoke committed) is served for at most this long after,
plus the node's own lag behind the chain."""
MAX_CACHED_PATIENTS = 4_096
"""Most patients whose facts are kept; the oldest are dropped beyond."""


@dataclass(frozen=True)
class ReadingParties:
    """Whose a reading is: the device that took it and the patient it is of (addresses);
    `committed`: on chain, so the patient's readers may ask too."""

    device: bytes
    patient: bytes
    committed: bool


@dataclass(frozen=True)
class _Facts:
    """A patient's accounts allowed to read their vitals, each with its basis, and each
    account's current Ed25519 key (None: no identity, its own key signs)."""

    allowed: dict[bytes, ReadAccess]
    keys: dict[bytes, bytes | None]
    expires: float
    read_proxies: frozenset[bytes] = frozenset()
    """The proxies in force with the `read` scope: they see the patient's disclosures."""


class ReadingAccess:
    """The vitals rule over a chain's public lookups, cached per patient."""

    def __init__(
        self,
        chain: ChainBackend,
        clock: Callable[[], float],
        cache_s: float = ACCESS_CACHE_S,
    ) -> None:
        self.chain = chain
        self._clock = clock
        self._cache_s = cache_s
        self._facts: dict[bytes, _Facts] = {}
        self._lock = threading.Lock()

    def check(
        self, signer_key: bytes, parties: ReadingParties, now_ms: int
    ) -> tuple[bytes, ReadAccess]:
        """(the signer's account, its basis) or ReadNotAllowed naming what it lacks.
        `now_ms` (wall clock) judges the proxies' expiry."""
        own = address_from_public_key(signer_key)
        if own == parties.device:
            return own, ReadAccess("device")
        if not parties.committed:
            raise ReadNotAllowed(
                f"{format_address(own)} may not ask about this reading: it is not committed "
                "yet, and until it is only its device may; ask again once it is committed"
            )
        facts = self._facts_of(parties.patient, now_ms)
        account = _signer_among(facts, signer_key, facts.allowed)
        if account is not None:
            return account, facts.allowed[account]
        raise ReadNotAllowed(
            f"{format_address(own)} may not ask about readings of "
            f"{format_address(parties.patient)}: its key is not the current key of their "
            "device, the patient, or one of their vitals readers, guardians or read proxies; "
            "the patient adds vitals readers with `medchain devices share-vitals`"
        )

    def check_disclosures(self, signer_key: bytes, patient: bytes, now_ms: int) -> bytes:
        """The signer's account if it may see the patient's disclosures (the patient, a
        `read` proxy in force), else ReadNotAllowed; NotRegistered for an address with
        no identity on chain."""
        facts = self._facts_of(patient, now_ms)
        if facts.keys.get(patient) is None:
            raise NotRegistered(
                f"{format_address(patient)} is not a patient on this chain; check the address"
            )
        account = _signer_among(facts, signer_key, [patient, *sorted(facts.read_proxies)])
        if account is None:
            raise ReadNotAllowed(
                f"{format_address(address_from_public_key(signer_key))} may not see "
                f"{format_address(patient)}'s disclosures: only the patient and their "
                "proxies with the read scope may"
            )
        return account

    def _facts_of(self, patient: bytes, now_ms: int) -> _Facts:
        now = self._clock()
        with self._lock:
            found = self._facts.get(patient)
        if found is not None and found.expires > now:
            return found
        facts = self._read(patient, now_ms, now + self._cache_s)
        with self._lock:
            self._facts.pop(patient, None)
            self._facts[patient] = facts
            while len(self._facts) > MAX_CACHED_PATIENTS:
                del self._facts[next(iter(self._facts))]
        return facts

    def _read(self, patient: bytes, now_ms: int, expires: float) -> _Facts:
        """The patient's allowed accounts, as `vitals_access` ranks them, and their keys."""
        allowed: dict[bytes, ReadAccess] = {patient: ReadAccess("owner")}
        for reader in self.chain.vitals_readers_of(patient):
            allowed.setdefault(reader, ReadAccess("vitals_reader"))
        read_proxies: set[bytes] = set()
        for proxy in self.chain.proxies_of(patient):
            if proxy.active(now_ms) and (
                ProxyScope.DEVICES in proxy.scopes or ProxyScope.READ in proxy.scopes
            ):
                allowed.setdefault(proxy.proxy, ReadAccess("proxy", patient))
            if proxy.active(now_ms) and ProxyScope.READ in proxy.scopes:
                read_proxies.add(proxy.proxy)
        keys: dict[bytes, bytes | None] = {}
        for account in allowed:
            identity = self.chain.identity(account)
            keys[account] = None if identity is None else identity.public_key
        return _Facts(allowed, keys, expires, frozenset(read_proxies))


def _signer_among(facts: _Facts, signer_key: bytes, accounts: Iterable[bytes]) -> bytes | None:
    """The account of `accounts` whose current key is `signer_key` (an account with no
    identity signs with its own key), or None."""
    own = address_from_public_key(signer_key)
    for account in accounts:
        current = facts.keys.get(account)
        if current == signer_key or (current is None and account == own):
            return account
    return None


__all__ = ["ACCESS_CACHE_S", "ReadingAccess", "ReadingParties"]

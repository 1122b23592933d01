"""Proxies contract: a patient names accounts that act for them (a parent for a minor,
a legal representative, a carer), each for some scopes and until an expiry.

A proxy signs with their own key; the contracts that act for a patient accept a proxy
holding the scope the act needs, and their audit trails record "by proxy X for
patient Y". Scopes:

- `read`: a required reader. Every record written for the patient from then on must
  wrap its key for the proxy (`required_readers`); the patient's client wraps the
  records that exist already.
- `grant`: grant and revoke readers and research access on the patient's records.
- `devices`: manage the patient's devices as the patient may, and read their labels.
- `write`: write records for the patient, as the patient would report themselves.

Only the patient adds or removes proxies. Expiry is block time (`expires_ms`, 0 =
never): an expired proxy stays listed, powerless, until the patient removes it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from medchain.app._context import Call, Methods
from medchain.app._errors import InvalidArgument, NotAProxy
from medchain.app._indexes import CountedSet
from medchain.app._registry import Role, require_identity
from medchain.app._state import State, load, save
from medchain.crypto import ADDRESS_SIZE, format_address

MAX_PROXIES_PER_PATIENT = 16


class ProxyScope(enum.StrEnum):
    READ = "read"
    GRANT = "grant"
    DEVICES = "devices"
    WRITE = "write"


class ProxyRelation(enum.StrEnum):
    PARENT = "parent"
    LEGAL = "legal"
    CARER = "carer"


@dataclass(frozen=True, slots=True)
class Proxy:
    patient: bytes
    proxy: bytes
    relation: ProxyRelation
    scopes: tuple[ProxyScope, ...]
    """Sorted by value."""
    expires_ms: int
    """Block time from which the proxy no longer acts; 0 = never."""
    added_height: int

    def active(self, now_ms: int) -> bool:
        return self.expires_ms == 0 or now_ms < self.expires_ms


@dataclass(frozen=True, slots=True)
class AddProxyArgs:
    proxy: bytes
    relation: ProxyRelation
    scopes: tuple[ProxyScope, ...]
    expires_ms: int


@dataclass(frozen=True, slots=True)
class RemoveProxyArgs:
    proxy: bytes


@dataclass(frozen=True, slots=True)
class _ProxyList:
    proxies: tuple[Proxy, ...]
    """Sorted by the proxy's address."""


def _list_key(patient: bytes) -> bytes:
    return b"prx/p/" + patient


_PATIENTS = CountedSet(b"prx/r/")
"""Per proxy: the patients it acts for (a carer's or a lawyer's list has no small
bound, so one key per patient)."""


# -- queries ------------------------------------------------------------------------


def proxies_of(state: State, patient: bytes) -> list[Proxy]:
    """The patient's proxies, expired ones included, by the proxy's address."""
    found = load(state, _list_key(patient), _ProxyList)
    return [] if found is None else list(found.proxies)


def patients_of(state: State, proxy: bytes) -> list[Proxy]:
    """The relations in which `proxy` acts for a patient, by the patient's address."""
    patients = _PATIENTS.items(state, proxy)
    return [p for patient in patients for p in proxies_of(state, patient) if p.proxy == proxy]


def get_proxy(state: State, patient: bytes, proxy: bytes) -> Proxy | None:
    return next((p for p in proxies_of(state, patient) if p.proxy == proxy), None)


def proxy_allows(
    state: State, proxy: bytes, patient: bytes, scope: ProxyScope, now_ms: int
) -> bool:
    found = get_proxy(state, patient, proxy)
    return found is not None and scope in found.scopes and found.active(now_ms)


def require_proxy(
    state: State, sender: bytes, patient: bytes, scope: ProxyScope, now_ms: int, action: str
) -> Proxy:
    """The relation by which `sender` may `action` for `patient`; NotAProxy saying why not."""
    found = get_proxy(state, patient, sender)
    who, whom = format_address(sender), format_address(patient)
    if found is None:
        raise NotAProxy(
            f"{who} may not {action}: it is not a proxy of {whom}; "
            f"the patient adds proxies with `medchain proxy add`"
        )
    if scope not in found.scopes:
        held = ", ".join(s.value for s in found.scopes)
        raise NotAProxy(
            f"{who} may not {action}: as proxy of {whom} it holds scopes {held}, "
            f"not {scope.value}; the patient adds the scope with `medchain proxy add`"
        )
    if not found.active(now_ms):
        raise NotAProxy(
            f"{who} may not {action}: its proxy for {whom} expired at {found.expires_ms} ms; "
            "the patient renews it with `medchain proxy add`"
        )
    return found


def acting_for(state: State, call: Call, patient: bytes, scope: ProxyScope, action: str) -> bytes:
    """The patient the sender acts for: b"" when the sender is the patient, else the
    patient, once the sender is found a current proxy with `scope` (NotAProxy if not)."""
    if call.sender == patient:
        return b""
    require_proxy(state, call.sender, patient, scope, call.block.time_ms, action)
    return patient


def scoped_proxies(
    state: State, patient: bytes, scope: ProxyScope, now_ms: int
) -> tuple[bytes, ...]:
    """The patient's current proxies holding `scope`, sorted."""
    return tuple(
        p.proxy for p in proxies_of(state, patient) if scope in p.scopes and p.active(now_ms)
    )


def required_readers(state: State, patient: bytes, now_ms: int) -> tuple[bytes, ...]:
    """Who every record written for the patient now must be wrapped for, besides the
    patient: their current `read` proxies, sorted."""
    return scoped_proxies(state, patient, ProxyScope.READ, now_ms)


# -- methods ------------------------------------------------------------------------


def _check_scopes(scopes: tuple[ProxyScope, ...]) -> tuple[ProxyScope, ...]:
    if not scopes:
        raise InvalidArgument("a proxy needs at least one scope: read, grant, devices or write")
    ordered = tuple(sorted(set(scopes)))
    if len(ordered) != len(scopes):
        raise InvalidArgument("each scope is named once")
    return ordered


def add(state: State, call: Call, args: AddProxyArgs) -> None:
    """Patient: name a proxy, or change an existing one's relation, scopes and expiry."""
    require_identity(state, call.sender, Role.PATIENT)
    if len(args.proxy) != ADDRESS_SIZE:
        raise InvalidArgument(f"the proxy must be a {ADDRESS_SIZE}-byte address")
    if args.proxy == call.sender:
        raise InvalidArgument("a patient always acts for themselves; name another account")
    identity = require_identity(state, args.proxy)
    if not identity.encryption_key:
        raise InvalidArgument(
            f"{format_address(args.proxy)} has no encryption key and cannot act for a "
            "patient; name an account registered with one"
        )
    scopes = _check_scopes(args.scopes)
    if args.expires_ms and args.expires_ms <= call.block.time_ms:
        raise InvalidArgument(
            f"the expiry {args.expires_ms} ms is already past (block time "
            f"{call.block.time_ms} ms); give a later one, or 0 for none"
        )
    current = [p for p in proxies_of(state, call.sender) if p.proxy != args.proxy]
    if len(current) >= MAX_PROXIES_PER_PATIENT:
        raise InvalidArgument(
            f"a patient has at most {MAX_PROXIES_PER_PATIENT} proxies; remove one first"
        )
    before = get_proxy(state, call.sender, args.proxy)
    updated = before is not None
    added = call.block.height if before is None else before.added_height
    proxy = Proxy(call.sender, args.proxy, args.relation, scopes, args.expires_ms, added)
    _store(state, call.sender, [*current, proxy])
    _index(state, args.proxy, call.sender, present=True)
    call.emit(
        "proxy.updated" if updated else "proxy.added",
        patient=call.sender,
        proxy=args.proxy,
        relation=args.relation.value,
        scopes=",".join(s.value for s in scopes),
        expires_ms=args.expires_ms,
    )


def remove(state: State, call: Call, args: RemoveProxyArgs) -> None:
    """Patient: take a proxy off; it acts for them no more from this block on."""
    current = proxies_of(state, call.sender)
    if all(p.proxy != args.proxy for p in current):
        raise NotAProxy(
            f"{format_address(args.proxy)} is not a proxy of {format_address(call.sender)}; "
            "`medchain proxy list` shows who is"
        )
    _store(state, call.sender, [p for p in current if p.proxy != args.proxy])
    _index(state, args.proxy, call.sender, present=False)
    call.emit("proxy.removed", patient=call.sender, proxy=args.proxy)


def _store(state: State, patient: bytes, proxies: list[Proxy]) -> None:
    if proxies:
        save(state, _list_key(patient), _ProxyList(tuple(sorted(proxies, key=lambda p: p.proxy))))
    else:
        state.delete(_list_key(patient))


def _index(state: State, proxy: bytes, patient: bytes, *, present: bool) -> None:
    if present:
        _PATIENTS.add(state, proxy, patient)
    else:
        _PATIENTS.remove(state, proxy, patient)


METHODS: Methods = {
    "proxies.add": (AddProxyArgs, add),
    "proxies.remove": (RemoveProxyArgs, remove),
}

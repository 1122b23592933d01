"""A patient's proxies from the SDK: name one, take one off, list them.

A `read` proxy must read the patient's records present and future. The chain makes
every later record wrap its key for the proxy (`required_readers`); the records that
exist already are the patient's client's to open for it: adding a `read` proxy warrants
it on each of the patient's records, re-wrapping every version's key from the
patient's own. Taking a `read` proxy off revokes it on the records it reads, so later
versions are closed to it (what it could open stays open: revocation is forward-only)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from medchain.app import (
    AddProxyArgs,
    Proxy,
    ProxyRelation,
    ProxyScope,
    RemoveProxyArgs,
    UnwarrantArgs,
)
from medchain.client._batch import submit_all
from medchain.client._sdk import MedchainClient
from medchain.types import Receipt


@dataclass(frozen=True, slots=True)
class ProxyChange:
    receipt: Receipt
    """The `proxies.add` or `proxies.remove` transaction's."""
    records: tuple[bytes, ...]
    """The patient's records opened to the proxy (added) or closed to it (removed)."""


def add_proxy(
    client: MedchainClient,
    proxy: bytes,
    relation: ProxyRelation,
    scopes: Iterable[ProxyScope],
    expires_ms: int = 0,
) -> ProxyChange:
    """Patient: let `proxy` act for this account within `scopes` until `expires_ms`
    (block time, 0 = never); with `read`, open every present record to it too."""
    ordered = tuple(sorted(set(scopes)))
    receipt = client.send("proxies.add", AddProxyArgs(proxy, relation, ordered, expires_ms))
    if ProxyScope.READ not in ordered:
        return ProxyChange(receipt, ())
    return ProxyChange(receipt, _warrant_everywhere(client, proxy))


def _warrant_everywhere(client: MedchainClient, reader: bytes) -> tuple[bytes, ...]:
    """Warrant `reader` on each of the client's records it does not read yet (an
    erased record opens to nobody)."""
    records = [client.record(r) for r in client.my_records()]
    missing = [r.record_id for r in records if not r.erased_height and reader not in r.readers]
    submit_all(client, "records.warrant", [client.warrant_args(r, reader) for r in missing])
    return tuple(missing)


def remove_proxy(client: MedchainClient, proxy: bytes) -> ProxyChange:
    """Patient: take `proxy` off; if it read this account's records, revoke it on each,
    so no later version opens to it."""
    receipt = client.send("proxies.remove", RemoveProxyArgs(proxy))
    reading = [r for r in client.my_records() if proxy in client.record(r).readers]
    submit_all(client, "records.unwarrant", [UnwarrantArgs(r, proxy) for r in reading])
    return ProxyChange(receipt, tuple(reading))


def proxies_of(client: MedchainClient, patient: bytes | None = None) -> list[Proxy]:
    """The proxies of `patient` (by default this account), expired ones too."""
    return client.chain.proxies_of(client.address if patient is None else patient)


def patients_of(client: MedchainClient, proxy: bytes | None = None) -> list[Proxy]:
    """The patients `proxy` (by default this account) acts for, and how."""
    return client.chain.patients_of(client.address if proxy is None else proxy)

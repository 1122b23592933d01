"""`medchain proxy …`: a patient names who may act for them (a parent, a legal
representative, a carer), with scopes and an expiry, and takes them off."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from medchain.app import Proxy, ProxyRelation, ProxyScope
from medchain.cli._common import (
    Chain,
    address_arg,
    choice,
    console,
    expiry_after,
    load_key_file,
    ok,
    on_chain,
    show_address,
    show_expiry,
)
from medchain.cli._options import MAX_DAYS, AddressArg, PatientKeyOption, key_option
from medchain.client import add_proxy, remove_proxy
from medchain.types import MedchainError

SCOPES = ", ".join(s.value for s in ProxyScope)


def _scopes(text: str) -> tuple[ProxyScope, ...]:
    """`read,grant`: each scope once, at least one."""
    parts = [p.strip().lower() for p in text.split(",") if p.strip()]
    if not parts:
        raise MedchainError(f"--scope is empty; give one or more of: {SCOPES}, e.g. read,grant")
    try:
        return tuple(sorted({ProxyScope(p) for p in parts}))
    except ValueError:
        raise MedchainError(f"--scope {text!r}: choose among {SCOPES}, comma-separated") from None


@on_chain
def proxy_add(
    where: Chain,
    proxy: AddressArg,
    key: PatientKeyOption,
    relation: Annotated[str, typer.Option(help=", ".join(r.value for r in ProxyRelation))],
    scope: Annotated[str, typer.Option(help=f"Comma-separated: {SCOPES}.")],
    days: Annotated[
        int, typer.Option(min=0, max=MAX_DAYS, help="Acts for this many days (0: until removed).")
    ] = 0,
) -> None:
    """Let PROXY act for you within the scopes (again: change its scopes or expiry).
    With `read`, your present records are opened to it and later ones must be."""
    parsed_relation, parsed_scopes = choice(ProxyRelation, relation, "relation"), _scopes(scope)
    expires_ms = expiry_after(days)
    with where.client(key) as client:
        change = add_proxy(client, address_arg(proxy), parsed_relation, parsed_scopes, expires_ms)
    names = ",".join(s.value for s in parsed_scopes)
    ok(f"{proxy} acts for you as {parsed_relation.value} ({names})")
    if change.records:
        console.print(f"{len(change.records)} of your records opened to it")


@on_chain
def proxy_remove(where: Chain, proxy: AddressArg, key: PatientKeyOption) -> None:
    """Take a proxy off: it no longer acts for you nor reads your later versions."""
    with where.client(key) as client:
        change = remove_proxy(client, address_arg(proxy))
    ok(f"{proxy} no longer acts for you")
    if change.records:
        console.print(f"{len(change.records)} of your records closed to its later versions")


def _line(proxy: Proxy) -> str:
    scopes = ",".join(s.value for s in proxy.scopes)
    until = show_expiry(proxy.expires_ms, "until removed")
    return f"{show_address(proxy.proxy)}  {proxy.relation.value}  {scopes}  {until}"


def own_address(key: Path | None) -> bytes:
    if key is None:
        raise MedchainError("give --patient ADDRESS, or --key with your key file")
    return load_key_file(key).address


@on_chain
def proxy_list(
    where: Chain,
    patient: Annotated[str | None, typer.Option(help="Whose proxies (default: yours).")] = None,
    key: Annotated[Path | None, key_option("Your key file, to list your own proxies.")] = None,
) -> None:
    """A patient's proxies, expired ones too."""
    owner = address_arg(patient) if patient is not None else own_address(key)
    with where.backend() as chain:
        found = chain.proxies_of(owner)
    for proxy in found:
        console.print(_line(proxy))
    if not found:
        console.print(f"{show_address(owner)} has no proxy")

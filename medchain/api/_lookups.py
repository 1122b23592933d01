"""Path parameters that must name something on chain: a 404 that says what to check,
shared by the routes of every resource that hangs off it."""

from __future__ import annotations

from typing import TypeVar

from medchain import app as contracts
from medchain.api import _parse as parse
from medchain.api._errors import ApiError
from medchain.crypto import format_address
from medchain.node import ChainQueries

T = TypeVar("T")


def on_chain(found: T | None, code: str, message: str) -> T:
    """`found`; a 404 `code` when it is None, whose `message` says what to check."""
    if found is None:
        raise ApiError(404, code, message)
    return found


def registered_patient(chain: ChainQueries, text: str) -> bytes:
    """The patient `text` names: a 404 for an address that is not a registered patient,
    so a mistyped (but well-formed) address is not answered with an empty list."""
    raw = parse.address(text, "patient")
    identity = chain.identity(raw)
    if identity is None or identity.role is not contracts.Role.PATIENT:
        raise ApiError(
            404,
            contracts.NotRegistered.code,
            f"{format_address(raw)} is not a patient on this chain; check the address "
            "(patients register with `medchain register --role patient`)",
        )
    return raw

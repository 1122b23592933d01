"""What the route modules share: a handler's type, a MedchainError (bad input, a call
the chain refused) answered with its message on a page rather than a stack trace, and
the ids a route reads from its path."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response

from medchain.types import MedchainError
from medchain.web._pages import Site

Handler = Callable[[Request], Awaitable[Response]]
RECORD_ID_SIZE = 16
REFUSED_CODES = frozenset(
    {
        "not_authorised",
        "not_owner",
        "wrong_role",
        "not_registered",
        "not_credentialed",
        "not_a_proxy",
        "not_an_admin",
    }
)
"""The chain's codes for "not this account's to do" (the node's API answers them 403 too)."""


def refusal_status(exc: MedchainError) -> int:
    """The status of a page that shows `exc` beside the form that caused it: 403 when
    the account may not do it, 400 for anything else refused."""
    return 403 if exc.code in REFUSED_CODES else 400


def shows_errors(site: Site, handler: Handler) -> Handler:
    """`handler`, answering a MedchainError with its message on the error page: 403
    when the account may not do it, 400 for anything else refused."""

    async def run(request: Request) -> Response:
        try:
            return await handler(request)
        except MedchainError as exc:
            return site.error(request, exc.message, refusal_status(exc))

    return run


def hex_id_in(request: Request, name: str, size: int, what: str) -> bytes:
    """The `size`-byte id the path names as `name`, in hex; a clear error naming
    `what` it should be otherwise."""
    try:
        raw = bytes.fromhex(request.path_params[name])
    except ValueError:
        raw = b""
    if len(raw) != size:
        raise MedchainError(f"that is not {what} ({2 * size} hex characters)")
    return raw


def record_id_in(request: Request) -> bytes:
    """The record id in the path (`record_id`, 32 hex characters)."""
    return hex_id_in(request, "record_id", RECORD_ID_SIZE, "a record id")

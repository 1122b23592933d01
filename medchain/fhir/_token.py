"""The facade's bearer token: one per run, printed at start for the calling system.
The facade holds an account's key and serves its decrypted records, so every route but
`/metadata` asks for it; comparing in constant time leaks nothing of it by timing."""

from __future__ import annotations

import hmac
import secrets

TOKEN_BYTES = 32
_SCHEME = "bearer"


def new_token() -> str:
    """A fresh URL-safe token (256 bits) for one run of the facade."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def bearer_matches(authorization: str | None, token: str) -> bool:
    """Whether an `Authorization: Bearer <token>` header carries `token`."""
    if not authorization:
        return False
    scheme, _, given = authorization.strip().partition(" ")
    if scheme.lower() != _SCHEME:
        return False
    return hmac.compare_digest(given.strip().encode(), token.encode())

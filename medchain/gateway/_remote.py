"""A gateway seen from outside, as its devices, an auditor or the simulator reach it over
HTTP: its URL and the error when it does not answer usefully."""

from __future__ import annotations

from medchain.client import is_http_url
from medchain.types import MedchainError

DEFAULT_GATEWAY = "http://127.0.0.1:8700"


class GatewayUnavailable(MedchainError):
    """A gateway did not answer, or answered something unusable."""

    code = "gateway_error"


def gateway_url(text: str) -> str:
    """`text` checked as a gateway's URL before any request."""
    if not is_http_url(text):
        raise GatewayUnavailable(
            f"{text[:200]!r} is not a gateway URL; give one like {DEFAULT_GATEWAY} "
            "(--gateway or MEDCHAIN_GATEWAY)"
        )
    return text

"""What the route modules share: a refusal's status by the chain's code, and a record
id read from the path or refused with a message."""

from __future__ import annotations

import pytest
from starlette.requests import Request

from medchain.app import NotAuthorised
from medchain.types import MedchainError
from medchain.web._routing import record_id_in, refusal_status


def _request(record_id: str) -> Request:
    return Request({"type": "http", "path_params": {"record_id": record_id}})


def test_a_refusal_of_the_account_is_403_anything_else_400() -> None:
    assert refusal_status(NotAuthorised("not yours")) == 403
    assert refusal_status(MedchainError("bad input")) == 400


def test_a_record_id_is_32_hex_characters() -> None:
    assert record_id_in(_request("ab" * 16)) == b"\xab" * 16
    for bad in ("xyz", "ab" * 15):
        with pytest.raises(MedchainError, match="not a record id"):
            record_id_in(_request(bad))

"""`on_chain`: a 404 for what is not on chain, and only for that."""

from __future__ import annotations

import pytest

from medchain.api._errors import ApiError
from medchain.api._lookups import on_chain


def test_none_is_a_404_with_the_code_and_message() -> None:
    with pytest.raises(ApiError) as raised:
        on_chain(None, "unknown_thing", "no thing here; check the id")
    assert raised.value.status_code == 404
    assert (raised.value.code, raised.value.message) == (
        "unknown_thing",
        "no thing here; check the id",
    )


@pytest.mark.parametrize("found", [0, b"", (), "x"])
def test_what_is_found_is_returned_even_when_falsy(found: object) -> None:
    assert on_chain(found, "unknown_thing", "never said") == found

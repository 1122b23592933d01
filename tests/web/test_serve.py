"""Serving on 127.0.0.1: a taken port is one clear error; the link names the port and
the token."""

from __future__ import annotations

import pytest

from medchain.web import Secrets, app_url
from medchain.web._serve import PortTaken, bind


def test_a_taken_port_says_to_choose_another() -> None:
    with bind(0) as first:
        port = first.getsockname()[1]
        with pytest.raises(PortTaken, match=f"127.0.0.1:{port}.*--port"):
            bind(port)


def test_the_link_holds_the_port_and_the_token() -> None:
    keys = Secrets()
    assert app_url(8711, keys) == f"http://127.0.0.1:8711/?token={keys.url_token}"
    assert len({Secrets().url_token for _ in range(3)}) == 3

"""Serving on 127.0.0.1: a taken port is one clear error; the link names the port and
the token; an app served from a thread answers its link until its block ends."""

from __future__ import annotations

import httpx
import pytest

from medchain.web import Secrets, app_url, explorer_app, serving
from medchain.web._serve import PortTaken, bind
from tests.web.conftest import Ward, node_chain


def test_a_taken_port_says_to_choose_another() -> None:
    with bind(0) as first:
        port = first.getsockname()[1]
        with pytest.raises(PortTaken, match=f"127.0.0.1:{port}.*--port"):
            bind(port)


def test_the_link_holds_the_port_and_the_token() -> None:
    keys = Secrets()
    assert app_url(8711, keys) == f"http://127.0.0.1:8711/?token={keys.url_token}"
    assert len({Secrets().url_token for _ in range(3)}) == 3


def test_serving_from_a_thread_answers_its_link_until_the_block_ends(ward: Ward) -> None:
    with serving(lambda port, keys: explorer_app(node_chain(ward), port, keys)) as link:
        base = link.split("/?", 1)[0]
        with httpx.Client(timeout=30) as client:
            assert client.get(base + "/").status_code == 401  # no token, no page
            assert client.get(link).status_code == 303
            assert client.get(base + "/").status_code == 200
    with pytest.raises(httpx.ConnectError):
        httpx.get(base + "/", timeout=5)

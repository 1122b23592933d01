"""A gateway's URL as users give it (medchain.gateway._remote)."""

from __future__ import annotations

import pytest

from medchain.gateway import DEFAULT_GATEWAY, GatewayUnavailable, gateway_url


def test_http_and_https_urls_with_a_host_are_gateways() -> None:
    for url in (DEFAULT_GATEWAY, "https://gw.example:8443", "http://[::1]:8700/"):
        assert gateway_url(url) == url


def test_anything_else_is_refused_with_an_example() -> None:
    for bad in ("", "gw:8700", "ftp://gw", "http://", "http://gw\x00", "http://" + "a" * 70_000):
        with pytest.raises(GatewayUnavailable, match="is not a gateway URL; give one like"):
            gateway_url(bad)

"""The gateway's config.json: defaults round-trip, every bound is enforced with a message
naming the setting (the mqtt section is covered with MQTT intake)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from medchain.gateway._config import (
    GatewayConfig,
    GatewayConfigError,
    load_config,
    parse_config,
    write_config,
)


def test_defaults_round_trip_through_a_home(tmp_path: Path) -> None:
    config = replace(GatewayConfig(), intake_workers=3, port=8711)
    write_config(tmp_path, config)
    assert load_config(tmp_path) == config
    assert GatewayConfig().intake_workers == 1


def test_a_config_from_before_intake_workers_still_loads() -> None:
    raw = json.loads(GatewayConfig().to_json())
    del raw["intake_workers"]
    assert parse_config(raw).intake_workers == 1


@pytest.mark.parametrize("value", [-1, 65, "2", True, 1.5])
def test_intake_workers_must_be_a_small_integer(value: object) -> None:
    with pytest.raises(GatewayConfigError, match="intake_workers must be an integer from 0 to 64"):
        parse_config({"intake_workers": value})


def test_zero_intake_workers_checks_in_the_gateways_process() -> None:
    assert parse_config({"intake_workers": 0}).intake_workers == 0


def test_the_public_url_is_where_patients_reach_the_gateway() -> None:
    assert parse_config({"host": "10.0.0.5", "port": 8710}).api_url == "http://10.0.0.5:8710"
    given = parse_config({"host": "0.0.0.0", "public_url": "https://edge.example"})
    assert given.api_url == "https://edge.example"
    for bad in ("edge.example", "ftp://edge.example", 8700, None, "https://" + "e" * 300):
        with pytest.raises(GatewayConfigError, match="public_url must be the http"):
            parse_config({"public_url": bad})


def test_the_disclosure_commit_interval_is_bounded() -> None:
    assert GatewayConfig().disclosure_commit_interval_ms == 5_000
    for bad in (0, 99, 3_600_001, "5000"):
        with pytest.raises(GatewayConfigError, match="disclosure_commit_interval_ms"):
            parse_config({"disclosure_commit_interval_ms": bad})

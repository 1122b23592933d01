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

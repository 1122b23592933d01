"""An edge gateway's home directory and its `config.json`.

    HOME/
      gateway.key     the gateway's account (a hospital registers its address on chain
                      with `medchain gateways register`)
      config.json     node URL, listen address, batching and rate limits
      index.sqlite    replay guard, pending readings, committed readings and proofs

Strike thresholds are not here: they are chain parameters, the same for every gateway.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from medchain.types import MedchainError

CONFIG_FILE = "config.json"
GATEWAY_KEY_FILE = "gateway.key"
INDEX_FILE = "index.sqlite"


class GatewayConfigError(MedchainError):
    code = "bad_config"


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    node_url: str = "http://127.0.0.1:8600"
    host: str = "127.0.0.1"
    port: int = 8700
    batch_max_readings: int = 2_000
    batch_max_delay_ms: int = 1_000
    rate_per_minute: int = 120
    """Sustained readings per minute per device (a token bucket's refill rate)."""
    rate_burst: int = 20
    """Readings a device may send at once (the bucket's size), e.g. after buffering."""
    device_cache_ms: int = 2_000
    """How long a device's on-chain record is trusted before it is read again."""
    max_readings_per_request: int = 500
    strike_bad_signatures: bool = False
    """Report readings whose signature fails as `unsigned` strikes. Off by default: the
    device keys are public on chain, so anyone could forge such readings and get an
    honest device banned. Turn it on only behind authenticated transport (mTLS)."""

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2) + "\n"


_INT_LIMITS = {
    "port": (1, 65_535),
    "batch_max_readings": (1, 100_000),
    "batch_max_delay_ms": (10, 3_600_000),
    "rate_per_minute": (1, 1_000_000),
    "rate_burst": (1, 1_000_000),
    "device_cache_ms": (0, 3_600_000),
    "max_readings_per_request": (1, 10_000),
}


def parse_config(raw: dict[str, Any]) -> GatewayConfig:
    """Check every field; an unknown key is refused so a typo is not silently ignored."""
    known = set(GatewayConfig.__dataclass_fields__)
    unknown = sorted(set(raw) - known)
    if unknown:
        raise GatewayConfigError(
            f"unknown setting(s) {unknown} in the gateway config; known: {sorted(known)}"
        )
    for key in ("node_url", "host"):
        if key in raw and (type(raw[key]) is not str or not raw[key]):
            raise GatewayConfigError(f"{key} must be a non-empty string, found {raw[key]!r}")
    for key, (low, high) in _INT_LIMITS.items():
        if key in raw and (type(raw[key]) is not int or not low <= raw[key] <= high):
            raise GatewayConfigError(
                f"{key} must be an integer from {low} to {high}, found {raw[key]!r}"
            )
    if "strike_bad_signatures" in raw and type(raw["strike_bad_signatures"]) is not bool:
        raise GatewayConfigError("strike_bad_signatures must be true or false")
    return GatewayConfig(**raw)


def load_config(home: Path) -> GatewayConfig:
    path = home / CONFIG_FILE
    if not path.exists():
        raise GatewayConfigError(
            f"{home} is not a gateway home (no {CONFIG_FILE}); create one with "
            "`medchain gateway init --home DIR --node URL`"
        )
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise GatewayConfigError(f"cannot read {path}: {exc}") from None
    if not isinstance(raw, dict):
        raise GatewayConfigError(f"{path} must hold a JSON object")
    return parse_config(raw)


def write_config(home: Path, config: GatewayConfig, *, overwrite: bool = False) -> Path:
    """Write `config` to HOME/config.json, checked as `load_config` will read it back, so
    a home written here always loads."""
    parse_config(json.loads(config.to_json()))
    path = home / CONFIG_FILE
    if path.exists() and not overwrite:
        raise GatewayConfigError(f"{path} already exists; edit it, or choose another home")
    path.write_text(config.to_json(), encoding="utf-8")
    return path

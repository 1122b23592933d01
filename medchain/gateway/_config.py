"""An edge gateway's home directory and its `config.json`.

    HOME/
      gateway.key     the gateway's account (a hospital registers its address on chain
                      with `medchain gateways register`)
      config.json     node URL, listen address and public URL, batching and rate
                      limits, and an optional "mqtt" section (the broker devices
                      publish readings to)
      index.sqlite    replay guard and pending readings
      index-committed.sqlite
                      committed batches and readings (where each went, for proofs)
      disclosures.sqlite
                      the reading statuses it told, to whom (its disclosure log)

Strike thresholds are not here: they are chain parameters, the same for every gateway.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from medchain.app import MAX_API_URL_CHARS
from medchain.client import is_http_url
from medchain.node import DEFAULT_COMMIT_INTERVAL_S
from medchain.types import MedchainError

CONFIG_FILE = "config.json"
GATEWAY_KEY_FILE = "gateway.key"
INDEX_FILE = "index.sqlite"


class GatewayConfigError(MedchainError):
    code = "bad_config"


@dataclass(frozen=True, slots=True)
class MqttConfig:
    """The MQTT broker the gateway subscribes to. Devices publish on
    `<topic_prefix>/<device address>/readings` and read answers on `.../acks`.

    Connections are persistent sessions (clean_session off, a fixed client id), so QoS 1
    readings published while the gateway is away wait at the broker."""

    host: str = "127.0.0.1"
    port: int = 1883
    topic_prefix: str = "medchain/devices"
    client_id: str = ""
    """Empty: "medchain-gateway-<gateway address>", stable across restarts."""
    username: str | None = None
    password: str | None = None
    tls: bool = False
    ca_file: str | None = None
    """CA bundle to verify the broker with; None uses the system's CAs."""
    cert_file: str | None = None
    """Client certificate and key (mutual TLS), both or neither."""
    key_file: str | None = None
    max_inflight: int = 512
    """The largest group of readings processed (and stored) at once, and as many more
    queued behind it; beyond that the gateway stops taking messages from the broker."""
    max_queued: int = 10_000
    """Messages buffered from the broker while busy; beyond that they are dropped
    unacknowledged, and the device resends (a resend of an accepted reading is safe)."""
    reconnect_max_ms: int = 30_000
    """Ceiling of the reconnect backoff, which starts at 0.5 s and doubles."""


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    node_url: str = "http://127.0.0.1:8600"
    host: str = "127.0.0.1"
    port: int = 8700
    public_url: str = ""
    """The URL patients' clients reach this gateway at: committed on chain with its
    disclosure log's heads, where `medchain record disclosures` asks for its entries.
    Empty: http://host:port, right only if others reach the gateway at that address."""
    disclosure_commit_interval_ms: int = int(DEFAULT_COMMIT_INTERVAL_S * 1000)
    """How often the disclosure log's head is committed, while it has new entries."""
    batch_max_readings: int = 20_000
    batch_max_delay_ms: int = 1_000
    rate_per_minute: int = 120
    """Sustained readings per minute per device (a token bucket's refill rate)."""
    rate_burst: int = 20
    """Readings a device may send at once (the bucket's size), e.g. after buffering."""
    device_cache_ms: int = 2_000
    """How long a device's on-chain record is trusted before it is read again."""
    readers_cache_ms: int = 60_000
    """How long a patient's list of readers (guardians, vitals readers) and their keys
    are trusted: a reader the patient adds gets bundles sealed at most this much later
    (twice this, for a gateway re-reading the lists in the background as it serves)."""
    max_readings_per_request: int = 500
    max_clock_ahead_ms: int = 300_000
    """How far ahead of the gateway's clock a reading's time may be. Device clocks drift a
    little; a reading from further in the future is refused (`bad_time`), so no device
    files readings under days still to come."""
    max_reading_age_days: int = 0
    """Refuse (`bad_time`) readings taken more than this many days ago; 0 takes any age,
    since devices keep readings while offline and send them when they reconnect."""
    intake_workers: int = 1
    """Processes that parse readings and check their signatures and profiles (about
    90 µs of CPU a reading) beside the gateway's own process, which then only decides
    and stores. One per core the gateway may use besides its own; 0 checks in the
    gateway's own process, whose one interpreter then does all the work."""
    strike_bad_signatures: bool = False
    """Report readings whose signature fails as `unsigned` strikes. Off by default: the
    device keys are public on chain, so anyone could forge such readings and get an
    honest device banned. Turn it on only behind authenticated transport (mTLS)."""
    mqtt: MqttConfig | None = None
    """Take readings over MQTT as well as HTTP; None (the default) means HTTP only."""

    @property
    def api_url(self) -> str:
        """Where the gateway is reached: `public_url`, or its listen address."""
        return self.public_url or f"http://{self.host}:{self.port}"

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2) + "\n"


_INT_LIMITS = {
    "port": (1, 65_535),
    "batch_max_readings": (1, 100_000),
    "batch_max_delay_ms": (10, 3_600_000),
    "rate_per_minute": (1, 1_000_000),
    "rate_burst": (1, 1_000_000),
    "device_cache_ms": (0, 3_600_000),
    "readers_cache_ms": (0, 3_600_000),
    "max_readings_per_request": (1, 10_000),
    "max_clock_ahead_ms": (0, 86_400_000),
    "max_reading_age_days": (0, 36_500),
    "intake_workers": (0, 64),
    "disclosure_commit_interval_ms": (100, 3_600_000),
}


_MQTT_INT_LIMITS = {
    "port": (1, 65_535),
    "max_inflight": (1, 10_000),
    "max_queued": (1, 1_000_000),
    "reconnect_max_ms": (500, 3_600_000),
}
_MQTT_STR = ("host", "topic_prefix")
_MQTT_OPTIONAL_STR = ("username", "password", "ca_file", "cert_file", "key_file")


def parse_mqtt_config(raw: object) -> MqttConfig:
    """The `mqtt` section, checked like the rest: unknown keys and bad types refused."""
    if not isinstance(raw, dict):
        raise GatewayConfigError(f"mqtt must be an object (or null), found {raw!r}")
    known = set(MqttConfig.__dataclass_fields__)
    unknown = sorted(set(raw) - known)
    if unknown:
        raise GatewayConfigError(
            f"unknown setting(s) {unknown} in the gateway's mqtt section; known: {sorted(known)}"
        )
    for key in _MQTT_STR:
        if key in raw and (type(raw[key]) is not str or not raw[key]):
            raise GatewayConfigError(f"mqtt.{key} must be a non-empty string, found {raw[key]!r}")
    prefix = raw.get("topic_prefix", MqttConfig().topic_prefix)
    if any(c in prefix for c in "+#\x00") or prefix.startswith("/") or prefix.endswith("/"):
        raise GatewayConfigError(
            f"mqtt.topic_prefix {prefix!r} must be a plain topic (no wildcards + or #, "
            "no leading or trailing /), e.g. medchain/devices"
        )
    if "client_id" in raw and type(raw["client_id"]) is not str:
        raise GatewayConfigError("mqtt.client_id must be a string (empty for the default)")
    for key in _MQTT_OPTIONAL_STR:
        if raw.get(key) is not None and (type(raw[key]) is not str or not raw[key]):
            raise GatewayConfigError(f"mqtt.{key} must be a non-empty string or null")
    for key, (low, high) in _MQTT_INT_LIMITS.items():
        if key in raw and (type(raw[key]) is not int or not low <= raw[key] <= high):
            raise GatewayConfigError(
                f"mqtt.{key} must be an integer from {low} to {high}, found {raw[key]!r}"
            )
    if "tls" in raw and type(raw["tls"]) is not bool:
        raise GatewayConfigError("mqtt.tls must be true or false")
    if (raw.get("cert_file") is None) != (raw.get("key_file") is None):
        raise GatewayConfigError(
            "mqtt.cert_file and mqtt.key_file go together: set both or neither"
        )
    files = [k for k in ("ca_file", "cert_file", "key_file") if raw.get(k) is not None]
    if files and not raw.get("tls", False):
        raise GatewayConfigError(f"mqtt.{files[0]} is set but mqtt.tls is off; set tls to true")
    if raw.get("password") is not None and raw.get("username") is None:
        raise GatewayConfigError("mqtt.password needs mqtt.username")
    return MqttConfig(**raw)


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
    public_url = raw.get("public_url", "")
    if public_url != "" and (
        type(public_url) is not str
        or not is_http_url(public_url)
        or len(public_url) > MAX_API_URL_CHARS
    ):
        raise GatewayConfigError(
            f"public_url must be the http(s) URL the gateway is reached at, of at most "
            f"{MAX_API_URL_CHARS} characters (or empty for http://host:port), "
            f"found {public_url!r}"
        )
    if "strike_bad_signatures" in raw and type(raw["strike_bad_signatures"]) is not bool:
        raise GatewayConfigError("strike_bad_signatures must be true or false")
    mqtt = raw.get("mqtt")
    return GatewayConfig(**(raw | {"mqtt": None if mqtt is None else parse_mqtt_config(mqtt)}))


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

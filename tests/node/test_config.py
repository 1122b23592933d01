from pathlib import Path

import pytest

from medchain.node import (
    AdmissionConfig,
    ConfigError,
    NodeConfig,
    PeerConfig,
    config_from_json,
    config_to_json,
    read_config,
    write_config,
)

PEM = b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"


def test_a_config_round_trips_through_its_json(tmp_path: Path) -> None:
    config = NodeConfig(
        name="hospital-a",
        p2p_host="10.0.0.1",
        p2p_port=26656,
        api_host="0.0.0.0",
        api_port=8080,
        peers=(
            PeerConfig("hospital-b", b"\x01" * 32, PEM, "10.0.0.2", 26656),
            PeerConfig("edge-1", b"\x02" * 32, PEM),
        ),
        block_interval_ms=500,
        p2p_max_handshakes=32,
        p2p_max_handshakes_per_address=4,
        p2p_refusal_log_interval_s=60,
        log_level="debug",
        log_file="/var/log/medchain/node.log",
        log_max_bytes=2**20,
        log_backups=3,
        upload_quota_bytes=2**20,
        body_grace_s=600,
        body_collect_interval_s=30,
        snapshot_interval=50,
        snapshot_keep=5,
        store_maintain_blocks=50,
        store_wal_max_bytes=2**20,
        admission=AdmissionConfig(workers=3, client_rate=500, peer_burst=9_000),
        state_cache_mb=512,
        extra={"anchor": {"every": 10}},
    )
    write_config(tmp_path, config)
    assert read_config(tmp_path) == config
    assert config.api_url == "http://0.0.0.0:8080"


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("not json", "not a valid node configuration"),
        ('{"p2p": {}}', "not a valid node configuration"),
        ('{"name": "a", "p2p": {"port": -1}}', "port must be an integer"),
        ('{"name": "a", "peers": [{"key": "00", "cert": ""}]}', "key must be 32 bytes"),
        (
            '{"name": "a", "peers": [{"key": "' + "00" * 32 + '", "cert": "", "host": "h"}]}',
            "both host and port",
        ),
        ('{"name": "a", "p2p": {"max_handshakes": 0}}', "max_handshakes must be an integer >= 1"),
        (
            '{"name": "a", "p2p": {"max_handshakes_per_address": 0}}',
            "max_handshakes_per_address must be an integer >= 1",
        ),
        ('{"name": "a", "p2p": {"refusal_log_interval_s": 0}}', "refusal_log_interval_s"),
        ('{"name": "a", "log_level": "loud"}', "log_level must be one of debug, info"),
        ('{"name": "a", "log": {"max_bytes": 1000}}', "max_bytes must be an integer >= 65536"),
        ('{"name": "a", "log": {"backups": 0}}', "backups must be an integer >= 1"),
        ('{"name": "a", "log": {"file": ""}}', "log.file must be a file name or null"),
        (
            '{"name": "a", "bodies": {"upload_quota_bytes": 1000}}',
            "upload_quota_bytes must be an integer >= 65536",
        ),
        ('{"name": "a", "bodies": {"grace_s": 0}}', "grace_s must be an integer >= 1"),
        ('{"name": "a", "bodies": {"collect_interval_s": "1m"}}', "collect_interval_s"),
        ('{"name": "a", "snapshots": {"keep": 0}}', "keep must be an integer >= 1"),
        ('{"name": "a", "snapshots": {"interval": -5}}', "interval must be an integer >= 0"),
        ('{"name": "a", "disk": {"maintain_every_blocks": 0}}', "maintain_every_blocks"),
        ('{"name": "a", "disk": {"wal_max_bytes": 100}}', "wal_max_bytes must be an integer"),
        ('{"name": "a", "admission": {"client_rate": 0}}', "client_rate must be an integer >= 1"),
        ('{"name": "a", "admission": {"workers": -1}}', "workers must be an integer >= 0"),
        ('{"name": "a", "state": {"cache_mb": -1}}', "cache_mb must be an integer >= 0"),
        ('{"name": "a", "admission": {"client_rte": 5}}', "admission has no setting 'client_rte'"),
    ],
)
def test_a_bad_config_says_what_is_wrong(text: str, words: str) -> None:
    with pytest.raises(ConfigError, match=words):
        config_from_json(text, "config.json")


def test_a_missing_config_points_to_the_setup(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="devnet up"):
        read_config(tmp_path)


def test_defaults_fill_what_is_left_out() -> None:
    config = config_from_json('{"name": "n"}')
    assert config.p2p_port == 9600 and config.api_port == 8600 and config.peers == ()
    assert (config.p2p_max_handshakes, config.p2p_max_handshakes_per_address) == (64, 16)
    assert config.log_file == "node.log" and config.log_level == "info"
    assert (config.log_max_bytes, config.log_backups) == (10 * 2**20, 5)
    assert (config.upload_quota_bytes, config.body_grace_s) == (64 * 2**20, 3_600)
    assert config.body_collect_interval_s == 60
    assert (config.snapshot_interval, config.snapshot_keep) == (1_000, 3)
    assert (config.store_maintain_blocks, config.store_wal_max_bytes) == (1_000, 64 * 2**20)
    assert config.state_cache_mb == 128
    assert config.admission == AdmissionConfig()
    assert config_from_json(config_to_json(config)) == config


def test_a_null_log_file_means_stderr() -> None:
    config = config_from_json('{"name": "n", "log": {"file": null}, "log_level": "WARNING"}')
    assert config.log_file is None and config.log_level == "warning"
    assert config_from_json(config_to_json(config)) == config

"""`medchain reading list`, in process: readings a gateway committed on a LocalChain (the
`world` of the gateway service tests), read back by the patient and by a reader the
patient shares their vitals with."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from medchain.app import MS_PER_DAY
from medchain.cli import _readings, app
from medchain.crypto import AccountKeys, save_keys
from medchain.gateway import DeviceKind
from medchain.gateway._index import ReadingIndex
from tests.api.harness import clinician
from tests.gateway.test_service import World, world  # noqa: F401  (the fixture)

runner = CliRunner()
MIDNIGHT = 19_845 * MS_PER_DAY  # 2024-05-02T00:00:00Z
MINUTE = 60_000


@pytest.fixture
def story(
    world: World,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> dict[str, Any]:
    """Two devices of the patient stream from 23:30 to 00:20 UTC; a doctor reads them."""
    doctor = clinician(world.chain, "Dr. Who")
    world.patient.share_vitals(doctor.address)
    service = world.service(ReadingIndex(":memory:"))
    devices = [world.device(DeviceKind.PULSE_OXIMETER), world.device(DeviceKind.THERMOMETER)]
    for sim in devices:
        sim.now_ms, sim.interval_ms = MIDNIGHT - 30 * MINUTE, 10 * MINUTE
    for _ in range(6):
        for sim in devices:
            service.submit(sim.next_reading())
    service.flush()

    @contextlib.contextmanager
    def backend(_node: str, _data: Path | None) -> Iterator[Any]:
        yield world.chain

    monkeypatch.setattr(_readings, "open_backend", backend)
    keys = {}
    for name, who in (("patient", world.patient), ("doctor", doctor)):
        keys[name] = str(tmp_path / f"{name}.key")
        save_keys(keys[name], who.keys)
    stranger = AccountKeys.generate()
    clinician(world.chain, "Dr. No", keys=stranger)
    keys["stranger"] = str(tmp_path / "stranger.key")
    save_keys(keys["stranger"], stranger)
    return {
        "keys": keys,
        "patient": world.patient.keys.address_text,
        "oximeter": devices[0].keys.address_text,
        "thermometer": devices[1].keys.address_text,
    }


def _list(*args: str) -> Any:
    result = runner.invoke(app, ["reading", "list", *args])
    assert result.exit_code == 0, result.output
    return result.output


def test_patient_lists_a_device_across_midnight(story: dict[str, Any]) -> None:
    span = ["--from", "2024-05-01T23:50:00Z", "--to", "2024-05-02T00:10:00Z"]
    body = json.loads(
        _list("--key", story["keys"]["patient"], *span, "--device", story["oximeter"], "--json")
    )
    assert body["patient"] == story["patient"] and body["unreadable_bundles"] == 0
    assert (body["from_ms"], body["to_ms"]) == (MIDNIGHT - 10 * MINUTE, MIDNIGHT + 10 * MINUTE)
    times = [r["time"] for r in body["readings"]]
    assert times == [
        "2024-05-01T23:50:00.000Z",
        "2024-05-02T00:00:00.000Z",
        "2024-05-02T00:10:00.000Z",
    ]
    assert {r["device"] for r in body["readings"]} == {story["oximeter"]}
    assert {(r["measurement"], r["code"], r["unit"]) for r in body["readings"]} == {
        ("oxygen saturation", "59408-5", "%")
    }
    assert all(len(r["reading_id"]) == 64 for r in body["readings"])

    table = _list("--key", story["keys"]["patient"], *span)  # both devices, as a table
    for column in ("time", "device", "measurement", "value", "unit", "reading id"):
        assert column in table
    assert "oxygen saturation" in table and "body temperature" in table and "Cel" in table
    assert table.count("2024-05-02T00:00:00.000Z") == 2


def test_a_reader_lists_the_patients_readings_by_date(story: dict[str, Any]) -> None:
    reader = ["--key", story["keys"]["doctor"], "--patient", story["patient"]]
    day = json.loads(
        _list(*reader, "--from", "2024-05-02", "--to", "2024-05-02", "--json")
    )  # the whole UTC day: 00:00 to 00:20, both devices
    assert len(day["readings"]) == 6
    both = json.loads(_list(*reader, "--from", "2024-05-01", "--to", "2024-05-02", "--json"))
    assert len(both["readings"]) == 12
    in_ms = json.loads(
        _list(
            *reader,
            "--from",
            str(MIDNIGHT + 20 * MINUTE),
            "--to",
            str(MIDNIGHT + 20 * MINUTE),
            "--device",
            story["thermometer"],
            "--json",
        )
    )
    assert [r["time_ms"] for r in in_ms["readings"]] == [MIDNIGHT + 20 * MINUTE]
    assert "no readings of" in _list(*reader, "--from", "2024-05-03", "--to", "2024-05-04")


def test_clear_errors(story: dict[str, Any]) -> None:
    span = ["--from", "2024-05-01", "--to", "2024-05-02"]
    stranger = runner.invoke(
        app,
        [
            "reading",
            "list",
            "--key",
            story["keys"]["stranger"],
            "--patient",
            story["patient"],
            *span,
        ],
    )
    assert stranger.exit_code == 1
    assert "is not a reader of these vitals" in stranger.output
    assert "medchain devices share-vitals" in stranger.output
    bad = runner.invoke(
        app, ["reading", "list", "--key", story["keys"]["patient"], "--from", "soon", "--to", "1"]
    )
    assert bad.exit_code == 1 and "is not a time" in bad.output
    too_long = runner.invoke(
        app,
        [
            "reading",
            "list",
            "--key",
            story["keys"]["patient"],
            "--from",
            "2023-01-01",
            "--to",
            "2024-05-02",
        ],
    )
    assert too_long.exit_code == 1 and "at most 366" in too_long.output

"""`medchain devices …` and `medchain gateways …` on a local chain, as a user runs them."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from medchain.app import DeviceAction, DeviceAuditEntry, DeviceState
from medchain.cli._devices import device_audit_table
from medchain.crypto import load_keys
from tests.cli.consortium import (
    HOSPITAL,
    RESEARCH,
    Cli,
    admin,
    cli,
    clinician,
    org_account,
    patient,
    refusal,
)

__all__ = ["cli"]

OTHER_HOSPITAL = "riverside"


def _admin(cli: Cli, org_id: str = HOSPITAL) -> tuple[str, str]:
    """A founding organisation's admin (who registers its devices and gateways)."""
    path = admin(cli, org_id)
    return path, load_keys(Path(path)).address_text


def test_devices_story(cli: Cli) -> None:
    alice, alice_addr = patient(cli, "alice")
    bob, bob_addr = patient(cli, "bob")
    hospital, _ = _admin(cli)
    device_key, device = cli.key("oximeter")

    assert "may now manage" in cli("devices", "guardian", "add", bob_addr, "--key", alice)
    assert bob_addr in cli("devices", "guardian", "list", "--patient", alice_addr)
    out = cli(
        "devices",
        "register",
        "--key",
        bob,
        "--device-key",
        str(device_key),
        "--patient",
        alice_addr,
        "--kind",
        "pulse_oximeter",
        "--label",
        "finger",
    )
    assert out.strip().splitlines()[-1] == device

    shown = cli("devices", "show", device)
    assert alice_addr in shown and bob_addr in shown and "pulse_oximeter" in shown
    assert "active" in shown
    # the label is sealed for alice and her guardian: without their key, nobody reads it
    assert "finger" not in shown and "sealed for 2" in shown
    assert "finger" not in cli("devices", "list", "--patient", alice_addr)
    assert "finger" in cli("devices", "list", "--patient", alice_addr, "--key", alice)
    assert "finger" in cli("devices", "show", device, "--key", bob)
    assert "finger" not in cli("devices", "show", device, "--key", hospital)

    cli("devices", "state", device, "restricted", "--reason", "battery low", "--key", alice)
    shown = cli("devices", "show", device)
    assert "restricted" in shown and "battery low" in shown and "may lift" in shown
    evidence = cli.tmp / "evidence.log"
    evidence.write_bytes(b"tampered casing")
    proof = ("--evidence-file", str(evidence))
    ban = ("devices", "state", device, "banned", "--reason", "tampered", *proof)
    # a hospital that did not register the device has no say over it
    assert refusal(cli, *ban, "--key", hospital).startswith(
        "error (not_authorised): only the patient who owns device"
    )
    cli(*ban, "--key", alice)
    refused = cli("devices", "state", device, "active", "--reason", "ok", "--key", alice, ok=False)
    assert "device_banned" in refused and "organisation that registered it" in refused
    audit = cli("devices", "audit", device)
    assert "registered" in audit and "state_changed" in audit and "tampered" in audit

    removed = cli("devices", "guardian", "remove", bob_addr, "--key", alice)
    assert "no longer manages" in removed and "1 device label(s) sealed again" in removed
    assert bob_addr not in cli("devices", "guardian", "list", "--patient", alice_addr)
    assert "finger" not in cli("devices", "show", device, "--key", bob)
    assert "finger" in cli("devices", "show", device, "--key", alice)


def test_relabel_and_a_guardian_added_later(cli: Cli) -> None:
    alice, alice_addr = patient(cli, "alice")
    carol, carol_addr = clinician(cli, "carol")
    hospital, _ = _admin(cli)
    device_key, device = cli.key("pump")
    cli(
        "devices", "register", "--key", hospital, "--device-key", str(device_key),
        "--patient", alice_addr, "--kind", "glucose_meter", "--label", "insulin pump",
    )  # fmt: skip
    assert "insulin pump" not in cli("devices", "show", device, "--key", hospital)
    added = cli("devices", "guardian", "add", carol_addr, "--key", alice)
    assert "1 device label(s) sealed again" in added
    assert "insulin pump" in cli("devices", "show", device, "--key", carol)
    relabelled = cli("devices", "relabel", device, "--label", "pump, belly", "--key", carol)
    assert "relabelled" in relabelled
    assert "pump, belly" in cli("devices", "list", "--patient", alice_addr, "--key", alice)
    assert "relabelled" in cli("devices", "audit", device)
    refused = cli("devices", "relabel", device, "--key", hospital, ok=False)
    assert "cannot seal it again" in refused and "sealed for others" in refused
    too_long = cli("devices", "relabel", device, "--label", "x" * 65, "--key", alice, ok=False)
    assert "at most 64 characters" in too_long


def test_gateways(cli: Cli) -> None:
    hospital, hospital_addr = _admin(cli)
    other, _ = _admin(cli, OTHER_HOSPITAL)
    _, gateway = cli.key("gateway")
    cli("gateways", "register", gateway, "--label", "ward 3", "--key", hospital)
    shown = cli("gateways", "show", gateway)
    assert "ward 3" in shown and hospital_addr in shown and "yes" in shown
    assert "not_authorised" in cli("gateways", "revoke", gateway, "--key", other, ok=False)
    cli("gateways", "revoke", gateway, "--key", hospital)
    assert "revoked" in cli("gateways", "show", gateway)


def test_clear_errors(cli: Cli) -> None:
    alice, alice_addr = patient(cli, "alice")
    device_key, device = cli.key("thing")
    wrong_kind = cli(
        "devices",
        "register",
        "--key",
        alice,
        "--device-key",
        str(device_key),
        "--patient",
        alice_addr,
        "--kind",
        "toaster",
        "--label",
        "x",
        ok=False,
    )
    assert "toaster" in wrong_kind and "heart_rate" in wrong_kind
    assert "medchain devices register" in cli("devices", "show", device, ok=False)
    assert "no device" in cli("devices", "audit", device, ok=False)
    assert "gateways register" in cli("gateways", "show", device, ok=False)
    typo = alice_addr[:-1] + ("q" if alice_addr[-1] != "q" else "p")
    assert "checksum" in cli("devices", "list", "--patient", typo, ok=False)
    _, nobody = cli.key("nobody")  # well-formed, never registered
    for command in (("devices", "list"), ("devices", "guardian", "list"), ("record", "list")):
        refused = cli(*command, "--patient", nobody, ok=False)
        assert "is not a patient on this chain" in refused and "--role patient" in refused
    bad_state = cli("devices", "state", device, "asleep", "--reason", "x", "--key", alice, ok=False)
    assert "restricted" in bad_state
    assert "unknown_device" in cli(
        "devices", "state", device, "banned", "--reason", "x", "--key", alice, ok=False
    )
    stranger, _ = patient(cli, "stranger")
    assert "not_authorised" in cli(
        "devices",
        "register",
        "--key",
        stranger,
        "--device-key",
        str(device_key),
        "--patient",
        alice_addr,
        "--kind",
        "ecg",
        "--label",
        "chest",
        ok=False,
    )


def test_share_vitals(cli: Cli) -> None:
    alice, alice_addr = patient(cli, "alice")
    _, doctor_addr = clinician(cli, "doctor")
    _, lab_addr = org_account(cli, RESEARCH)
    assert "committed from now on" in cli("devices", "share-vitals", doctor_addr, "--key", alice)
    cli("devices", "share-vitals", lab_addr, "--key", alice)
    readers = cli("devices", "vitals-readers", "--patient", alice_addr).split()
    assert sorted(readers) == sorted([doctor_addr, lab_addr])
    again = cli("devices", "share-vitals", doctor_addr, "--key", alice, ok=False)
    assert "already reads your vitals" in again
    cli("devices", "unshare-vitals", doctor_addr, "--key", alice)
    assert cli("devices", "vitals-readers", "--patient", alice_addr).split() == [lab_addr]
    gone = cli("devices", "unshare-vitals", doctor_addr, "--key", alice, ok=False)
    assert "does not read the vitals" in gone


def test_the_audit_table_shows_a_lapsed_restriction() -> None:
    def entry(seq: int, height: int, state: DeviceState, until: int) -> DeviceAuditEntry:
        action = DeviceAction.REGISTERED if seq == 0 else DeviceAction.STRIKE
        return DeviceAuditEntry(seq, height, 0, b"", action, bytes(20), state, until, seq, "", b"")

    trail = [entry(0, 2, DeviceState.ACTIVE, 0), entry(1, 5, DeviceState.RESTRICTED, 9)]
    console = Console(width=200, record=True)
    console.print(device_audit_table(trail, 9))
    assert "lapsed" not in console.export_text()  # still in force at height 9
    console.print(device_audit_table(trail, 12))
    lapsed = [line for line in console.export_text().splitlines() if "lapsed" in line]
    assert len(lapsed) == 1
    assert "10" in lapsed[0] and "active" in lapsed[0] and "until 9 ended" in lapsed[0]

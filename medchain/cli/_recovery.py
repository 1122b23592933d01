"""`medchain recovery …` and `medchain keys rotate`: a patient chooses guardians who
can together give a lost account back to a new key file, after a waiting period
during which the old key can cancel; a key that may have leaked is replaced at once,
the records re-wrapped for the new one."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Annotated

import typer

from medchain.app import RECOVERY_ID_SIZE, RecoveryRequest
from medchain.cli._common import (
    PASSPHRASE_ENV,
    Chain,
    address_arg,
    console,
    hex_id_arg,
    load_key_file,
    ok,
    on_chain,
    patient_arg,
    show_address,
)
from medchain.cli._options import KeyOption, key_option
from medchain.client import DEFAULT_RECOVERY_DELAY_MS, MedchainClient, new_key_file_keys
from medchain.crypto import AccountKeys, save_keys
from medchain.types import MedchainError

_DURATION = re.compile(r"^(\d{1,9})(ms|s|m|h|d)$")
_UNIT_MS = {"ms": 1, "s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}


def duration_ms(text: str) -> int:
    """A waiting period such as 24h, 3d or 90m, in milliseconds."""
    found = _DURATION.match(text.strip())
    if found is None:
        raise MedchainError(
            f"--delay {text[:40]!r}: give a number and a unit (ms, s, m, h or d), e.g. 24h"
        )
    return int(found.group(1)) * _UNIT_MS[found.group(2)]


def _passphrase_of(path: Path) -> str | None:
    """The passphrase to write `path`'s successor with: its own when it is encrypted
    (from MEDCHAIN_PASSPHRASE, else asked), None for a plain file."""
    try:
        encrypted = "encrypted_secret" in json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None  # loading it reports what is wrong
    if not encrypted:
        return None
    return os.environ.get(PASSPHRASE_ENV) or typer.prompt(
        f"Passphrase for {path} (the new key file gets it too)", hide_input=True
    )


def recovery_id_arg(text: str) -> bytes:
    return hex_id_arg(
        text[:80],
        RECOVERY_ID_SIZE,
        f"a recovery request id ({2 * RECOVERY_ID_SIZE} hex characters, as "
        "`medchain recovery request` and `status` print it)",
    )


def _request_line(request: RecoveryRequest) -> str:
    ready = f"ready at block time {request.ready_ms}" if request.ready_ms else "not ready"
    approvers = ", ".join(show_address(a.guardian) for a in request.approvals) or "none"
    return (
        f"{request.request_id.hex()}  {request.status.value}  asked at block "
        f"{request.requested_height}  approved by {approvers}  {ready}"
    )


@on_chain
def recovery_setup(
    where: Chain,
    key: KeyOption,
    guardian: Annotated[
        list[str],
        typer.Option(help="A guardian's address (repeat: 2 to 10 registered accounts)."),
    ],
    threshold: Annotated[int, typer.Option(min=2, max=10, help="Guardians needed.")],
    delay: Annotated[
        str, typer.Option(help="Waiting period after the approvals, e.g. 24h or 3d.")
    ] = "24h",
) -> None:
    """Choose your recovery guardians: a recovery secret is split among them and your
    encryption secrets are sealed under it. Replaces an earlier policy."""
    delay_ms = duration_ms(delay) if delay else DEFAULT_RECOVERY_DELAY_MS
    with where.client(key) as client:
        chosen = [address_arg(g) for g in guardian]
        client.set_up_recovery(chosen, threshold, delay_ms)
    ok(f"recovery set up: {threshold} of {len(set(chosen))} guardians, then a wait of {delay}")


@on_chain
def recovery_status(
    where: Chain,
    key: Annotated[Path | None, key_option("Your key file (or give --patient).")] = None,
    patient: Annotated[str | None, typer.Option(help="Whose recovery to show.")] = None,
) -> None:
    """Show a patient's guardians and recovery requests, and (with --key) the
    requests you are asked to approve as a guardian."""
    if (key is None) == (patient is None):
        raise MedchainError("give --key YOUR_KEY_FILE or --patient ADDRESS")
    with where.backend() as chain:
        keys = load_key_file(key) if key is not None else None
        client = MedchainClient(keys or AccountKeys.generate(), chain)
        whose = patient_arg(chain, patient) if patient is not None else client.address
        policy = client.recovery_policy(whose) if chain.identity(whose) else None
        if policy is None:
            console.print(f"{show_address(whose)} has no recovery guardians")
        else:
            names = ", ".join(show_address(g) for g in policy.guardians)
            console.print(
                f"guardians of {show_address(whose)}: {names}; {policy.threshold} must approve, "
                f"then a wait of {policy.delay_ms} ms"
            )
        requests = client.recovery_requests(whose) if chain.identity(whose) else []
        for request in requests:
            console.print(_request_line(request))
        asked = client.recovery_requests_to_approve() if keys is not None else []
        for request in asked:
            console.print(
                f"to approve for {show_address(request.patient)}: {_request_line(request)}"
            )


@on_chain
def recovery_request(
    where: Chain,
    account: Annotated[str, typer.Option(help="The address of the account to recover.")],
    key: Annotated[Path, key_option("Your NEW key file (`medchain keys new`).")],
) -> None:
    """With a new key file, ask to recover your account; prints the request id to
    give your guardians."""
    with where.client(key) as client:
        request_id = client.request_recovery(patient_arg(client.chain, account))
    ok("recovery requested: ask your guardians to approve it with `medchain recovery approve`")
    console.print(request_id.hex())


@on_chain
def recovery_approve(where: Chain, request_id: str, key: KeyOption) -> None:
    """As a guardian: approve a recovery request. Check first, in person or by phone,
    that the patient asked for it."""
    raw = recovery_id_arg(request_id)
    with where.client(key) as client:
        client.approve_recovery(raw)
    ok(f"approved recovery request {raw.hex()}")


@on_chain
def recovery_cancel(
    where: Chain,
    key: KeyOption,
    request_id: Annotated[str | None, typer.Argument(help="Default: the open one.")] = None,
) -> None:
    """With your current key: cancel a recovery of your account you did not ask for."""
    raw = recovery_id_arg(request_id) if request_id is not None else None
    with where.client(key) as client:
        client.cancel_recovery(raw)
    ok("recovery cancelled")


@on_chain
def recovery_complete(
    where: Chain,
    request_id: str,
    key: Annotated[Path, key_option("The new key file the request names.")],
) -> None:
    """After the waiting period: take over the account with the new key file, restore
    its old encryption secrets into that file and re-wrap your records for it."""
    raw = recovery_id_arg(request_id)
    passphrase = _passphrase_of(key)
    with where.client(key) as client:
        restored = client.complete_recovery(raw)
    save_keys(key, restored, passphrase, overwrite=True)
    ok(f"{show_address(restored.address)} is yours again with {key}")


@on_chain
def keys_rotate(
    where: Chain,
    key: KeyOption,
    out: Annotated[
        Path, typer.Option("--out", help="Where to write the new key file.", dir_okay=False)
    ],
) -> None:
    """Replace your keys (one may have leaked): writes the new key file first, then
    moves your account to it, re-wraps your records and re-issues your recovery kit.
    The old file signs for nothing afterwards."""
    passphrase = _passphrase_of(key)
    with where.client(key) as client:
        new = new_key_file_keys(client.keys)
        save_keys(out, new, passphrase)
        client.rotate_keys(new)
    ok(f"{show_address(new.address)} now signs with {out}; {key} is retired")

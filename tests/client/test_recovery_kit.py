"""The recovery secret's sharing and sealing: any threshold of shares opens the kit,
fewer do not, and every sealing is bound to its key and context."""

from __future__ import annotations

import itertools
import os

import pytest

from medchain.client import RecoveryKitError
from medchain.client._recovery_kit import (
    combine_recovery_shares,
    new_recovery_secret,
    open_kit,
    open_share,
    seal_kit,
    seal_share,
    share_context,
    split_recovery_secret,
)
from medchain.crypto import AccountKeys

PATIENT, GUARDIAN = b"\x01" * 20, b"\x02" * 20
SECRETS = (os.urandom(32), os.urandom(32))


def test_any_threshold_of_shares_opens_the_kit_and_fewer_do_not() -> None:
    secret = new_recovery_secret()
    shares = split_recovery_secret(secret, 3, 5)
    kit = seal_kit(secret, PATIENT, SECRETS)
    for enough in itertools.combinations(shares, 3):
        assert open_kit(combine_recovery_shares(enough), PATIENT, kit) == SECRETS
    for too_few in itertools.combinations(shares, 2):
        with pytest.raises(RecoveryKitError, match="too few"):
            open_kit(combine_recovery_shares(too_few), PATIENT, kit)


def test_the_kit_is_bound_to_its_patient_and_refuses_tampering() -> None:
    secret = new_recovery_secret()
    kit = seal_kit(secret, PATIENT, SECRETS)
    with pytest.raises(RecoveryKitError):
        open_kit(secret, GUARDIAN, kit)
    with pytest.raises(RecoveryKitError):
        open_kit(secret, PATIENT, kit[:-1] + bytes([kit[-1] ^ 1]))


def test_a_share_opens_only_for_its_guardian_in_its_context() -> None:
    guardian, other = AccountKeys.generate(), AccountKeys.generate()
    (share,) = split_recovery_secret(new_recovery_secret(), 1, 1)[:1]
    context = share_context(PATIENT, GUARDIAN)
    sealed = seal_share(share, guardian.encryption_public_key, context)
    assert open_share(sealed, guardian.decryption_keys, context) == share
    with pytest.raises(RecoveryKitError):
        open_share(sealed, other.decryption_keys, context)
    with pytest.raises(RecoveryKitError):
        open_share(sealed, guardian.decryption_keys, share_context(GUARDIAN, PATIENT))

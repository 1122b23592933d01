"""Transactions in words: method, sender, decoded arguments and what the receipt says."""

from __future__ import annotations

import dataclasses

from medchain.app import TransferArgs
from medchain.crypto import AccountKeys, format_address
from medchain.types import Attribute, Event, Receipt, Tx, encode, tx_id
from medchain.web._txs import show_value, tx_view


def _tx(method: str, args: bytes) -> tuple[AccountKeys, Tx]:
    keys = AccountKeys.generate()
    tx = Tx("medchain-test", 0, keys.public_key, 0, method, args)
    return keys, dataclasses.replace(tx, signature=keys.sign(tx.signing_bytes()))


def test_a_transfer_is_shown_with_its_arguments_and_effects() -> None:
    payee = AccountKeys.generate().address
    keys, tx = _tx("accounts.transfer", encode(TransferArgs(payee, 25, "rent")))
    receipt = Receipt(tx_id(tx), True, events=(Event("transfer", (Attribute("amount", "25"),)),))
    view = tx_view(tx, receipt)
    assert view.method == "accounts.transfer"
    assert view.sender == format_address(keys.address)
    assert dict(view.arguments)["to"] == format_address(payee)
    assert dict(view.arguments)["amount"] == "25"
    assert view.outcome == "ok"
    assert view.effects == ("transfer amount=25",)


def test_a_refused_call_and_undecodable_arguments() -> None:
    _, tx = _tx("accounts.transfer", b"\x01\x02")
    view = tx_view(tx, Receipt(tx_id(tx), False, "insufficient_funds", "balance 0"))
    assert view.arguments == (("arguments", "not decodable"),)
    assert view.outcome == "refused (insufficient_funds): balance 0"


def test_an_unknown_method_shows_its_size() -> None:
    _, tx = _tx("nothing.here", b"abc")
    assert tx_view(tx, None).arguments == (("arguments", "3 bytes of an unknown method"),)
    assert tx_view(tx, None).outcome == "no receipt"


def test_long_values_are_shortened() -> None:
    assert show_value(bytes(range(32))) == "0001020304050607… (32 bytes)"
    assert show_value(tuple(range(10))) == "[0, 1, 2, 3, 4, 5, … 4 more]"
    assert show_value(b"") == "—"

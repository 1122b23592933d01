"""Accounts contract: native token balances, nonces and transfers."""

from __future__ import annotations

from dataclasses import dataclass

from medchain.app._context import Call, Methods
from medchain.app._errors import BalanceTooLow, InvalidArgument
from medchain.app._state import State, load, save
from medchain.crypto import ADDRESS_SIZE, format_address


@dataclass(frozen=True, slots=True)
class Account:
    balance: int = 0
    nonce: int = 0
    """The nonce the account's next transaction must carry."""


@dataclass(frozen=True, slots=True)
class TransferArgs:
    to: bytes
    amount: int
    memo: str = ""


MAX_MEMO_CHARS = 256


def account_key(address: bytes) -> bytes:
    return b"acct/" + address


def get_account(state: State, address: bytes) -> Account:
    return load(state, account_key(address), Account) or Account()


def put_account(state: State, address: bytes, account: Account) -> None:
    save(state, account_key(address), account)


def credit(state: State, address: bytes, amount: int) -> None:
    account = get_account(state, address)
    put_account(state, address, Account(account.balance + amount, account.nonce))


def debit(state: State, address: bytes, amount: int, what: str) -> None:
    account = get_account(state, address)
    if account.balance < amount:
        raise BalanceTooLow(
            f"{what} needs {amount} tokens but {format_address(address)} holds "
            f"{account.balance}; fund the account first"
        )
    put_account(state, address, Account(account.balance - amount, account.nonce))


def transfer(state: State, call: Call, args: TransferArgs) -> None:
    if len(args.to) != ADDRESS_SIZE:
        raise InvalidArgument("transfer recipient must be a 20-byte address")
    if args.amount <= 0:
        raise InvalidArgument("transfer amount must be positive")
    if len(args.memo) > MAX_MEMO_CHARS:
        raise InvalidArgument(f"memo is limited to {MAX_MEMO_CHARS} characters")
    if args.to == call.sender:
        raise InvalidArgument("cannot transfer to yourself")
    debit(state, call.sender, args.amount, "this transfer")
    credit(state, args.to, args.amount)
    call.emit("transfer", sender=call.sender, to=args.to, amount=args.amount)


METHODS: Methods = {"accounts.transfer": (TransferArgs, transfer)}

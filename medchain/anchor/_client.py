"""A synchronous client of the Anchor contract (the node calls it from a worker
thread with `asyncio.to_thread`).

Anchors are read from the contract's `Anchored` and `Conflict` events with one
eth_getLogs each: the events carry everything an `Anchor` holds, including the
Ethereum transaction, which the view functions cannot give. Transactions are
signed locally with the node's Ethereum key (the endpoint holds no keys), so any
JSON-RPC endpoint works, Ganache or a public one."""

from __future__ import annotations

import contextlib
import functools
import json
import threading
from collections.abc import Iterator, Sequence
from importlib import resources
from pathlib import Path
from typing import Any, cast

from eth_abi import abi
from eth_abi.exceptions import DecodingError
from eth_account.signers.local import LocalAccount
from eth_utils.address import to_checksum_address
from web3 import HTTPProvider, Web3
from web3.contract.contract import ContractFunction
from web3.exceptions import (
    BadFunctionCallOutput,
    BadResponseFormat,
    ContractLogicError,
    ProviderConnectionError,
    RequestTimedOut,
    TimeExhausted,
    Web3RPCError,
)
from web3.types import EventData, TxParams, TxReceipt

from medchain.anchor._errors import (
    AlreadyAnchored,
    AnchorError,
    AnchorRejected,
    VerificationChainUnavailable,
)
from medchain.anchor._ethkey import load_eth_key
from medchain.anchor._settings import FINALIZED, AnchorSettings, Finality
from medchain.anchor._types import (
    MAX_CHAIN_ID_BYTES,
    Anchor,
    AnchorConflict,
    CheckpointCertificate,
    CheckpointSignature,
    decode_signatures,
    encode_signatures,
)
from medchain.types import DecodeError

ARTIFACT_NAME = "anchor_contract.json"
MAX_SIGNATURE_BYTES = 8192  # Bytes[MAX_SIGNATURES] in Anchor.vy
ALREADY_ANCHORED = "already anchored"  # the contract's revert reason

_ERROR_STRING = "0x08c379a0"  # selector of Error(string): how a revert carries its reason
_GAS_MARGIN = 1.25  # state may change between the estimate and the block


@functools.cache
def load_artifact() -> dict[str, Any]:
    """The compiled contract (abi, bytecode, vyper version) shipped with the package."""
    text = resources.files("medchain.anchor").joinpath(ARTIFACT_NAME).read_text("utf-8")
    return cast(dict[str, Any], json.loads(text))


def chain_key(chain_id: str) -> bytes:
    """The contract's key for a working chain: keccak256 of its UTF-8 chain id."""
    return bytes(Web3.keccak(text=chain_id))


class AnchorContract:
    """One deployed Anchor contract, seen through one Ethereum endpoint."""

    def __init__(
        self,
        w3: Web3,
        address: str,
        account: LocalAccount | None = None,
        finality: Finality = FINALIZED,
        eth_chain_id: int | None = None,
        receipt_timeout_s: float = 60.0,
    ) -> None:
        """`account` is needed only to send; `eth_chain_id`, when given, is checked
        against the endpoint before the first transaction is signed."""
        self.w3 = w3
        self.address = to_checksum_address(address)
        self.account = account
        self.finality = finality
        self.eth_chain_id = eth_chain_id
        self.receipt_timeout_s = receipt_timeout_s
        self.url = _url(w3)
        self._contract = w3.eth.contract(address=self.address, abi=load_artifact()["abi"])
        self._send_lock = threading.Lock()  # one nonce sequence per client
        self._chain_checked = False

    @classmethod
    def connect(
        cls,
        settings: AnchorSettings,
        home: Path | str,
        timeout_s: float = 10.0,
        sender: bool | None = None,
    ) -> AnchorContract:
        """A client over HTTP for a node. It loads the node's Ethereum key only to send:
        if `sender` (default: `settings.enabled`; pass False for a node that is not a
        validator). No request is made here, so a node can start before its endpoint."""
        provider = HTTPProvider(
            settings.rpc_url,
            request_kwargs={"timeout": timeout_s},
            exception_retry_configuration=None,  # the node's loop retries on its own
        )
        sends = settings.enabled if sender is None else sender
        account = load_eth_key(settings.key_path(home)) if sends else None
        return cls(
            Web3(provider),
            settings.contract,
            account,
            finality=settings.finality,
            eth_chain_id=settings.eth_chain_id,
        )

    @staticmethod
    def deploy(w3: Web3, account: LocalAccount, timeout_s: float = 60.0) -> str:
        """Deploy the packaged contract with `account`; returns its checksummed address."""
        artifact = load_artifact()
        url = _url(w3)
        factory = w3.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"])
        with _unavailable_as_error(url):
            tx = factory.constructor().build_transaction(_base_tx(w3, account))
            receipt = _send(w3, account, tx, timeout_s)
        if receipt["status"] != 1 or not receipt["contractAddress"]:
            raise AnchorError(f"deploying the anchor contract on {url} failed; see its log")
        return to_checksum_address(receipt["contractAddress"])

    # --- sending ----------------------------------------------------------------

    def register_chain(self, chain_id: str, submitters: Sequence[str]) -> bytes:
        """Register a working chain (this account becomes its admin); returns the tx hash."""
        _check_chain_id(chain_id)
        return self._transact(self._contract.functions.register_chain(chain_id, list(submitters)))

    def set_submitters(self, chain_id: str, submitters: Sequence[str]) -> bytes:
        """Replace the chain's submitters (only its admin may); returns the tx hash."""
        _check_chain_id(chain_id)
        return self._transact(self._contract.functions.set_submitters(chain_id, list(submitters)))

    def submit(self, cert: CheckpointCertificate) -> bytes:
        """Anchor a checkpoint; returns the tx hash. AlreadyAnchored if the same
        checkpoint is there (another validator won the race): safe to ignore."""
        _check_chain_id(cert.chain_id)
        signatures = encode_signatures(cert.signatures)
        if cert.height < 1 or len(cert.block_hash) != 32 or len(cert.state_root) != 32:
            raise AnchorError(
                f"checkpoint {cert.chain_id}@{cert.height} is malformed: the height must "
                "be positive and the block hash and state root 32 bytes"
            )
        if len(signatures) > MAX_SIGNATURE_BYTES:
            raise AnchorError(
                f"checkpoint {cert.chain_id}@{cert.height}: {len(cert.signatures)} signatures "
                f"encode to {len(signatures)} bytes, more than the contract's "
                f"{MAX_SIGNATURE_BYTES}; send only a quorum of them"
            )
        call = self._contract.functions.anchor(
            cert.chain_id, cert.height, cert.block_hash, cert.state_root, signatures
        )
        return self._transact(call)

    # --- reading ----------------------------------------------------------------

    def latest_height(self, chain_id: str) -> int:
        """The highest anchored height of the chain (0: none yet)."""
        with self._rpc():
            return int(self._contract.functions.latest_height(chain_id).call())

    def submitters(self, chain_id: str) -> list[str]:
        with self._rpc():
            found = self._contract.functions.submitters(chain_id).call()
        return [to_checksum_address(a) for a in found]

    def anchors(self, chain_id: str, from_height: int = 0, from_block: int = 0) -> list[Anchor]:
        """The chain's anchors at `from_height` and above, by height. A poller may pass
        the `eth_block` of the last FINAL anchor it read as `from_block`: anchors of
        higher heights sit in that block or later, so the search skips the older ones."""
        with self._rpc():
            logs = self._logs("Anchored", chain_id, from_block=from_block)
            final_block = self._final_block()
        found = [_anchor(chain_id, log, final_block) for log in logs]
        return sorted((a for a in found if a.height >= from_height), key=lambda a: a.height)

    def anchor_at(self, chain_id: str, height: int) -> Anchor | None:
        with self._rpc():
            logs = self._logs("Anchored", chain_id, height)
            final_block = self._final_block() if logs else 0
        return _anchor(chain_id, logs[0], final_block) if logs else None

    def conflicts(self, chain_id: str) -> list[AnchorConflict]:
        """Every conflicting anchor the contract recorded for the chain, oldest first,
        each with the anchor it contradicts."""
        with self._rpc():
            conflict_logs = self._logs("Conflict", chain_id)
            if not conflict_logs:
                return []
            anchored_logs = self._logs("Anchored", chain_id)
            final_block = self._final_block()
        anchored = {a.height: a for a in (_anchor(chain_id, x, final_block) for x in anchored_logs)}
        ordered = sorted(conflict_logs, key=lambda log: int(log["args"]["index"]))
        result = []
        for log in ordered:
            conflicting = _anchor(chain_id, log, final_block)
            result.append(
                AnchorConflict(
                    chain_id, conflicting.height, anchored[conflicting.height], conflicting
                )
            )
        return result

    # --- plumbing ---------------------------------------------------------------

    def _logs(
        self, event: str, chain_id: str, height: int | None = None, from_block: int = 0
    ) -> list[EventData]:
        filters: dict[str, Any] = {"chain_key": chain_key(chain_id)}
        if height is not None:
            filters["height"] = height
        event_logs = self._contract.events[event]
        found = event_logs.get_logs(argument_filters=filters, from_block=from_block)
        return sorted(found, key=lambda log: (log["blockNumber"], log["logIndex"]))

    def _final_block(self) -> int:
        """The highest Ethereum block the finality rule covers."""
        if self.finality == FINALIZED:
            try:
                return int(self.w3.eth.get_block("finalized")["number"])
            except Web3RPCError as exc:
                if isinstance(exc, RequestTimedOut):
                    raise
                raise AnchorError(
                    f"{self.url} does not know the 'finalized' block ({exc.message}); set "
                    "anchor.finality to a number of confirmations for this chain"
                ) from exc
        return int(self.w3.eth.block_number) - int(self.finality) + 1

    def _transact(self, call: ContractFunction) -> bytes:
        account = self.account
        if account is None:
            raise AnchorError(
                "this anchor client has no Ethereum key, so it can only read; set "
                "anchor.enabled and anchor.key_file in the node's config.json to send"
            )
        with self._send_lock, self._rpc():
            self._check_endpoint_chain()
            try:
                tx = call.build_transaction(_base_tx(self.w3, account))
            except Exception as exc:  # the gas estimate runs the call: a revert shows here
                reason = _revert_reason(exc)
                if reason is None:
                    raise
                raise _rejected(call, reason) from None
            receipt = _send(self.w3, account, tx, self.receipt_timeout_s)
            if receipt["status"] != 1:
                raise _rejected(call, self._replayed_reason(call, account))
        return bytes(receipt["transactionHash"])

    def _replayed_reason(self, call: ContractFunction, account: LocalAccount) -> str:
        """Why a mined transaction reverted: the call again on the newest state (which
        holds whatever beat it, e.g. the same anchor from another validator)."""
        try:
            call.call({"from": account.address})
        except Exception as exc:
            reason = _revert_reason(exc)
            if reason is None:
                raise
            return reason
        return "reverted in its block, not on replay (out of gas?)"

    def _check_endpoint_chain(self) -> None:
        if self.eth_chain_id is None or self._chain_checked:
            return
        actual = int(self.w3.eth.chain_id)
        if actual != self.eth_chain_id:
            raise AnchorError(
                f"{self.url} serves Ethereum chain {actual}, but anchor.eth_chain_id is "
                f"{self.eth_chain_id}: fix rpc_url or eth_chain_id (no transaction was signed)"
            )
        self._chain_checked = True

    def _rpc(self) -> contextlib.AbstractContextManager[None]:
        return _unavailable_as_error(self.url, self.address)


@contextlib.contextmanager
def _unavailable_as_error(url: str, address: str | None = None) -> Iterator[None]:
    """Transport failures become VerificationChainUnavailable naming the endpoint; an
    error the endpoint answers with becomes an AnchorError quoting it."""
    try:
        yield
    except (OSError, ProviderConnectionError, BadResponseFormat, RequestTimedOut) as exc:
        raise VerificationChainUnavailable(
            f"the verification chain at {url} does not answer ({type(exc).__name__}: {exc}); "
            "check that it runs (Ganache: `make install`, then `medchain devnet up`) and "
            "that anchor.rpc_url is right"
        ) from exc
    except BadFunctionCallOutput as exc:
        raise AnchorError(
            f"no anchor contract answers at {address} on {url}; check anchor.contract "
            "(and that the verification chain was not reset since it was deployed)"
        ) from exc
    except Web3RPCError as exc:
        raise AnchorError(f"{url} answered with an error: {_rpc_message(exc)}") from exc


def _rpc_message(exc: Web3RPCError) -> str:
    error = (exc.rpc_response or {}).get("error")
    message = error.get("message") if isinstance(error, dict) else None
    return str(message or exc.message)


def _url(w3: Web3) -> str:
    return str(getattr(w3.provider, "endpoint_uri", None) or w3.provider)


def _base_tx(w3: Web3, account: LocalAccount) -> TxParams:
    return {
        "from": account.address,
        "nonce": w3.eth.get_transaction_count(account.address, "pending"),
        "chainId": w3.eth.chain_id,
    }


def _send(w3: Web3, account: LocalAccount, tx: TxParams, timeout_s: float) -> TxReceipt:
    """Sign locally, send, and wait (bounded) for the receipt."""
    tx = {**tx, "gas": int(int(tx["gas"]) * _GAS_MARGIN)}
    signed = account.sign_transaction(cast(dict[str, Any], tx))
    try:
        tx_hash = w3.eth.send_raw_transaction(signed.raw_transaction)
    except Web3RPCError as exc:
        if isinstance(exc, RequestTimedOut):
            raise
        raise AnchorError(
            f"the verification chain refused a transaction from {account.address}: "
            f"{_rpc_message(exc)}; if it lacks funds, send ether to that address"
        ) from exc
    try:
        return w3.eth.wait_for_transaction_receipt(tx_hash, timeout=timeout_s, poll_latency=0.5)
    except TimeExhausted:
        raise AnchorError(
            f"transaction {tx_hash.to_0x_hex()} was not mined within {timeout_s:g} s; the "
            "verification chain may be congested or stalled: check it, then retry"
        ) from None


def _revert_reason(exc: Exception) -> str | None:
    """The revert reason if `exc` reports a revert, else None. Endpoints differ: the
    ABI-encoded Error(string) comes in `data` (geth), in `data.result` (Ganache's
    gas estimate) or in a plain RPC error (Ganache's eth_call); eth-tester raises
    its own exception whose text is "execution reverted: <reason>"."""
    data: object = None
    if isinstance(exc, ContractLogicError):
        message, data = exc.message or "", exc.data
    elif isinstance(exc, Web3RPCError):
        error = (exc.rpc_response or {}).get("error")
        message, data = exc.message, error.get("data") if isinstance(error, dict) else None
    else:
        message = str(exc)
    if isinstance(data, dict):
        data = data.get("result") or data.get("data")
    if isinstance(data, str) and data.startswith(_ERROR_STRING):
        with contextlib.suppress(ValueError, DecodingError):
            return str(abi.decode(["string"], bytes.fromhex(data[len(_ERROR_STRING) :]))[0])
    if not isinstance(exc, ContractLogicError) and not message.startswith("execution reverted"):
        return None
    return message.removeprefix("execution reverted").lstrip(":").strip() or "no reason given"


def _rejected(call: ContractFunction, reason: str) -> AnchorRejected:
    what = f"{call.fn_name}({', '.join(_shown(arg) for arg in call.args)})"
    if reason == ALREADY_ANCHORED:
        return AlreadyAnchored(f"{what}: the same checkpoint is already anchored", reason)
    return AnchorRejected(f"the anchor contract refused {what}: {reason}", reason)


def _shown(arg: object) -> str:
    if isinstance(arg, bytes):
        return "0x" + (arg.hex() if len(arg) <= 32 else arg[:8].hex() + "...")
    if isinstance(arg, list):
        return f"[{len(arg)} items]"
    return repr(arg)


def _anchor(chain_id: str, log: EventData, final_block: int) -> Anchor:
    args = log["args"]
    eth_block = int(log["blockNumber"])
    return Anchor(
        chain_id=chain_id,
        height=int(args["height"]),
        block_hash=bytes(args["block_hash"]),
        state_root=bytes(args["state_root"]),
        signatures=_signatures(bytes(args["signatures"])),
        submitter=to_checksum_address(args["submitter"]),
        eth_block=eth_block,
        eth_tx=bytes(log["transactionHash"]),
        final=eth_block <= final_block,
    )


def _signatures(data: bytes) -> tuple[CheckpointSignature, ...]:
    """Malformed signature bytes read as no signatures: such an anchor then fails
    every quorum check, instead of one bad anchor hiding all the others."""
    try:
        return decode_signatures(data)
    except DecodeError:
        return ()


def _check_chain_id(chain_id: str) -> None:
    size = len(chain_id.encode("utf-8"))
    if not 0 < size <= MAX_CHAIN_ID_BYTES:
        raise AnchorError(
            f"chain id {chain_id[:80]!r} is {size} bytes; the anchor contract takes 1 to "
            f"{MAX_CHAIN_ID_BYTES}"
        )

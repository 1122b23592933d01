"""A node's anchoring settings: the `"anchor"` section of its config.json.

    "anchor": {
      "rpc_url": "http://127.0.0.1:8545",   Ethereum JSON-RPC endpoint (HTTP)
      "eth_chain_id": 1337,                  refuse to sign for any other chain
      "contract": "0x...",                   the Anchor contract
      "key_file": "eth.key",                 relative to the node home
      "finality": "finalized",               or a number of confirmations
      "poll_ms": 1000,                       how often the node reads anchors
      "enabled": true                        send anchors (false: only verify)
    }

All checks live in the dataclass itself, so settings built in code are held to
the same rules as settings read from a file."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from eth_utils.address import is_address, is_checksum_address, to_checksum_address

from medchain.anchor._errors import AnchorSettingsError

ETH_KEY_FILE = "eth.key"
"""The node's Ethereum key, in its home (see `medchain.anchor.new_eth_key`)."""

FINALIZED: Literal["finalized"] = "finalized"
Finality = int | Literal["finalized"]
"""Confirmations (1: in a block), or "finalized": covered by the `finalized` block tag."""

_REQUIRED = ("rpc_url", "eth_chain_id", "contract")
_OPTIONAL = ("key_file", "finality", "poll_ms", "enabled")


@dataclass(frozen=True, slots=True)
class AnchorSettings:
    rpc_url: str
    eth_chain_id: int
    contract: str
    """Checksummed address of the Anchor contract (an all-lower-case one is accepted and
    checksummed; a mixed-case one with a wrong checksum is a typo and refused)."""
    key_file: str = ETH_KEY_FILE
    finality: Finality = FINALIZED
    poll_ms: int = 1_000
    enabled: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.rpc_url, str) or not self.rpc_url.startswith(
            ("http://", "https://")
        ):
            _fail("rpc_url", "an http:// or https:// URL", self.rpc_url)
        if not _is_int(self.eth_chain_id) or self.eth_chain_id < 1:
            _fail(
                "eth_chain_id",
                "a positive integer (1 for mainnet, 1337 for Ganache)",
                self.eth_chain_id,
            )
        if not isinstance(self.contract, str) or not is_address(self.contract):
            _fail("contract", "an Ethereum address (0x and 40 hex digits)", self.contract)
        if self.contract != self.contract.lower() and not is_checksum_address(self.contract):
            _fail("contract", "a correctly checksummed address (check for a typo)", self.contract)
        object.__setattr__(self, "contract", to_checksum_address(self.contract))
        if not isinstance(self.key_file, str) or not self.key_file:
            _fail("key_file", "a file name (relative to the node home) or path", self.key_file)
        if self.finality != FINALIZED and (not _is_int(self.finality) or self.finality < 1):
            _fail("finality", 'a number of confirmations >= 1, or "finalized"', self.finality)
        if not _is_int(self.poll_ms) or self.poll_ms < 1:
            _fail("poll_ms", "a positive integer (milliseconds)", self.poll_ms)
        if not isinstance(self.enabled, bool):
            _fail("enabled", "true or false", self.enabled)

    def key_path(self, home: Path | str) -> Path:
        """Where the node's Ethereum key is: `key_file` under the node home unless absolute."""
        return Path(home) / self.key_file

    @classmethod
    def from_json(cls, section: Mapping[str, Any]) -> AnchorSettings:
        """Settings from config.json's `anchor` object; AnchorSettingsError naming the field."""
        if not isinstance(section, Mapping):
            raise AnchorSettingsError("config.json: 'anchor' must be a JSON object")
        missing = [name for name in _REQUIRED if name not in section]
        if missing:
            raise AnchorSettingsError(
                f"config.json: 'anchor' lacks {', '.join(missing)}; add them (see `medchain "
                "devnet up` for an example) or remove the section to run without anchoring"
            )
        unknown = sorted(set(section) - set(_REQUIRED) - set(_OPTIONAL))
        if unknown:
            raise AnchorSettingsError(
                f"config.json: 'anchor' has unknown fields {', '.join(unknown)}; the known "
                f"ones are {', '.join(_REQUIRED + _OPTIONAL)}"
            )
        return cls(**{name: section[name] for name in _REQUIRED + _OPTIONAL if name in section})

    def to_json(self) -> dict[str, Any]:
        return {
            "rpc_url": self.rpc_url,
            "eth_chain_id": self.eth_chain_id,
            "contract": self.contract,
            "key_file": self.key_file,
            "finality": self.finality,
            "poll_ms": self.poll_ms,
            "enabled": self.enabled,
        }


def _is_int(value: object) -> bool:
    return type(value) is int  # JSON true/false are not numbers


def _fail(name: str, expected: str, value: object) -> None:
    shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
    raise AnchorSettingsError(f"config.json: anchor.{name} must be {expected}, found {shown}")

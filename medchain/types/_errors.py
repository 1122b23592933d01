"""The root of every error a user can meet; each subclass says what went wrong and what to do."""

from __future__ import annotations


class MedchainError(Exception):
    """Base error: `code` is a stable machine-readable name, the message is for people."""

    code = "medchain_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class DecodeError(MedchainError):
    """Bytes that are not the canonical encoding of the expected object."""

    code = "malformed"

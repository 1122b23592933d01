"""Errors of the node's embedded storage."""

from __future__ import annotations

from medchain.types import MedchainError


class StoreError(MedchainError):
    """The store cannot do what was asked: wrong database, refused block, disk trouble.
    Nothing was written when this is raised from a write."""

    code = "store_error"


class NotFound(StoreError):
    """What was asked for is not stored (yet), e.g. the tip of a store never initialised."""

    code = "not_found"

"""A transaction's signature check as plain data, and the cache of checks that passed.

Why as data: verifying is the one costly part of admitting a transaction (an Ed25519
check, or a bLSAG ring check of up to 64 members), and it needs nothing but its inputs.
A node builds the check on its event loop (that part reads state: the ring's keys), runs
it in a worker pool, and records a pass in its `SignatureCache`; admission on the loop
then finds the check done. Blocks are checked the same way, so a block's outcome never
depends on where a check ran or what the cache holds."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from medchain.app._errors import InvalidSignature
from medchain.crypto import RingSignature, ring_verify, verify_signature

ED25519_COST = 1
"""Work units of one Ed25519 check (about 60 us on one core): the unit of `cost`."""
RING_MEMBER_COST = 7
"""Work units per ring member: four scalar multiplications and two point additions on
ristretto255, about seven Ed25519 checks (`medchain bench ring`)."""


@dataclass(frozen=True, slots=True)
class SignatureCheck:
    """One signature check: an Ed25519 signature by `public_key` (`ring` empty), or a
    ring signature by a member of `ring` (the members' ring keys, in the ring's order).
    Both over `message`. Plain bytes: a worker thread or process can run it."""

    key: bytes
    """What a pass is cached under: the transaction id for an Ed25519 check (it hashes
    key, message and signature alike); for a ring, the id with the ring's keys and the
    ring size limit, the check's only other inputs."""
    message: bytes
    signature: bytes | RingSignature
    public_key: bytes = b""
    ring: tuple[bytes, ...] = ()
    max_ring_size: int = 0

    @property
    def anonymous(self) -> bool:
        return bool(self.ring)

    @property
    def key_image(self) -> bytes:
        """The ring signature's key image (b"" for an Ed25519 check)."""
        return self.signature.key_image if isinstance(self.signature, RingSignature) else b""

    @property
    def cost(self) -> int:
        """The work the check takes, in units of one Ed25519 check."""
        return RING_MEMBER_COST * len(self.ring) if self.ring else ED25519_COST

    def run(self) -> bool:
        """Whether the signature holds. Pure and thread-safe: libsodium does the work."""
        if isinstance(self.signature, RingSignature):
            return ring_verify(self.message, self.ring, self.signature, self.max_ring_size)
        return verify_signature(self.public_key, self.message, self.signature)

    def refusal(self) -> InvalidSignature:
        """The error a transaction whose check failed is refused with."""
        if self.anonymous:
            return InvalidSignature(
                "the ring signature does not verify for this ring and transaction; "
                "sign it with a ring member's key over this exact transaction"
            )
        return InvalidSignature(
            "the signature does not match the sender's key; sign the transaction "
            "with the sender's own key file"
        )


def run_checks(checks: list[SignatureCheck]) -> list[bool]:
    """Each check's outcome, in order: one call for a worker pool to run."""
    return [check.run() for check in checks]


class SignatureCache:
    """Signature checks that passed, most recently used last, at most `capacity`.

    A node verifies each transaction when it is admitted and again in every block it
    dry-runs or executes. The key of a check (`SignatureCheck.key`) covers all its
    inputs, so a hit stands for a check that would pass again; a miss just verifies. It
    only saves work: the outcome of a block never depends on what it holds."""

    def __init__(self, capacity: int = 32_768) -> None:
        if capacity < 1:
            raise ValueError("a signature cache holds at least one entry")
        self.capacity = capacity
        self._keys: OrderedDict[bytes, None] = OrderedDict()

    def __len__(self) -> int:
        return len(self._keys)

    def __contains__(self, key: object) -> bool:
        """Whether the check keyed `key` passed before, without refreshing it."""
        return key in self._keys

    def seen(self, key: bytes) -> bool:
        """Whether the check keyed `key` passed before (refreshing it if so)."""
        if key not in self._keys:
            return False
        self._keys.move_to_end(key)
        return True

    def add(self, key: bytes) -> None:
        self._keys[key] = None
        self._keys.move_to_end(key)
        if len(self._keys) > self.capacity:
            self._keys.popitem(last=False)


def require_signature(check: SignatureCheck, verified: SignatureCache | None) -> None:
    """Run `check` unless `verified` holds it; raise its refusal if it fails."""
    if verified is not None and verified.seen(check.key):
        return
    if not check.run():
        raise check.refusal()
    if verified is not None:
        verified.add(check.key)

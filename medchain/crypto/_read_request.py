"""Signed read requests: how a reader proves to a node who asks for sealed data, for
which purpose, and that the request is fresh.

The header is `Authorization: Medchain-Read key=<hex public key>, time=<ms>,
purpose=<code>, sig=<hex>`; the Ed25519 signature covers the chain id, the HTTP
method, the target (path and query as sent), the time, the purpose and the SHA-256 of
the body, so a captured header opens nothing else and only for `READ_REQUEST_WINDOW_MS`
either side of the signer's clock. Encryption stays the real protection: a node that
ignores these checks still serves only ciphertext.
"""

from __future__ import annotations

from dataclasses import dataclass

from medchain.crypto._keys import PUBLIC_KEY_SIZE, SIGNATURE_SIZE, AccountKeys, verify_signature
from medchain.types import MedchainError, sha256, tagged_hash

READ_SCHEME = "Medchain-Read"
READ_REQUEST_TAG = "medchain/read-request"
READ_REQUEST_WINDOW_MS = 60_000
KEY_WRAP_HEADER = "Medchain-Key-Wrap"
"""The response header in which a node hands a signed reader its own key wrap (hex)
with a version's ciphertext: one request opens a record."""
"""How far a request's time may be from the node's clock, either way."""
MAX_PURPOSE_CHARS = 16
_MAX_TIME_MS = 2**63 - 1
_FIELDS = ("key", "time", "purpose", "sig")


class ReadRequestInvalid(MedchainError):
    """The read request's header is missing, malformed, stale or badly signed."""

    code = "read_request_invalid"


@dataclass(frozen=True, slots=True)
class ReadRequest:
    """A parsed `Authorization: Medchain-Read ...` header."""

    public_key: bytes
    time_ms: int
    purpose: str
    signature: bytes


def read_request_digest(
    chain_id: str, method: str, target: str, time_ms: int, purpose: str, body: bytes
) -> bytes:
    """What the reader signs: one tagged hash over every part the request depends on."""
    return tagged_hash(
        READ_REQUEST_TAG,
        chain_id.encode(),
        method.upper().encode("ascii"),
        target.encode(),
        time_ms.to_bytes(8, "big"),
        purpose.encode("ascii"),
        sha256(body),
    )


def sign_read_request(
    keys: AccountKeys,
    chain_id: str,
    method: str,
    target: str,
    time_ms: int,
    purpose: str,
    body: bytes = b"",
) -> str:
    """The `Authorization` header value of a read of `target` signed by `keys`."""
    signature = keys.sign(read_request_digest(chain_id, method, target, time_ms, purpose, body))
    return (
        f"{READ_SCHEME} key={keys.public_key.hex()}, time={time_ms}, "
        f"purpose={purpose}, sig={signature.hex()}"
    )


def parse_read_header(value: str) -> ReadRequest:
    """The request an `Authorization` header holds; ReadRequestInvalid saying what is
    wrong with it."""
    scheme, _, rest = value.strip().partition(" ")
    if scheme != READ_SCHEME:
        raise ReadRequestInvalid(
            f"the Authorization header must use the {READ_SCHEME} scheme; sign the read "
            "with the account's key (medchain.client.HttpChain(url, keys=...) does)"
        )
    fields: dict[str, str] = {}
    for part in rest.split(","):
        name, eq, text = part.strip().partition("=")
        if not eq or name not in _FIELDS or name in fields:
            raise _malformed(f"unexpected part {part.strip()[:40]!r}")
        fields[name] = text
    if len(fields) != len(_FIELDS):
        raise _malformed(f"it needs {', '.join(_FIELDS)}")
    key = _hex(fields["key"], PUBLIC_KEY_SIZE, "key")
    signature = _hex(fields["sig"], SIGNATURE_SIZE, "sig")
    time_text, purpose = fields["time"], fields["purpose"]
    if not (time_text.isascii() and time_text.isdigit()) or int(time_text) > _MAX_TIME_MS:
        raise _malformed("time must be ms since the Unix epoch")
    if not (purpose.isascii() and purpose.isalnum()) or len(purpose) > MAX_PURPOSE_CHARS:
        raise _malformed("purpose must be a PurposeOfUse code such as TREAT")
    return ReadRequest(key, int(time_text), purpose, signature)


def verify_read_request(
    request: ReadRequest,
    chain_id: str,
    method: str,
    target: str,
    body: bytes,
    now_ms: int,
) -> None:
    """Accept `request` for this chain, method, target and body at `now_ms`, or raise
    ReadRequestInvalid saying why not (one Ed25519 verification)."""
    skew = request.time_ms - now_ms
    if abs(skew) > READ_REQUEST_WINDOW_MS:
        raise ReadRequestInvalid(
            f"the read request was signed for {request.time_ms} ms, {abs(skew) // 1000} s "
            f"{'ahead of' if skew > 0 else 'behind'} this node's clock ({now_ms}); a node "
            f"accepts {READ_REQUEST_WINDOW_MS // 1000} s either way: sign it again now, "
            "and check the reader's clock"
        )
    digest = read_request_digest(chain_id, method, target, request.time_ms, request.purpose, body)
    if not verify_signature(request.public_key, digest, request.signature):
        raise ReadRequestInvalid(
            f"the read request's signature does not match its key, this chain ({chain_id}), "
            f"the method, the path {target!r} and the body sent; sign exactly the request "
            "you send"
        )


def _hex(text: str, size: int, name: str) -> bytes:
    if len(text) != 2 * size:
        raise _malformed(f"{name} must be {size} bytes in hex")
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise _malformed(f"{name} must be {size} bytes in hex") from None


def _malformed(what: str) -> ReadRequestInvalid:
    return ReadRequestInvalid(
        f"malformed {READ_SCHEME} header: {what}; the header is '{READ_SCHEME} key=<hex>, "
        "time=<ms>, purpose=<code>, sig=<hex>'"
    )

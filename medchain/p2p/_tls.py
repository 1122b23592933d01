"""Node certificates and TLS contexts.

A node's TLS identity is its Ed25519 account key: the certificate is self-signed by that
key, so knowing a peer's public key (from genesis or the allow-list) is enough to trust
it. No CA: each side's trust store holds exactly the certificates of the peers it allows,
so OpenSSL refuses anyone else during the handshake; the transport then checks the
proven key against the allow-list again.
"""

from __future__ import annotations

import datetime
import os
import secrets
import ssl
import tempfile
from collections.abc import Iterable
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    BestAvailableEncryption,
    Encoding,
    PrivateFormat,
    PublicFormat,
)
from cryptography.x509.oid import NameOID

from medchain.crypto import AccountKeys
from medchain.types import MedchainError, tagged_hash

# Fixed validity, so regenerating a node's certificate gives the same bytes. The end is
# RFC 5280's "no well-defined expiration" (99991231235959Z): membership is decided by
# the allow-list, not by dates.
_NOT_BEFORE = datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC)
_NOT_AFTER = datetime.datetime(9999, 12, 31, 23, 59, 59, tzinfo=datetime.UTC)
_MAX_NAME = 64  # the X.520 upper bound for a common name
# An end-entity certificate that can only sign handshakes: it can never act as a CA, so
# trusting a peer's certificate never trusts anything that peer might issue.
_SIGNING_ONLY = x509.KeyUsage(
    digital_signature=True,
    content_commitment=False,
    key_encipherment=False,
    data_encipherment=False,
    key_agreement=False,
    key_cert_sign=False,
    crl_sign=False,
    encipher_only=False,
    decipher_only=False,
)


class BadCertificate(MedchainError):
    """A node certificate that is not a valid self-signed Ed25519 certificate, or that
    does not belong to the key it is listed under."""

    code = "bad_certificate"


def node_certificate(keys: AccountKeys, name: str) -> bytes:
    """The node's self-signed X.509 certificate (PEM) for its Ed25519 key; deterministic
    (fixed dates, serial from the key, Ed25519 signatures), so it never needs storing."""
    if not 0 < len(name) <= _MAX_NAME:
        raise ValueError(f"a node name is 1 to {_MAX_NAME} characters, got {len(name)}")
    private = Ed25519PrivateKey.from_private_bytes(keys.signing_seed)
    public = private.public_key()
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    serial = int.from_bytes(tagged_hash("medchain/p2p/cert-serial", keys.public_key)[:16]) >> 1
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(public)
        .serial_number(serial or 1)
        .not_valid_before(_NOT_BEFORE)
        .not_valid_after(_NOT_AFTER)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_SIGNING_ONLY, critical=True)
        .sign(private, None)
    )
    return cert.public_bytes(Encoding.PEM)


def _load(pem: bytes) -> x509.Certificate:
    try:
        cert = x509.load_pem_x509_certificate(pem)
    except ValueError as exc:
        raise BadCertificate(f"not a PEM X.509 certificate: {exc}") from exc
    key = cert.public_key()
    if not isinstance(key, Ed25519PublicKey):
        raise BadCertificate(
            "the certificate's key is not Ed25519; make node certificates with node_certificate()"
        )
    try:
        cert.verify_directly_issued_by(cert)
    except (InvalidSignature, ValueError, TypeError) as exc:
        raise BadCertificate(
            "the certificate is not validly self-signed (altered or issued by another key)"
        ) from exc
    return cert


def certificate_key(pem: bytes) -> bytes:
    """The 32-byte Ed25519 public key of a self-signed node certificate; BadCertificate
    for any other kind of certificate or a self-signature that does not verify."""
    return _load(pem).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def _canonical(pem: bytes) -> str:
    """One checked certificate re-encoded, so a PEM bundle cannot smuggle extra trust
    anchors in after the first certificate."""
    return _load(pem).public_bytes(Encoding.PEM).decode("ascii")


def _context(
    server: bool,
    keys: AccountKeys,
    cert_pem: bytes,
    trusted: Iterable[bytes],
) -> ssl.SSLContext:
    if certificate_key(cert_pem) != keys.public_key:
        raise BadCertificate("the node certificate is not for this node's key")
    anchors = "".join(_canonical(pem) for pem in trusted)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER if server else ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.maximum_version = ssl.TLSVersion.TLSv1_3
    ctx.check_hostname = False  # peers are named by key, not by host
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.options |= ssl.OP_NO_TICKET  # no resumption: every connection proves its key
    if anchors:
        ctx.load_verify_locations(cadata=anchors)
    _load_identity(ctx, keys, cert_pem)
    return ctx


def _load_identity(ctx: ssl.SSLContext, keys: AccountKeys, cert_pem: bytes) -> None:
    """`ssl` loads keys only from files: the key goes through a file in a private
    directory, encrypted under a one-time password, and is deleted straight after."""
    password = secrets.token_bytes(32)
    key_pem = Ed25519PrivateKey.from_private_bytes(keys.signing_seed).private_bytes(
        Encoding.PEM, PrivateFormat.PKCS8, BestAvailableEncryption(password)
    )
    with tempfile.TemporaryDirectory(prefix="medchain-tls-") as directory:
        path = Path(directory) / "node.pem"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(cert_pem + key_pem)
        ctx.load_cert_chain(path, password=password)


def server_context(keys: AccountKeys, cert_pem: bytes, trusted: Iterable[bytes]) -> ssl.SSLContext:
    """The accepting side: TLS 1.3 only, a client certificate from `trusted` required."""
    return _context(True, keys, cert_pem, trusted)


def client_context(keys: AccountKeys, cert_pem: bytes, trusted: Iterable[bytes]) -> ssl.SSLContext:
    """The dialling side: TLS 1.3 only, the server's certificate must be in `trusted`."""
    return _context(False, keys, cert_pem, trusted)

from __future__ import annotations

import asyncio
import datetime
import ssl
import tempfile
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.x509.oid import NameOID

from medchain.crypto import AccountKeys
from medchain.p2p import (
    BadCertificate,
    certificate_key,
    client_context,
    node_certificate,
    server_context,
)

KEYS = AccountKeys(bytes(range(32)), bytes(32))


def _self_signed(private: ec.EllipticCurvePrivateKey | Ed25519PrivateKey, signer: object) -> bytes:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "other")])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private.public_key())
        .serial_number(7)
        .not_valid_before(datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC))
        .not_valid_after(datetime.datetime(2030, 1, 1, tzinfo=datetime.UTC))
    )
    if isinstance(signer, Ed25519PrivateKey):
        cert = builder.sign(signer, None)
    else:
        assert isinstance(signer, ec.EllipticCurvePrivateKey)
        cert = builder.sign(signer, hashes.SHA256())
    return cert.public_bytes(serialization.Encoding.PEM)


def test_the_certificate_is_deterministic_and_carries_the_node_key() -> None:
    pem = node_certificate(KEYS, "hospital-a")
    assert pem == node_certificate(AccountKeys(bytes(range(32)), bytes(32)), "hospital-a")
    assert pem != node_certificate(KEYS, "hospital-b")
    assert certificate_key(pem) == KEYS.public_key
    cert = x509.load_pem_x509_certificate(pem)
    assert cert.subject.rfc4514_string() == "CN=hospital-a"
    assert cert.issuer == cert.subject
    assert cert.not_valid_after_utc.year == 9999
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca


def test_node_names_are_bounded() -> None:
    with pytest.raises(ValueError):
        node_certificate(KEYS, "")
    with pytest.raises(ValueError):
        node_certificate(KEYS, "x" * 65)


def test_a_tampered_certificate_is_refused() -> None:
    pem = node_certificate(KEYS, "hospital-a")
    der = x509.load_pem_x509_certificate(pem).public_bytes(serialization.Encoding.DER)
    forged = x509.load_der_x509_certificate(der.replace(b"hospital-a", b"hospital-b"))
    with pytest.raises(BadCertificate, match="self-signed"):
        certificate_key(forged.public_bytes(serialization.Encoding.PEM))


def test_a_certificate_signed_by_another_key_is_refused() -> None:
    subject = Ed25519PrivateKey.generate()
    with pytest.raises(BadCertificate, match="self-signed"):
        certificate_key(_self_signed(subject, Ed25519PrivateKey.generate()))


def test_a_non_ed25519_certificate_is_refused() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(BadCertificate, match="Ed25519"):
        certificate_key(_self_signed(key, key))


def test_garbage_is_refused() -> None:
    with pytest.raises(BadCertificate):
        certificate_key(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    with pytest.raises(BadCertificate):
        certificate_key(b"not a certificate")


def test_contexts_are_tls13_mutual_and_leave_no_key_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    peer = AccountKeys.generate()
    trusted = [node_certificate(peer, "peer")]
    for ctx in (
        server_context(KEYS, node_certificate(KEYS, "a"), trusted),
        client_context(KEYS, node_certificate(KEYS, "a"), trusted),
    ):
        assert ctx.minimum_version == ssl.TLSVersion.TLSv1_3
        assert ctx.maximum_version == ssl.TLSVersion.TLSv1_3
        assert ctx.verify_mode == ssl.CERT_REQUIRED
        assert not ctx.check_hostname
        assert ctx.cert_store_stats()["x509"] == 1
    assert list(tmp_path.iterdir()) == []


def test_a_context_refuses_a_certificate_for_another_key() -> None:
    other = node_certificate(AccountKeys.generate(), "other")
    with pytest.raises(BadCertificate, match="this node's key"):
        server_context(KEYS, other, [])


def test_a_bundle_adds_only_its_first_certificate_as_trust_anchor() -> None:
    bundle = node_certificate(AccountKeys.generate(), "p") + node_certificate(KEYS, "q")
    ctx = client_context(KEYS, node_certificate(KEYS, "a"), [bundle])
    assert ctx.cert_store_stats()["x509"] == 1


def test_only_trusted_node_keys_complete_a_mutual_handshake() -> None:
    server_keys, member, outsider = AccountKeys.generate(), AccountKeys.generate(), KEYS
    server_cert = node_certificate(server_keys, "server")
    member_cert = node_certificate(member, "member")
    outsider_cert = node_certificate(outsider, "outsider")

    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(await reader.readexactly(4))
        await writer.drain()
        writer.close()

    async def attempt(port: int, keys: AccountKeys, cert: bytes) -> bytes:
        ctx = client_context(keys, cert, [server_cert])
        reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=ctx)
        writer.write(b"ping")
        try:
            return await reader.read(4)
        except (ssl.SSLError, ConnectionError):
            return b""
        finally:
            writer.close()

    async def main() -> tuple[bytes, bytes]:
        ctx = server_context(server_keys, server_cert, [member_cert])
        server = await asyncio.start_server(echo, "127.0.0.1", 0, ssl=ctx)
        port = server.sockets[0].getsockname()[1]
        async with asyncio.timeout(5), server:
            return await attempt(port, member, member_cert), await attempt(
                port, outsider, outsider_cert
            )

    assert asyncio.run(main()) == (b"ping", b"")

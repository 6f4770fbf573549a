"""A development certificate authority with one server and one client certificate.

For trying TLS and x.509 on one machine only: the CA's key sits next to the certificates.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CLIENT_SUBJECT = "CN=phidb-client,OU=dev,O=phidb"
VALID_DAYS = 365


@dataclass(frozen=True)
class DevCerts:
    ca: Path  # the CA certificate, for --tlsCAFile and clients' tlsCAFile
    ca_key: Path  # the CA's private key, mode 600
    server: Path  # server certificate and key in one PEM, for --tlsCertificateKeyFile
    client: Path  # client certificate and key in one PEM, for tlsCertificateKeyFile


def generate_dev_certs(out_dir: str | os.PathLike[str]) -> DevCerts:
    """Write a fresh CA, server and client certificate set into `out_dir`, replacing any."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = DevCerts(
        ca=out / "ca.pem",
        ca_key=out / "ca-key.pem",
        server=out / "server.pem",
        client=out / "client.pem",
    )

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("phidb development CA", "dev", "phidb")
    ca_cert = (
        _builder(ca_name, ca_name, ca_key.public_key())
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .sign(ca_key, hashes.SHA256())
    )

    server_key = ec.generate_private_key(ec.SECP256R1())
    server_cert = _leaf(
        _name("localhost", "dev", "phidb"),
        server_key,
        ca_cert,
        ca_key,
        ExtendedKeyUsageOID.SERVER_AUTH,
        x509.SubjectAlternativeName(
            [
                x509.DNSName("localhost"),
                x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                x509.IPAddress(ipaddress.ip_address("::1")),
            ]
        ),
    )

    client_key = ec.generate_private_key(ec.SECP256R1())
    client_cert = _leaf(
        _name("phidb-client", "dev", "phidb"),
        client_key,
        ca_cert,
        ca_key,
        ExtendedKeyUsageOID.CLIENT_AUTH,
        None,
    )

    _write(paths.ca, _cert_pem(ca_cert), 0o644)
    _write(paths.ca_key, _key_pem(ca_key), 0o600)
    _write(paths.server, _cert_pem(server_cert) + _key_pem(server_key), 0o600)
    _write(paths.client, _cert_pem(client_cert) + _key_pem(client_key), 0o600)
    return paths


def _name(common_name: str, unit: str, organization: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, unit),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _builder(
    subject: x509.Name, issuer: x509.Name, public_key: ec.EllipticCurvePublicKey
) -> x509.CertificateBuilder:
    # Backdated a little so a clock a few minutes behind still accepts a certificate made now.
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )


def _leaf(
    subject: x509.Name,
    key: ec.EllipticCurvePrivateKey,
    ca_cert: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    usage: x509.ObjectIdentifier,
    san: x509.SubjectAlternativeName | None,
) -> x509.Certificate:
    builder = (
        _builder(subject, ca_cert.subject, key.public_key())
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(cert_sign=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
    )
    if san is not None:
        builder = builder.add_extension(san, critical=False)
    return builder.sign(ca_key, hashes.SHA256())


def _key_usage(cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not cert_sign,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=not cert_sign,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _write(path: Path, data: bytes, mode: int) -> None:
    # Created with its final mode so a private key is never readable by others, even briefly.
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(path, mode)  # the umask may have narrowed the mode os.open was given

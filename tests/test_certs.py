"""The development certificate set: it verifies with its CA, names localhost, keeps keys private."""

from __future__ import annotations

import ipaddress
import ssl
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from phidb.certs import CLIENT_SUBJECT, DevCerts, generate_dev_certs


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> DevCerts:
    return generate_dev_certs(tmp_path_factory.mktemp("certs"))


def load_cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificates(path.read_bytes())[0]


def handshake(server: ssl.SSLContext, client: ssl.SSLContext) -> ssl.SSLObject:
    """Run a TLS handshake in memory and return the server's side once it is done."""
    c_in, c_out, s_in, s_out = (ssl.MemoryBIO() for _ in range(4))
    client_side = client.wrap_bio(c_in, c_out, server_hostname="localhost")
    server_side = server.wrap_bio(s_in, s_out, server_side=True)
    done = {"client": False, "server": False}
    for _ in range(20):
        for name, side, out, peer_in in (
            ("client", client_side, c_out, s_in),
            ("server", server_side, s_out, c_in),
        ):
            if not done[name]:
                try:
                    side.do_handshake()
                    done[name] = True
                except ssl.SSLWantReadError:
                    pass
            peer_in.write(out.read())
        if all(done.values()):
            return server_side
    raise AssertionError("handshake did not finish")


def server_context(certs: DevCerts, require_client_cert: bool) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certs.server)
    if require_client_cert:
        context.load_verify_locations(certs.ca)
        context.verify_mode = ssl.CERT_REQUIRED
    return context


def test_client_verifies_server_against_ca_with_hostname_check(certs: DevCerts) -> None:
    client = ssl.create_default_context(cafile=str(certs.ca))
    client.verify_flags |= ssl.VERIFY_X509_STRICT
    handshake(server_context(certs, require_client_cert=False), client)


def test_server_verifies_client_certificate_and_sees_its_subject(certs: DevCerts) -> None:
    client = ssl.create_default_context(cafile=str(certs.ca))
    client.load_cert_chain(certs.client)
    server_side = handshake(server_context(certs, require_client_cert=True), client)

    peer = server_side.getpeercert()
    assert peer is not None
    subject = {k: v for rdn in peer["subject"] for k, v in rdn}
    assert subject == {
        "commonName": "phidb-client",
        "organizationalUnitName": "dev",
        "organizationName": "phidb",
    }


def test_client_refuses_a_server_signed_by_another_ca(certs: DevCerts, tmp_path: Path) -> None:
    other = generate_dev_certs(tmp_path / "other")
    client = ssl.create_default_context(cafile=str(other.ca))
    with pytest.raises(ssl.SSLCertVerificationError):
        handshake(server_context(certs, require_client_cert=False), client)


def test_server_certificate_names_localhost_and_loopback(certs: DevCerts) -> None:
    cert = load_cert(certs.server)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value

    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    assert ipaddress.ip_address("127.0.0.1") in san.get_values_for_type(x509.IPAddress)
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]


def test_client_certificate_subject_and_usage(certs: DevCerts) -> None:
    cert = load_cert(certs.client)
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value

    assert cert.subject.rfc4514_string() == CLIENT_SUBJECT == "CN=phidb-client,OU=dev,O=phidb"
    assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]


def test_ca_file_holds_only_a_certificate(certs: DevCerts) -> None:
    text = certs.ca.read_text()
    assert text.count("BEGIN CERTIFICATE") == 1
    assert "PRIVATE KEY" not in text
    assert load_cert(certs.ca).extensions.get_extension_for_class(x509.BasicConstraints).value.ca


def test_key_files_are_mode_600(certs: DevCerts) -> None:
    for path in (certs.ca_key, certs.server, certs.client):
        assert "PRIVATE KEY" in path.read_text()
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


def test_regenerating_replaces_the_set(tmp_path: Path) -> None:
    first = generate_dev_certs(tmp_path)
    serial = load_cert(first.ca).serial_number
    second = generate_dev_certs(tmp_path)

    assert load_cert(second.ca).serial_number != serial
    assert stat.S_IMODE(second.ca_key.stat().st_mode) == 0o600

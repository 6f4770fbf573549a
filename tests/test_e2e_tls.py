"""TLS as a client sees it on a real server: client certificates against --tlsCAFile,
a foreign CA refused, allowTLS/preferTLS serving both kinds of client on one port,
tlsMode disabled, and the configured certificate presented over TLS 1.2 or 1.3."""

from __future__ import annotations

import socket
import ssl
from pathlib import Path
from typing import Any

import bson
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from pymongo import MongoClient
from pymongo.errors import AutoReconnect, ConnectionFailure, ServerSelectionTimeoutError

from harness import PhidbServer
from phidb.certs import DevCerts, generate_dev_certs
from phidb.wire import frames

CODEC = bson.DEFAULT_CODEC_OPTIONS
REFUSED = (ServerSelectionTimeoutError, ConnectionFailure, AutoReconnect)


def hello(srv: PhidbServer, **options: Any) -> dict[str, Any]:
    """`hello` through a fresh pymongo client with exactly these connection options."""
    with MongoClient(
        f"mongodb://127.0.0.1:{srv.port}/", serverSelectionTimeoutMS=600, **options
    ) as client:
        reply: dict[str, Any] = client.admin.command("hello")
        return reply


def tls(srv: PhidbServer, client_pem: Path | None = None) -> dict[str, Any]:
    options: dict[str, Any] = {"tls": True, "tlsCAFile": str(srv.certs.ca)}
    if client_pem is not None:
        options["tlsCertificateKeyFile"] = str(client_pem)
    return options


def raw_tls(srv: PhidbServer, client_pem: Path | None = None) -> ssl.SSLSocket:
    context = ssl.create_default_context(cafile=str(srv.certs.ca))
    if client_pem is not None:
        context.load_cert_chain(str(client_pem))
    raw = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
    return context.wrap_socket(raw, server_hostname="localhost")


def served_raw(srv: PhidbServer, client_pem: Path | None = None) -> bool:
    """Whether a `hello` over a raw TLS socket gets a reply. A refused certificate
    shows as a handshake failure or, under TLS 1.3 (where the server checks it after
    the client's side of the handshake is done), as the connection closing."""
    try:
        sock = raw_tls(srv, client_pem)
    except (ssl.SSLError, OSError):
        return False
    try:
        sock.sendall(frames.encode_op_msg(0, 1, {"hello": 1, "$db": "admin"}, CODEC))
        return len(sock.recv(16)) > 0
    except (ssl.SSLError, OSError):
        return False
    finally:
        sock.close()


def test_with_a_ca_file_a_client_without_certificate_is_refused(
    make_phidb: Any, certs: DevCerts
) -> None:
    srv = make_phidb("--tlsCAFile", str(certs.ca))

    with pytest.raises(REFUSED):
        hello(srv, **tls(srv))
    assert served_raw(srv) is False
    assert served_raw(srv, srv.certs.client) is True
    assert hello(srv, **tls(srv, srv.certs.client))["isWritablePrimary"] is True


def test_allow_connections_without_certificates_still_refuses_a_foreign_ca(
    make_phidb: Any, certs: DevCerts, tmp_path: Path
) -> None:
    srv = make_phidb("--tlsCAFile", str(certs.ca), "--tlsAllowConnectionsWithoutCertificates")
    foreign = generate_dev_certs(tmp_path / "other-pki")

    assert hello(srv, **tls(srv))["isWritablePrimary"] is True
    assert hello(srv, **tls(srv, srv.certs.client))["isWritablePrimary"] is True
    with pytest.raises(REFUSED):
        hello(srv, **tls(srv, foreign.client))
    assert served_raw(srv, foreign.client) is False
    assert served_raw(srv) is True


@pytest.mark.parametrize("mode", ["allowTLS", "preferTLS"])
def test_mixed_modes_serve_plaintext_and_tls_clients_on_one_port(
    make_phidb: Any, mode: str
) -> None:
    srv = make_phidb("--tlsMode", mode)
    password = srv.create_admin()

    plain = hello(srv)
    secure = hello(srv, **tls(srv))
    assert plain["isWritablePrimary"] is True and secure["isWritablePrimary"] is True
    for options in ({}, tls(srv)):
        with MongoClient(
            srv.uri("admin", password), serverSelectionTimeoutMS=2000, **options
        ) as client:
            assert client.admin.command("connectionStatus")["authInfo"]["authenticatedUsers"] == [
                {"user": "admin", "db": "admin"}
            ]


def test_tls_mode_disabled_serves_plaintext_and_refuses_tls(make_phidb: Any) -> None:
    srv = make_phidb(tls=False)

    assert hello(srv)["isWritablePrimary"] is True
    with pytest.raises(REFUSED):
        hello(srv, tls=True, tlsCAFile=str(srv.certs.ca))


def test_the_configured_certificate_is_presented_over_tls_1_2_or_1_3(server: PhidbServer) -> None:
    configured = x509.load_pem_x509_certificate(server.certs.server.read_bytes())

    sock = raw_tls(server)
    try:
        assert sock.version() in ("TLSv1.2", "TLSv1.3")
        presented = sock.getpeercert(binary_form=True)
        peer = sock.getpeercert()
    finally:
        sock.close()
    assert presented == configured.public_bytes(Encoding.DER)
    assert peer is not None
    assert set(peer["subjectAltName"]) == {
        ("DNS", "localhost"),
        ("IP Address", "127.0.0.1"),
        ("IP Address", "0:0:0:0:0:0:0:1"),
    }


def test_a_tls_1_2_only_client_negotiates_tls_1_2(server: PhidbServer) -> None:
    context = ssl.create_default_context(cafile=str(server.certs.ca))
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    raw = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    with context.wrap_socket(raw, server_hostname="localhost") as sock:
        assert sock.version() == "TLSv1.2"

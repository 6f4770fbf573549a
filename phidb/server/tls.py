"""TLS for the listener: the server context (TLS 1.2 or newer) and the verified
client certificate's subject, which x.509 authentication will use."""

from __future__ import annotations

import ssl

from cryptography import x509

from phidb.config import ServerConfig


def server_context(config: ServerConfig) -> ssl.SSLContext | None:
    """The SSLContext for `config`, or None when TLS is disabled. Raises OSError or
    ssl.SSLError when a certificate or key file cannot be used."""
    if config.tls_mode == "disabled":
        return None
    if not config.tls_certificate_key_file:
        raise ValueError(f"tlsMode {config.tls_mode} needs --tlsCertificateKeyFile")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(config.tls_certificate_key_file)
    if config.tls_ca_file:
        context.load_verify_locations(cafile=config.tls_ca_file)
        # A presented certificate is always verified; allowConnectionsWithoutCertificates
        # only lets clients that present none connect.
        context.verify_mode = (
            ssl.CERT_OPTIONAL
            if config.tls_allow_connections_without_certificates
            else ssl.CERT_REQUIRED
        )
    return context


def peer_subject(ssl_object: ssl.SSLObject | ssl.SSLSocket | None) -> str | None:
    """RFC 2253 subject of the client's verified certificate, if it sent one."""
    if ssl_object is None:
        return None
    der = ssl_object.getpeercert(binary_form=True)
    if not der:
        return None
    return x509.load_der_x509_certificate(der).subject.rfc4514_string()

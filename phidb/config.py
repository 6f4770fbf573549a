"""Server settings in mongod.conf's layout, from a YAML file and command-line options.

`ServerConfig` is the one typed view of them that the rest of phidb reads.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

TLS_MODES = ("disabled", "allowTLS", "preferTLS", "requireTLS")
AUDIT_DESTINATIONS = ("file", "console", "syslog")
AUDIT_FORMATS = ("JSON", "BSON")


@dataclass
class ServerConfig:
    dbpath: str = "./data/db"
    port: int = 27017
    bind_ip: list[str] = field(default_factory=lambda: ["127.0.0.1"])
    tls_mode: str = "requireTLS"
    tls_certificate_key_file: str | None = None
    tls_ca_file: str | None = None
    tls_allow_connections_without_certificates: bool = False
    authorization: bool = True
    enable_encryption: bool = True
    encryption_key_file: str | None = None
    audit_destination: str | None = "file"  # None: audit off, set on purpose
    audit_format: str = "JSON"
    audit_path: str | None = None  # default: <dbpath>/audit.json
    audit_filter: dict[str, Any] | None = None
    log_path: str | None = None  # operational log; None means stderr
    log_verbosity: int = 0
    # the options as the operator gave them, for getCmdLineOpts
    argv: list[str] = field(default_factory=list)
    parsed: dict[str, Any] = field(default_factory=dict)

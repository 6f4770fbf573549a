"""Server settings in mongod.conf's layout, from a YAML file and command-line options.

`ServerConfig` is the one typed view of them that the rest of phidb reads; `build_config` makes
one from a config file's settings and command-line overrides, refusing contradictions.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml
from bson import json_util

TLS_MODES = ("disabled", "allowTLS", "preferTLS", "requireTLS")
AUDIT_DESTINATIONS = ("file", "console", "syslog")
AUDIT_FORMATS = ("JSON", "BSON")
AUTHORIZATION_VALUES = ("enabled", "disabled")
LOG_DESTINATIONS = ("file", "syslog")
# phidb audits by default, so turning it off needs a word of its own; mongod has none.
AUDIT_OFF = "none"
MAX_VERBOSITY = 5


class ConfigError(ValueError):
    """A setting that is unknown, of the wrong type, or contradicts another; one line."""


@dataclass
class ServerConfig:
    dbpath: str = "./data/db"
    # How often committed writes are fsynced (mongod's storage.journal.commitIntervalMs);
    # a write is on disk before this when its writeConcern has j: true.
    journal_commit_interval_ms: int = 100
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
    audit_path: str | None = None  # build_config fills <dbpath>/auditLog.json (or .bson)
    audit_filter: dict[str, Any] | None = None
    log_path: str | None = None  # operational log; None means stderr
    log_verbosity: int = 0
    log_destination: str | None = None  # None: stderr; "file": log_path; "syslog"
    # the options as the operator gave them, for getCmdLineOpts
    argv: list[str] = field(default_factory=list)
    parsed: dict[str, Any] = field(default_factory=dict)


# Every setting phidb knows, by its dotted mongod.conf name: (kind, allowed values).
# kind is "str", "int", "bool" or "filter" (a query given as a JSON/YAML string or a mapping).
_SETTINGS: dict[str, tuple[str, tuple[str, ...]]] = {
    "net.port": ("int", ()),
    "net.bindIp": ("str", ()),
    "net.tls.mode": ("str", TLS_MODES),
    "net.tls.certificateKeyFile": ("str", ()),
    "net.tls.CAFile": ("str", ()),
    "net.tls.allowConnectionsWithoutCertificates": ("bool", ()),
    "storage.dbPath": ("str", ()),
    "storage.journal.commitIntervalMs": ("int", ()),
    "security.authorization": ("str", AUTHORIZATION_VALUES),
    "security.enableEncryption": ("bool", ()),
    "security.encryptionKeyFile": ("str", ()),
    "auditLog.destination": ("str", (*AUDIT_DESTINATIONS, AUDIT_OFF)),
    "auditLog.format": ("str", AUDIT_FORMATS),
    "auditLog.path": ("str", ()),
    "auditLog.filter": ("filter", ()),
    "systemLog.destination": ("str", LOG_DESTINATIONS),
    "systemLog.path": ("str", ()),
    "systemLog.verbosity": ("int", ()),
}
_SECTIONS = {name.rsplit(".", 1)[0] for name in _SETTINGS}


def read_config_file(path: str) -> dict[str, Any]:
    """Read a mongod.conf-style YAML file into its dotted settings, checked but not merged."""
    try:
        with open(path, encoding="utf-8") as f:
            document = yaml.safe_load(f)
    except OSError as e:
        raise ConfigError(f"cannot read config file {path}: {e.strerror}") from None
    except yaml.YAMLError as e:
        where = getattr(e, "problem_mark", None)
        line = f" at line {where.line + 1}" if where is not None else ""
        raise ConfigError(f"config file {path} is not valid YAML{line}") from None

    if document is None:
        return {}
    if not isinstance(document, dict):
        raise ConfigError(f"config file {path} must hold a mapping of settings")
    return _flatten(document, "", path)


def _flatten(section: Mapping[Any, Any], prefix: str, path: str) -> dict[str, Any]:
    settings: dict[str, Any] = {}
    for key, value in section.items():
        name = f"{prefix}{key}"
        if name in _SETTINGS:
            settings[name] = value
        elif name in _SECTIONS and isinstance(value, dict):
            settings.update(_flatten(value, f"{name}.", path))
        elif name in _SECTIONS:
            raise ConfigError(f"setting '{name}' in {path} must be a mapping of settings")
        else:
            raise ConfigError(f"unknown setting '{name}' in {path}")
    return settings


def build_config(
    file_settings: Mapping[str, Any],
    overrides: Mapping[str, Any],
    argv: list[str],
    config_path: str | None = None,
) -> ServerConfig:
    """Merge dotted settings (command line over file), check them, and make a ServerConfig.

    `overrides` holds only what the command line gave; values not given are absent. A command-line
    audit destination replaces the file's whole audit output (its format and path), and turning
    audit off there drops the file's filter too, so overriding never leaves a contradiction.
    """
    if "auditLog.destination" in overrides:
        dropped = ["auditLog.format", "auditLog.path"]
        if overrides["auditLog.destination"] == AUDIT_OFF:
            dropped.append("auditLog.filter")
        file_settings = {k: v for k, v in file_settings.items() if k not in dropped}
    settings = {**file_settings, **overrides}
    for name, value in settings.items():
        _check_value(name, value)

    config = ServerConfig(argv=list(argv), parsed=_nested(settings, config_path))
    config.dbpath = settings.get("storage.dbPath", config.dbpath)
    interval = settings.get("storage.journal.commitIntervalMs", config.journal_commit_interval_ms)
    if not 1 <= interval <= 500:
        raise ConfigError(
            f"storage.journal.commitIntervalMs must be between 1 and 500, not {interval}"
        )
    config.journal_commit_interval_ms = interval
    _apply_net(config, settings)
    _apply_security(config, settings)
    _apply_audit(config, settings)
    _apply_system_log(config, settings)
    return config


def _check_value(name: str, value: Any) -> None:
    kind, allowed = _SETTINGS[name]
    if kind == "int" and (isinstance(value, bool) or not isinstance(value, int)):
        raise ConfigError(f"{name} must be an integer, not {_show(value)}")
    if kind == "bool" and not isinstance(value, bool):
        raise ConfigError(f"{name} must be true or false, not {_show(value)}")
    if kind == "str" and not isinstance(value, str):
        raise ConfigError(f"{name} must be a string, not {_show(value)}")
    if kind == "str" and value == "":
        raise ConfigError(f"{name} must not be empty")
    if allowed and value not in allowed:
        raise ConfigError(f"{name} must be one of {', '.join(allowed)}, not {_show(value)}")
    if kind == "filter" and not isinstance(value, str | dict):
        raise ConfigError(f"{name} must be a query document or a string holding one")


def _show(value: Any) -> str:
    return repr(value) if isinstance(value, str) else f"{type(value).__name__} {value!r}"


def _nested(settings: Mapping[str, Any], config_path: str | None) -> dict[str, Any]:
    """The settings in mongod.conf's nested shape, as getCmdLineOpts reports them."""
    parsed: dict[str, Any] = {}
    if config_path is not None:
        parsed["config"] = config_path
    for name in sorted(settings):
        node = parsed
        *sections, leaf = name.split(".")
        for section in sections:
            node = node.setdefault(section, {})
        node[leaf] = settings[name]
    return parsed


def _apply_net(config: ServerConfig, settings: Mapping[str, Any]) -> None:
    config.port = settings.get("net.port", config.port)
    if not 0 <= config.port <= 65535:
        raise ConfigError(f"net.port must be between 0 and 65535, not {config.port}")

    if "net.bindIp" in settings:
        addresses = [a.strip() for a in settings["net.bindIp"].split(",")]
        if not all(addresses):
            raise ConfigError("net.bindIp has an empty address in its comma-separated list")
        config.bind_ip = addresses

    config.tls_mode = settings.get("net.tls.mode", config.tls_mode)
    config.tls_certificate_key_file = settings.get("net.tls.certificateKeyFile")
    config.tls_ca_file = settings.get("net.tls.CAFile")
    config.tls_allow_connections_without_certificates = settings.get(
        "net.tls.allowConnectionsWithoutCertificates", False
    )
    if config.tls_mode != "disabled" and config.tls_certificate_key_file is None:
        raise ConfigError(
            f"net.tls.mode is {config.tls_mode} but no --tlsCertificateKeyFile was given; "
            "pass one (phidb certs makes a development set) or --tlsMode disabled"
        )
    if config.tls_mode == "disabled" and config.tls_ca_file is not None:
        raise ConfigError("--tlsCAFile was given but net.tls.mode is disabled")


def _apply_security(config: ServerConfig, settings: Mapping[str, Any]) -> None:
    config.authorization = settings.get("security.authorization", "enabled") == "enabled"

    config.enable_encryption = settings.get("security.enableEncryption", True)
    config.encryption_key_file = settings.get("security.encryptionKeyFile")
    if config.enable_encryption and config.encryption_key_file is None:
        raise ConfigError(
            "encryption at rest is on but no --encryptionKeyFile was given; pass a key file "
            "(32 random bytes, base64, mode 600) or --noEncryption to store data unencrypted"
        )
    if not config.enable_encryption and config.encryption_key_file is not None:
        raise ConfigError("--encryptionKeyFile was given but encryption at rest is off")


def _apply_audit(config: ServerConfig, settings: Mapping[str, Any]) -> None:
    destination = settings.get("auditLog.destination", "file")
    given = [n for n in ("auditLog.format", "auditLog.path", "auditLog.filter") if n in settings]
    if destination == AUDIT_OFF:
        if given:
            raise ConfigError(f"{given[0]} was given but auditing is off")
        config.audit_destination = None
        return

    config.audit_destination = destination
    config.audit_format = settings.get("auditLog.format", "JSON")
    if destination != "file" and config.audit_format != "JSON":
        raise ConfigError(f"auditLog.format BSON needs destination file, not {destination}")
    if destination != "file" and "auditLog.path" in settings:
        raise ConfigError(f"auditLog.path was given but the audit destination is {destination}")
    if destination == "file":
        default_name = "auditLog.bson" if config.audit_format == "BSON" else "auditLog.json"
        config.audit_path = settings.get("auditLog.path", os.path.join(config.dbpath, default_name))
    if "auditLog.filter" in settings:
        config.audit_filter = parse_audit_filter(settings["auditLog.filter"])


def parse_audit_filter(value: str | dict[str, Any]) -> dict[str, Any]:
    """An audit filter from a mapping or a string in JSON or mongod's relaxed syntax.

    The string is Extended JSON first (so `$date` and friends work); mongod's examples also write
    filters with unquoted keys (`{ atype: "authenticate" }`), which is not JSON but is a YAML
    flow mapping, so a string that JSON refuses is read as YAML.
    """
    if isinstance(value, dict):
        return value
    try:
        document = json_util.loads(value)
    except (ValueError, TypeError):
        try:
            document = yaml.safe_load(value)
        except yaml.YAMLError:
            raise ConfigError("auditLog.filter is neither JSON nor a YAML mapping") from None
    if not isinstance(document, dict):
        raise ConfigError("auditLog.filter must be a query document, such as {atype: 'authCheck'}")
    return document


def _apply_system_log(config: ServerConfig, settings: Mapping[str, Any]) -> None:
    config.log_destination = settings.get("systemLog.destination")
    config.log_path = settings.get("systemLog.path")
    if config.log_path is not None and config.log_destination is None:
        config.log_destination = "file"  # as mongod's --logpath implies
    if config.log_destination == "file" and config.log_path is None:
        raise ConfigError("systemLog.destination is file but no --logpath was given")
    if config.log_destination == "syslog" and config.log_path is not None:
        raise ConfigError("--logpath was given but systemLog.destination is syslog")

    config.log_verbosity = settings.get("systemLog.verbosity", 0)
    if not 0 <= config.log_verbosity <= MAX_VERBOSITY:
        raise ConfigError(
            f"systemLog.verbosity must be between 0 and {MAX_VERBOSITY}, not {config.log_verbosity}"
        )

"""The `phidb` command: `serve` (mongod's options and config file), `certs` and `load-fhir`.

Settings are checked before anything is served: a contradiction is one line on stderr and a
non-zero exit (2 for a usage error click finds, 1 for a setting phidb refuses).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import click

from phidb.config import (
    AUDIT_DESTINATIONS,
    AUDIT_FORMATS,
    AUDIT_OFF,
    TLS_MODES,
    ConfigError,
    ServerConfig,
    build_config,
    read_config_file,
)


class _RecordingCommand(click.Command):
    """Keeps the arguments as given, for getCmdLineOpts' `argv`."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        ctx.meta["phidb.argv"] = ["phidb", ctx.info_name or "serve", *args]
        return super().parse_args(ctx, args)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="phidb")
def main() -> None:
    """phidb: a MongoDB-compatible document database for protected health data."""


@main.command("serve", cls=_RecordingCommand)
@click.option("-f", "--config", "config_file", metavar="FILE", help="mongod.conf-style YAML.")
@click.option("--dbpath", help="Data directory.  [default: ./data/db]")
@click.option(
    "--journalCommitInterval",
    "journal_commit_interval",
    type=int,
    metavar="MS",
    help="How often writes are synced to disk, 1-500 ms.  [default: 100]",
)
@click.option("--port", type=int, help="Port to listen on, 0-65535.  [default: 27017]")
@click.option("--bind_ip", help="Comma-separated addresses to listen on.  [default: 127.0.0.1]")
@click.option("--tlsMode", "tls_mode", type=click.Choice(TLS_MODES), help="[default: requireTLS]")
@click.option("--tlsCertificateKeyFile", "tls_certificate_key_file", metavar="FILE")
@click.option("--tlsCAFile", "tls_ca_file", metavar="FILE", help="CA for client certificates.")
@click.option(
    "--tlsAllowConnectionsWithoutCertificates",
    "tls_allow_without_certificates",
    is_flag=True,
    help="With --tlsCAFile: clients may connect without a certificate.",
)
@click.option("--auth", is_flag=True, help="Require authentication (the default).")
@click.option("--noauth", is_flag=True, help="Turn access control off, on purpose.")
@click.option("--enableEncryption", "enable_encryption", is_flag=True, help="(the default)")
@click.option("--noEncryption", "no_encryption", is_flag=True, help="Store data unencrypted.")
@click.option("--encryptionKeyFile", "encryption_key_file", metavar="FILE", help="Master key.")
@click.option("--auditDestination", "audit_destination", type=click.Choice(AUDIT_DESTINATIONS))
@click.option("--auditFormat", "audit_format", type=click.Choice(AUDIT_FORMATS))
@click.option("--auditPath", "audit_path", metavar="FILE", help="[default: <dbpath>/auditLog.json]")
@click.option("--auditFilter", "audit_filter", metavar="QUERY", help="Which events to record.")
@click.option("--noAudit", "no_audit", is_flag=True, help="Turn auditing off, on purpose.")
@click.option("--logpath", metavar="FILE", help="Operational log file.  [default: stderr]")
@click.option("-v", "--verbose", count=True, help="More log detail; repeat up to 5 times.")
@click.pass_context
def serve_command(ctx: click.Context, /, **params: Any) -> None:
    """Run the server in the foreground until SIGINT or SIGTERM."""
    try:
        config = config_from_params(params, ctx.meta.get("phidb.argv", []))
    except ConfigError as e:
        raise click.ClickException(str(e)) from None

    # Imported here so `phidb certs` and `phidb load-fhir` work without the server's imports.
    from phidb.server.main import StartupError, serve

    try:
        code = serve(config)
    except StartupError as e:
        raise click.ClickException(str(e)) from None
    ctx.exit(code)


def config_from_args(args: Sequence[str]) -> ServerConfig:
    """The ServerConfig `phidb serve ARGS` would run with; click.UsageError or ConfigError."""
    ctx = serve_command.make_context("serve", list(args))
    return config_from_params(ctx.params, ctx.meta["phidb.argv"])


def config_from_params(params: dict[str, Any], argv: list[str]) -> ServerConfig:
    """Turn `serve`'s parsed options (and the file they name) into a checked ServerConfig."""
    file_settings = read_config_file(params["config_file"]) if params["config_file"] else {}
    return build_config(file_settings, _overrides(params), argv, params["config_file"])


def _overrides(params: dict[str, Any]) -> dict[str, Any]:
    pairs = [
        ("auth", "noauth", "--auth", "--noauth"),
        ("enable_encryption", "no_encryption", "--enableEncryption", "--noEncryption"),
    ]
    for yes, no, yes_flag, no_flag in pairs:
        if params[yes] and params[no]:
            raise ConfigError(f"{yes_flag} and {no_flag} contradict each other")
    if params["no_audit"] and params["audit_destination"]:
        raise ConfigError("--noAudit and --auditDestination contradict each other")

    direct = {
        "dbpath": "storage.dbPath",
        "journal_commit_interval": "storage.journal.commitIntervalMs",
        "port": "net.port",
        "bind_ip": "net.bindIp",
        "tls_mode": "net.tls.mode",
        "tls_certificate_key_file": "net.tls.certificateKeyFile",
        "tls_ca_file": "net.tls.CAFile",
        "encryption_key_file": "security.encryptionKeyFile",
        "audit_destination": "auditLog.destination",
        "audit_format": "auditLog.format",
        "audit_path": "auditLog.path",
        "audit_filter": "auditLog.filter",
        "logpath": "systemLog.path",
    }
    overrides = {name: params[p] for p, name in direct.items() if params[p] is not None}

    if params["tls_allow_without_certificates"]:
        overrides["net.tls.allowConnectionsWithoutCertificates"] = True
    if params["auth"] or params["noauth"]:
        overrides["security.authorization"] = "disabled" if params["noauth"] else "enabled"
    if params["enable_encryption"] or params["no_encryption"]:
        overrides["security.enableEncryption"] = not params["no_encryption"]
    if params["no_audit"]:
        overrides["auditLog.destination"] = AUDIT_OFF
    if params["verbose"]:
        overrides["systemLog.verbosity"] = params["verbose"]
    return overrides


@main.command("certs")
@click.option("--out", "out_dir", required=True, metavar="DIR", help="Folder to write into.")
@click.option("--force", is_flag=True, help="Replace an existing set.")
def certs_command(out_dir: str, force: bool) -> None:
    """Write a development CA, server and client certificate (for one machine only)."""
    from pathlib import Path

    from phidb.certs import generate_dev_certs

    if (Path(out_dir) / "ca-key.pem").exists() and not force:
        raise click.ClickException(f"{out_dir} already holds a CA; pass --force to replace it")
    paths = generate_dev_certs(out_dir)
    for label, path in (
        ("CA certificate", paths.ca),
        ("CA key (keep private)", paths.ca_key),
        ("server cert+key", paths.server),
        ("client cert+key", paths.client),
    ):
        click.echo(f"{label:24} {path}")


@main.command("load-fhir")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
@click.option(
    "--uri",
    default="mongodb://localhost:27017/",
    show_default=True,
    envvar="PHIDB_URI",
    help="Connection string; may carry credentials and TLS options. Env: PHIDB_URI.",
)
@click.option("--db", "db_name", default="fhir", show_default=True)
@click.option("--tlsCAFile", "tls_ca_file", metavar="FILE", help="Adds tls=true and this CA.")
@click.option("--tlsCertificateKeyFile", "tls_certificate_key_file", metavar="FILE")
@click.option("--batch-size", default=1000, show_default=True, type=click.IntRange(1, 100_000))
@click.option("--quiet", is_flag=True, help="No progress bar.")
def load_fhir_command(
    paths: tuple[str, ...],
    uri: str,
    db_name: str,
    tls_ca_file: str | None,
    tls_certificate_key_file: str | None,
    batch_size: int,
    quiet: bool,
) -> None:
    """Load FHIR Bundles (files, or folders of *.json) one collection per resourceType.

    Exits 0 if anything loaded (skipped files are named on stderr and counted), 1 if nothing did.
    """
    from phidb.fhir.loader import LoadError, load_paths

    try:
        report = load_paths(
            list(paths),
            uri,
            db_name,
            tls_ca_file=tls_ca_file,
            tls_certificate_key_file=tls_certificate_key_file,
            batch_size=batch_size,
            progress=not quiet,
        )
    except LoadError as e:
        raise click.ClickException(str(e)) from None

    for path, reason in report.skipped:
        click.echo(f"skipped {path}: {reason}", err=True)
    for collection, count in sorted(report.counts.items()):
        click.echo(f"{collection:24} {count:>8}")
    click.echo(f"{'total':24} {sum(report.counts.values()):>8}")
    if report.skipped:
        click.echo(f"skipped {len(report.skipped)} file(s)", err=True)
    if not report.counts:
        raise click.ClickException("nothing was loaded")

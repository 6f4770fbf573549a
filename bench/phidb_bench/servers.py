"""Start and stop the systems under test, each in its own temporary folder on loopback.

Every `start_*` returns a `Target` (how to connect, which process tree to measure) and
registers its own stop on the caller's ExitStack, so a server never outlives the benchmark,
also when a later step fails.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PG_BIN = Path("/usr/lib/postgresql/15/bin")
PG_USER = "postgres"
READY_TIMEOUT = 60.0


class Unavailable(RuntimeError):
    """A system cannot be installed or started here; the message is the reason recorded."""


@dataclass(frozen=True)
class Features:
    """phidb's security features; `all_on()` is the default, `name()` labels a tax row."""

    tls: bool = True
    auth: bool = True
    encryption: bool = True
    audit: bool = True

    @staticmethod
    def all_off() -> Features:
        return Features(False, False, False, False)

    def name(self) -> str:
        on = [f for f in ("tls", "auth", "encryption", "audit") if getattr(self, f)]
        if len(on) == 4:
            return "phidb"
        if not on:
            return "phidb-insecure"
        return "phidb-" + "+".join(on) + "-only"


@dataclass
class Target:
    """How clients reach a running system; picklable, handed to client processes."""

    system: str  # "phidb", "phidb-insecure", "phidb-tls-only", "postgres", "secantusdb"
    protocol: str  # "mongo" or "postgres"
    port: int
    user: str | None
    password: str | None
    ca_file: str | None  # None: no TLS
    pid: int  # root of the process tree whose CPU and memory are the server's cost
    host: str = "127.0.0.1"
    dbname: str = "fhir"
    extra: dict[str, Any] = field(default_factory=dict)

    def mongo_uri(self) -> str:
        from urllib.parse import quote_plus

        cred = ""
        if self.user:
            cred = f"{quote_plus(self.user)}:{quote_plus(self.password or '')}@"
        return f"mongodb://{cred}{self.host}:{self.port}/?authSource=admin&directConnection=true"

    def mongo_options(self, pool: int) -> dict[str, Any]:
        options: dict[str, Any] = {
            "serverSelectionTimeoutMS": 20_000,
            "maxPoolSize": pool,
            "minPoolSize": 0,
        }
        if self.ca_file:
            options.update(tls=True, tlsCAFile=self.ca_file)
        if self.user:
            options["authMechanism"] = "SCRAM-SHA-256"
        return options

    def pg_conninfo(self) -> str:
        return (
            f"host={self.host} port={self.port} dbname={self.dbname} user={self.user} "
            f"password={self.password} sslmode=verify-full sslrootcert={self.ca_file}"
        )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, process: subprocess.Popen[bytes] | None, log: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise Unavailable(f"exited with status {process.returncode}: {tail.strip()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise Unavailable(f"did not listen on port {port} within {READY_TIMEOUT:.0f}s")


def stop_process(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def phidb_python() -> str:
    return os.environ.get("PHIDB_BENCH_PYTHON") or sys.executable


def project_root() -> Path:
    return Path(os.environ.get("PHIDB_BENCH_ROOT") or Path(__file__).resolve().parents[2])


@dataclass(frozen=True)
class Certs:
    ca: Path
    server_pem: Path  # certificate and key in one file (phidb)
    server_crt: Path  # certificate alone (PostgreSQL, SecantusDB)
    server_key: Path  # key alone


def make_certs(folder: Path) -> Certs:
    """phidb's development CA and server certificate, also split for the other servers."""
    subprocess.run(
        [phidb_python(), "-m", "phidb", "certs", "--out", str(folder), "--force"],
        check=True,
        capture_output=True,
        cwd=project_root(),
    )
    pem = (folder / "server.pem").read_text()
    marker = "-----BEGIN"
    blocks = [marker + b for b in pem.split(marker) if b.strip()]
    crt = folder / "server.crt"
    key = folder / "server.key"
    crt.write_text("".join(b for b in blocks if "CERTIFICATE" in b.splitlines()[0]))
    key.write_text("".join(b for b in blocks if "PRIVATE KEY" in b.splitlines()[0]))
    key.chmod(0o600)
    return Certs(folder / "ca.pem", folder / "server.pem", crt, key)


# --- phidb -----------------------------------------------------------------------------------


def start_phidb(
    stack: contextlib.ExitStack, work: Path, certs: Certs, features: Features
) -> Target:
    root = work / features.name()
    root.mkdir(parents=True)
    port = free_port()
    args = ["--port", str(port), "--dbpath", str(root / "db")]
    if features.tls:
        args += ["--tlsCertificateKeyFile", str(certs.server_pem)]
    else:
        args += ["--tlsMode", "disabled"]
    if not features.auth:
        args.append("--noauth")
    if features.encryption:
        key = root / "master.key"
        subprocess.run(
            [
                phidb_python(),
                "-c",
                "import sys; from phidb.security.keys.keyfile import generate_key_file as g;"
                " g(sys.argv[1])",
                str(key),
            ],
            check=True,
            cwd=project_root(),
        )
        args += ["--encryptionKeyFile", str(key)]
    else:
        args.append("--noEncryption")
    if features.audit:
        args += ["--auditDestination", "file", "--auditPath", str(root / "audit.json")]
    else:
        args.append("--noAudit")

    log = root / "phidb.log"
    with open(log, "ab") as out:
        process = subprocess.Popen(
            [phidb_python(), "-m", "phidb", "serve", *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=root,
        )
    stack.callback(stop_process, process)
    try:
        wait_for_port(port, process, log)
    except Unavailable as e:
        raise Unavailable(f"phidb {e}") from None

    target = Target(
        features.name(),
        "mongo",
        port,
        None,
        None,
        str(certs.ca) if features.tls else None,
        process.pid,
        extra={"features": features.__dict__, "log": str(log)},
    )
    if features.auth:
        target.user, target.password = "bench", secrets.token_urlsafe(18)
        _create_root_user(target)
    return target


def _create_root_user(target: Target) -> None:
    """The first user, through the localhost exception, as root on admin."""
    from pymongo import MongoClient

    anonymous = Target(**{**target.__dict__, "user": None, "password": None})
    client: MongoClient[Any] = MongoClient(anonymous.mongo_uri(), **anonymous.mongo_options(1))
    try:
        client.admin.command(
            "createUser",
            target.user,
            pwd=target.password,
            roles=[{"role": "root", "db": "admin"}],
        )
    finally:
        client.close()


# --- SecantusDB ------------------------------------------------------------------------------


def start_secantus(stack: contextlib.ExitStack, work: Path, certs: Certs) -> Target:
    """secantusd-py with TLS and --auth; the user is made on a first start without --auth."""
    exe = Path(sys.executable).parent / "secantusd-py"
    if not exe.exists():
        raise Unavailable(f"secantusd-py is not installed in {Path(sys.executable).parent}")
    root = work / "secantusdb"
    root.mkdir(parents=True)
    port = free_port()
    base = [
        str(exe),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--storage-path",
        str(root / "data"),
        "--standalone",
        "--sync-on-commit",
        "--log-level",
        "WARNING",
        "--tls-cert-file",
        str(certs.server_crt),
        "--tls-key-file",
        str(certs.server_key),
    ]
    target = Target("secantusdb", "mongo", port, None, None, str(certs.ca), 0)

    first = _spawn(stack, base, root / "secantus-setup.log", port)
    target.pid = first.pid
    target.user, target.password = "bench", secrets.token_urlsafe(18)
    try:
        _create_root_user(target)
    except Exception as e:
        raise Unavailable(f"SecantusDB createUser failed: {e}") from None
    stop_process(first)

    second = _spawn(stack, [*base, "--auth"], root / "secantus.log", port)
    target.pid = second.pid
    return target


def _spawn(
    stack: contextlib.ExitStack, argv: list[str], log: Path, port: int
) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, cwd=log.parent)
    stack.callback(stop_process, process)
    try:
        wait_for_port(port, process, log)
    except Unavailable as e:
        raise Unavailable(f"secantusd-py {e}") from None
    return process


# --- PostgreSQL ------------------------------------------------------------------------------


def _as_postgres(argv: list[str], **kw: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["runuser", "-u", PG_USER, "--", *argv], check=True, capture_output=True, text=True, **kw
    )


def start_postgres(stack: contextlib.ExitStack, work: Path, certs: Certs) -> Target:
    """A private PostgreSQL 15 cluster: TLS only, scram-sha-256, pgaudit, synchronous commit."""
    if not (PG_BIN / "postgres").exists():
        raise Unavailable(f"PostgreSQL 15 is not installed ({PG_BIN}/postgres is missing)")
    try:
        pw = pwd.getpwnam(PG_USER)
    except KeyError:
        raise Unavailable("there is no postgres user to run PostgreSQL as") from None

    root = work / "postgres"
    data = root / "data"
    root.mkdir(parents=True)
    os.chown(root, pw.pw_uid, pw.pw_gid)
    password = secrets.token_urlsafe(18)
    pwfile = root / "pwfile"
    pwfile.write_text(password + "\n")
    os.chown(pwfile, pw.pw_uid, pw.pw_gid)
    pwfile.chmod(0o600)
    try:
        _as_postgres(
            [
                str(PG_BIN / "initdb"),
                "-D",
                str(data),
                "-U",
                "bench",
                "--pwfile",
                str(pwfile),
                "--auth",
                "scram-sha-256",
                "-E",
                "UTF8",
                "--locale",
                "C",  # byte-order text comparison, as MongoDB compares strings
            ]
        )
    except subprocess.CalledProcessError as e:
        raise Unavailable(f"initdb failed: {e.stderr.strip()}") from None
    pwfile.unlink()

    for source, name in ((certs.server_crt, "server.crt"), (certs.server_key, "server.key")):
        shutil.copy(source, data / name)
        os.chown(data / name, pw.pw_uid, pw.pw_gid)
        (data / name).chmod(0o600)

    port = free_port()
    settings = {
        "listen_addresses": "'127.0.0.1'",
        "port": str(port),
        "unix_socket_directories": f"'{root}'",
        "max_connections": "200",
        "shared_buffers": "'256MB'",
        "ssl": "on",
        "ssl_cert_file": "'server.crt'",
        "ssl_key_file": "'server.key'",
        "password_encryption": "'scram-sha-256'",
        "synchronous_commit": "on",
        "fsync": "on",
        "shared_preload_libraries": "'pgaudit'",
        "pgaudit.log": "'read, write'",
        "pgaudit.log_parameter": "off",  # parameters are PHI; the statement shape is enough
        "log_line_prefix": "'%m [%p] %u@%d '",
    }
    with open(data / "postgresql.conf", "a") as conf:
        conf.write("\n# phidb benchmark\n")
        conf.writelines(f"{k} = {v}\n" for k, v in settings.items())
    # TLS and SCRAM only, loopback only; nothing over the Unix socket without a password.
    (data / "pg_hba.conf").write_text(
        "local all all scram-sha-256\nhostssl all all 127.0.0.1/32 scram-sha-256\n"
    )

    log = root / "postgres.log"
    try:
        _as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(data), "-l", str(log), "-w", "start"])
    except subprocess.CalledProcessError as e:
        tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
        raise Unavailable(f"pg_ctl start failed: {e.stderr.strip()} {tail}") from None
    stack.callback(_stop_postgres, data)

    pid = int((data / "postmaster.pid").read_text().split()[0])
    target = Target("postgres", "postgres", port, "bench", password, str(certs.ca), pid)
    target.extra["log"] = str(log)
    _create_database(target)
    return target


def _create_database(target: Target) -> None:
    import psycopg

    admin = Target(**{**target.__dict__, "dbname": "postgres"})
    with psycopg.connect(admin.pg_conninfo(), autocommit=True) as conn:
        conn.execute("CREATE DATABASE fhir")
    with psycopg.connect(target.pg_conninfo(), autocommit=True) as conn:
        conn.execute("CREATE EXTENSION pgaudit")


def _stop_postgres(data: Path) -> None:
    with contextlib.suppress(subprocess.CalledProcessError):
        _as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"])

"""Start real phidb servers for tests: a `phidb serve` process on a free loopback
port, with generated certificates, a generated master key and a generated admin
password, driven by real pymongo clients."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pymongo import MongoClient

from phidb.certs import DevCerts, generate_dev_certs
from phidb.security.keys.keyfile import generate_key_file

READY_TIMEOUT = 30.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class PhidbServer:
    """A phidb process. `admin_password` is set once `create_admin()` has run."""

    root: Path
    certs: DevCerts
    port: int
    args: list[str]
    tls: bool = True
    process: subprocess.Popen[bytes] | None = None
    admin_user: str = "admin"
    admin_password: str | None = None
    clients: list[MongoClient[Any]] = field(default_factory=list)

    @property
    def dbpath(self) -> Path:
        return self.root / "db"

    @property
    def key_file(self) -> Path:
        return self.root / "master.key"

    @property
    def audit_path(self) -> Path:
        return self.root / "audit.json"

    @property
    def log_path(self) -> Path:
        return self.root / "phidb.log"

    def command_line(self) -> list[str]:
        return [sys.executable, "-m", "phidb", "serve", *self.args]

    def start(self) -> PhidbServer:
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the child process
        self.process = subprocess.Popen(
            self.command_line(), stdout=log, stderr=subprocess.STDOUT, cwd=self.root
        )
        log.close()
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"phidb exited with {self.process.returncode}:\n{self.log_path.read_text()}"
                )
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"phidb did not start:\n{self.log_path.read_text()}")

    def uri(self, user: str | None = None, password: str | None = None, db: str = "admin") -> str:
        from urllib.parse import quote_plus

        cred = f"{quote_plus(user)}:{quote_plus(password or '')}@" if user else ""
        return f"mongodb://{cred}127.0.0.1:{self.port}/?authSource={db}"

    def tls_options(self, client_cert: bool = False) -> dict[str, Any]:
        if not self.tls:
            return {}
        options: dict[str, Any] = {"tls": True, "tlsCAFile": str(self.certs.ca)}
        if client_cert:
            options["tlsCertificateKeyFile"] = str(self.certs.client)
        return options

    def client(
        self, user: str | None = None, password: str | None = None, db: str = "admin", **kw: Any
    ) -> MongoClient[Any]:
        options: dict[str, Any] = {"serverSelectionTimeoutMS": 5000, **self.tls_options()}
        options.update(kw)
        client: MongoClient[Any] = MongoClient(self.uri(user, password, db), **options)
        self.clients.append(client)
        return client

    def admin_client(self, **kw: Any) -> MongoClient[Any]:
        assert self.admin_password is not None, "create_admin() first"
        return self.client(self.admin_user, self.admin_password, **kw)

    def create_admin(self) -> str:
        """Create the first user (root on admin) through the localhost exception."""
        password = secrets.token_urlsafe(18)
        with MongoClient(
            self.uri(), serverSelectionTimeoutMS=5000, **self.tls_options()
        ) as anonymous:
            anonymous.admin.command(
                "createUser", self.admin_user, pwd=password, roles=[{"role": "root", "db": "admin"}]
            )
        self.admin_password = password
        return password

    def stop(self) -> int | None:
        for client in self.clients:
            client.close()
        self.clients.clear()
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def kill(self) -> None:
        """kill -9: no chance to flush anything not already durable."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")


def make_server(root: Path, certs: DevCerts, *extra: str, tls: bool = True) -> PhidbServer:
    """A server with every security feature on (the defaults), not yet started."""
    root.mkdir(parents=True, exist_ok=True)
    port = free_port()
    key = root / "master.key"
    if not key.exists():
        generate_key_file(str(key))
    args = [
        "--port",
        str(port),
        "--dbpath",
        str(root / "db"),
        "--encryptionKeyFile",
        str(key),
        "--auditDestination",
        "file",
        "--auditPath",
        str(root / "audit.json"),
    ]
    if tls:
        args += ["--tlsCertificateKeyFile", str(certs.server)]
    else:
        args += ["--tlsMode", "disabled"]
    return PhidbServer(root, certs, port, args + list(extra), tls=tls)


def running_server(
    root: Path, certs: DevCerts, *extra: str, tls: bool = True
) -> Iterator[PhidbServer]:
    server = make_server(root, certs, *extra, tls=tls).start()
    try:
        yield server
    finally:
        server.stop()


def serve_once(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """`phidb serve ARGS` expected to refuse to start (a start that serves times out)."""
    return subprocess.run(
        [sys.executable, "-m", "phidb", "serve", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=30,
    )


def dev_certs(out: Path) -> DevCerts:
    return generate_dev_certs(out)


def env_mongosh() -> str | None:
    """The mongosh binary installed by scripts/test, if any."""
    path = os.environ.get("PHIDB_MONGOSH")
    if path and Path(path).exists():
        return path
    local = Path(__file__).resolve().parent.parent / ".tools" / "node_modules" / ".bin" / "mongosh"
    return str(local) if local.exists() else None

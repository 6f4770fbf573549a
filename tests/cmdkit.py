"""An in-process phidb for command tests: the real dispatcher and command table, the real
SQLCipher engine (encrypted with a generated master key, in a temporary directory) and
the real audit log writing JSON lines to a file that tests read back. No sockets."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import phidb.commands  # noqa: F401 - registers every command
from phidb.commands.context import Connection, Context, ServerState
from phidb.commands.cursors import CursorRegistry
from phidb.commands.dispatcher import dispatch
from phidb.config import ServerConfig
from phidb.security.audit.log import AuditLog
from phidb.security.audit.sinks import FileSink
from phidb.storage.sqlite import SQLiteEngine


class AuditFile:
    """The audit log a server writes (`AuditLog` over a `FileSink`), and its events as
    they landed in the file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.log = AuditLog(FileSink(str(path), "JSON"))

    def text(self) -> str:
        return self.path.read_text(encoding="utf-8")

    def events(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.text().splitlines()]

    def of(self, atype: str) -> list[dict[str, Any]]:
        return [e for e in self.events() if e["atype"] == atype]

    def close(self) -> None:
        self.log.close()


class InProcessServer:
    """What `phidb serve` builds for its commands, without the network shell."""

    def __init__(self, root: Path, *, authorization: bool = True) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.root = root
        self.audit = AuditFile(root / "audit.json")
        self.engine = SQLiteEngine(str(root / "db"), os.urandom(32))
        config = ServerConfig(dbpath=str(root / "db"), authorization=authorization)
        self.state = ServerState(config, self.engine, self.audit.log, CursorRegistry())

    def connection(self, connection_id: int = 1, *, loopback: bool = True) -> Connection:
        remote = ("127.0.0.1", 50000 + connection_id) if loopback else ("10.0.0.9", 50000)
        return Connection(connection_id, ("127.0.0.1", 27017), remote, is_loopback=loopback)

    def context(self, db: str = "admin", conn: Connection | None = None) -> Context:
        return Context(self.state, conn or self.connection(), db)

    def close(self) -> None:
        self.engine.close()
        self.audit.close()


class Node:
    """One server and one connection with authorization off; `run` sends a command the
    way the wire would."""

    def __init__(self, root: Path) -> None:
        self.inproc = InProcessServer(root, authorization=False)
        self.audit = self.inproc.audit
        self.engine = self.inproc.engine
        self.server = self.inproc.state
        self.conn = self.inproc.connection()

    def run(self, cmd: dict[str, Any], db: str = "test") -> dict[str, Any]:
        return dispatch(self.server, self.conn, {**cmd, "$db": db}, db)

    def ok(self, cmd: dict[str, Any], db: str = "test") -> dict[str, Any]:
        reply = self.run(cmd, db)
        assert reply["ok"] == 1.0, reply
        return reply

    def fails(self, cmd: dict[str, Any], db: str = "test") -> dict[str, Any]:
        reply = self.run(cmd, db)
        assert reply["ok"] == 0.0, reply
        return reply

    def find(self, coll: str, filter: dict[str, Any] | None = None, **opts: Any) -> list[Any]:
        reply = self.ok({"find": coll, "filter": filter or {}, **opts})
        return list(reply["cursor"]["firstBatch"])

    def audit_events(self) -> list[tuple[str, dict[str, Any], int]]:
        """(atype, param, result) of each event in the audit file, in order."""
        return [(e["atype"], e["param"], e["result"]) for e in self.audit.events()]

    def close(self) -> None:
        self.inproc.close()

"""An in-process phidb for command tests: the real dispatcher, command table and
SQLite engine (unencrypted, in a temporary directory), authorization off and an
audit sink that keeps events in a list."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import phidb.commands  # noqa: F401 - registers every command
from phidb.commands.context import Connection, ServerState
from phidb.commands.cursors import CursorRegistry
from phidb.commands.dispatcher import dispatch
from phidb.config import ServerConfig
from phidb.storage.sqlite import SQLiteEngine


class RecordingAudit:
    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any], int]] = []

    def record(self, atype: str, param: dict[str, Any], result: int, **_: Any) -> None:
        self.events.append((atype, param, result))


class Node:
    """One server and one connection; `run` sends a command the way the wire would."""

    def __init__(self, root: Path) -> None:
        config = ServerConfig(dbpath=str(root), authorization=False)
        self.audit = RecordingAudit()
        self.engine = SQLiteEngine(str(root), None)
        self.server = ServerState(config, self.engine, self.audit, CursorRegistry())
        self.conn = Connection(1, ("127.0.0.1", 27017), ("127.0.0.1", 50000), True)

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

    def close(self) -> None:
        self.engine.close()

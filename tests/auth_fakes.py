"""In-memory stand-ins for the storage engine and the audit log, for unit tests of
authentication and user management that need no SQLCipher files or sockets."""

from __future__ import annotations

import copy
from typing import Any

from phidb.commands.context import Connection, Context, ServerState
from phidb.commands.cursors import CursorRegistry
from phidb.config import ServerConfig
from phidb.errors import DUPLICATE_KEY, MongoError
from phidb.storage.engine import InsertResult


class FakeEngine:
    """Top-level equality filters only; a unique index is honoured on insert."""

    def __init__(self) -> None:
        self.collections: dict[tuple[str, str], dict[int, dict[str, Any]]] = {}
        self.unique: dict[tuple[str, str], list[list[str]]] = {}
        self.next_rid = 1

    def _coll(self, db: str, name: str) -> dict[int, dict[str, Any]]:
        return self.collections.setdefault((db, name), {})

    def find(self, db, name, filter, deadline=None, hint=None):
        for rid, doc in list(self._coll(db, name).items()):
            if all(doc.get(k) == v for k, v in filter.items()):
                yield rid, copy.deepcopy(doc)

    def count(self, db, name):
        return len(self._coll(db, name))

    def create_indexes(self, db, name, specs):
        for spec in specs:
            if spec.get("unique"):
                keys = list(spec["key"])
                if keys not in self.unique.setdefault((db, name), []):
                    self.unique[(db, name)].append(keys)
        return 1, 1 + len(specs)

    def insert(self, db, name, docs, ordered):
        coll = self._coll(db, name)
        errors = []
        inserted = 0
        for i, doc in enumerate(docs):
            clash = any(d["_id"] == doc["_id"] for d in coll.values()) or any(
                all(d.get(k) == doc.get(k) for k in keys)
                for keys in self.unique.get((db, name), [])
                for d in coll.values()
            )
            if clash:
                errors.append((i, MongoError(DUPLICATE_KEY, "E11000 duplicate key error")))
                if ordered:
                    break
                continue
            coll[self.next_rid] = copy.deepcopy(doc)
            self.next_rid += 1
            inserted += 1
        return InsertResult(inserted, errors)

    def replace(self, db, name, rid, doc):
        self._coll(db, name)[rid] = copy.deepcopy(doc)

    def delete(self, db, name, rid):
        del self._coll(db, name)[rid]


class RecordingAudit:
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def record(self, atype, param, result, *, local, remote, users, roles):
        self.events.append(
            {"atype": atype, "param": param, "result": result, "users": users, "roles": roles}
        )

    def of(self, atype: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["atype"] == atype]


def make_server_state() -> ServerState:
    return ServerState(
        config=ServerConfig(), engine=FakeEngine(), audit=RecordingAudit(), cursors=CursorRegistry()
    )


def make_context(state: ServerState, db: str = "admin", conn: Connection | None = None) -> Context:
    if conn is None:
        conn = Connection(1, ("127.0.0.1", 27017), ("127.0.0.1", 50000), is_loopback=True)
    return Context(state, conn, db)

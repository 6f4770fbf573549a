"""User documents in `admin.system.users`, read and written through the storage engine.

A user document is `{_id: "db.user", userId, user, db, roles: [{role, db}], credentials,
mechanisms, customData?}`, as MongoDB keeps it; (user, db) is unique.
"""

from __future__ import annotations

import itertools
import threading
from typing import Any

from phidb.errors import DUPLICATE_KEY, MongoError
from phidb.storage.engine import Engine

USERS_DB = "admin"
USERS_COLLECTION = "system.users"
USER_EXISTS = 51003  # MongoDB's code for createUser of an existing user

UserDoc = dict[str, Any]

_UNIQUE_INDEX = {"key": {"user": 1, "db": 1}, "name": "user_1_db_1", "unique": True}


# Bumped by every user write, so connections notice that a user they carry was
# changed or dropped and re-read it before their next command.
_generation = itertools.count(1)
_current_generation = 0


def generation() -> int:
    """A number that changes whenever any user is created, changed or dropped."""
    return _current_generation


def _bump_generation() -> None:
    global _current_generation
    _current_generation = next(_generation)


def user_id(db: str, user: str) -> str:
    return f"{db}.{user}"


def user_exists_error(db: str, user: str) -> MongoError:
    return MongoError(USER_EXISTS, f'User "{user}@{db}" already exists')


class UserStore:
    """Reads and writes users. Each write is durable when the method returns."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._index_ready = False
        self._lock = threading.Lock()

    def get(self, db: str, user: str) -> UserDoc | None:
        found = self._find_one(user_id(db, user))
        return None if found is None else found[1]

    def count(self) -> int:
        """How many users exist (the localhost exception applies while this is 0)."""
        return self._engine.count(USERS_DB, USERS_COLLECTION)

    def list(self, db: str | None = None) -> list[UserDoc]:
        """Every user of `db` (of every database when None), ordered by _id."""
        spec: dict[str, Any] = {} if db is None else {"db": db}
        docs = [doc for _rid, doc in self._engine.find(USERS_DB, USERS_COLLECTION, spec)]
        return sorted(docs, key=lambda d: str(d.get("_id", "")))

    def insert(self, doc: UserDoc) -> None:
        """Add a user; `User "x@db" already exists` (51003) if it does."""
        self._ensure_index()
        result = self._engine.insert(USERS_DB, USERS_COLLECTION, [doc], ordered=True)
        if result.errors:
            _index, error = result.errors[0]
            if error.code == DUPLICATE_KEY:
                raise user_exists_error(doc["db"], doc["user"])
            raise error
        _bump_generation()

    def replace(self, doc: UserDoc) -> bool:
        """Replace the stored user with the same _id; False if it no longer exists."""
        found = self._find_one(doc["_id"])
        if found is None:
            return False
        self._engine.replace(USERS_DB, USERS_COLLECTION, found[0], doc)
        _bump_generation()
        return True

    def delete(self, db: str, user: str) -> bool:
        """Remove a user; False if there was none."""
        found = self._find_one(user_id(db, user))
        if found is None:
            return False
        self._engine.delete(USERS_DB, USERS_COLLECTION, found[0])
        _bump_generation()
        return True

    def _find_one(self, uid: str) -> tuple[int, UserDoc] | None:
        # Materialized before any write, so no read cursor stays open across it.
        rows = list(self._engine.find(USERS_DB, USERS_COLLECTION, {"_id": uid}))
        return rows[0] if rows else None

    def _ensure_index(self) -> None:
        with self._lock:
            if not self._index_ready:
                self._engine.create_indexes(USERS_DB, USERS_COLLECTION, [dict(_UNIQUE_INDEX)])
                self._index_ready = True

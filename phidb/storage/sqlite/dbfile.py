"""One database's SQLCipher file: a connection per thread, a write lock, transactions
that commit to the write-ahead log, and the catalog of its collections.

Readers never take the write lock: WAL lets them read the last committed state while
one writer (per file) appends. `batch` holds the write lock on the calling thread and
joins every write made inside into one commit.
"""

from __future__ import annotations

import contextlib
import os
import threading
import weakref
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import bson
import sqlcipher3

from phidb.errors import MongoError
from phidb.security.keys import KeystoreError
from phidb.storage.engine import CODEC_OPTIONS, Document
from phidb.storage.sqlite.index_keys import IndexInfo, id_index, index_from_spec

BUSY_TIMEOUT_MS = 30_000

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS collections ("
    " name TEXT PRIMARY KEY, tbl TEXT NOT NULL UNIQUE, options BLOB NOT NULL,"
    " uuid BLOB NOT NULL)",
    "CREATE TABLE IF NOT EXISTS indexes ("
    " coll TEXT NOT NULL, name TEXT NOT NULL, spec BLOB NOT NULL, tbl TEXT,"
    " multikey INTEGER NOT NULL DEFAULT 0, seq INTEGER NOT NULL, PRIMARY KEY (coll, name))",
    "CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL)",
)


@dataclass
class CollectionMeta:
    """A collection as the engine keeps it in memory (mirrors the catalog tables)."""

    name: str
    table: str
    options: Document
    uuid: Any
    indexes: list[IndexInfo] = field(default_factory=list)

    @property
    def secondary(self) -> list[IndexInfo]:
        return [index for index in self.indexes if index.table is not None]

    def index(self, name: str) -> IndexInfo | None:
        for index in self.indexes:
            if index.name == name:
                return index
        return None


class _ThreadState(threading.local):
    conn: sqlcipher3.Connection | None = None
    depth: int = 0  # nesting of write transactions on this thread
    dirty: bool = False  # the catalog changed inside the open transaction


class DatabaseFile:
    """One database file. Methods are thread-safe."""

    def __init__(self, db: str, path: str, key: bytes | None) -> None:
        self.db = db
        self.path = path
        self._key = key
        self.write_lock = threading.RLock()
        self._state = _ThreadState()
        self._conns_lock = threading.Lock()
        self._conns: list[tuple[weakref.ref[threading.Thread], sqlcipher3.Connection]] = []
        self._closed = False
        # Commits since the WAL was last fsynced (see `sync`).
        self.unsynced = False
        self._sync_lock = threading.Lock()
        self.catalog: dict[str, CollectionMeta] = {}
        conn = self.conn()
        with self.write_lock:
            for statement in _SCHEMA:
                conn.execute(statement)
            self.reload_catalog()

    # -- connections ---------------------------------------------------------
    def conn(self) -> sqlcipher3.Connection:
        """This thread's connection to the file, opened on first use."""
        conn = self._state.conn
        if conn is not None:
            return conn
        if self._closed:
            raise MongoError(1, f"database {self.db} is closed")
        conn = self._open()
        self._state.conn = conn
        with self._conns_lock:
            # Close the connections of threads that have ended.
            alive = []
            for ref, other in self._conns:
                thread = ref()
                if thread is None or not thread.is_alive():
                    other.close()
                else:
                    alive.append((ref, other))
            alive.append((weakref.ref(threading.current_thread()), conn))
            self._conns = alive
        return conn

    def _open(self) -> sqlcipher3.Connection:
        # Owner-only from the start; SQLite gives the WAL and shm files the same mode.
        os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600))
        conn = sqlcipher3.connect(
            self.path, isolation_level=None, check_same_thread=False, timeout=30.0
        )
        try:
            if self._key is not None:
                conn.execute(f"PRAGMA key = \"x'{self._key.hex()}'\"")
            # Reading the schema is the first access that needs the key.
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except sqlcipher3.DatabaseError:
            conn.close()
            raise KeystoreError(
                f"the database file {self.path} cannot be read with its key: the key "
                "does not match the one this data was written with, or the file is damaged"
            ) from None
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        # Sort and temporary tables stay in memory, so no plaintext temp file appears.
        conn.execute("PRAGMA temp_store = MEMORY")
        conn.execute("PRAGMA journal_mode = WAL")
        # NORMAL with WAL writes every commit to the log before it returns, so an
        # acknowledged write survives a crash or kill -9 of phidb; `sync` makes the
        # log survive a crash of the machine too. This is MongoDB's journaling model:
        # the engine syncs every commitIntervalMs, and a writeConcern with j: true
        # syncs before the write is acknowledged.
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = OFF")
        return conn

    def close(self) -> None:
        with self._conns_lock:
            self._closed = True
            for _, conn in self._conns:
                with contextlib.suppress(sqlcipher3.Error):
                    conn.close()
            self._conns = []
        self._state = _ThreadState()

    def sync(self) -> None:
        """Make every committed write durable on disk (fsync the WAL and the file)."""
        with self._sync_lock:
            if not self.unsynced or self._closed:
                return
            # Cleared first: a commit landing during the fsync sets it again.
            self.unsynced = False
            for suffix in ("-wal", ""):
                try:
                    fd = os.open(self.path + suffix, os.O_RDONLY)
                except FileNotFoundError:
                    continue
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)

    def checkpoint(self) -> None:
        """Copy the WAL into the main file (the WAL stays encrypted either way)."""
        self.conn().execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()

    # -- transactions --------------------------------------------------------
    @property
    def in_batch(self) -> bool:
        return self._state.depth > 0

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlcipher3.Connection]:
        """A durable write transaction, or a join of the thread's open one. Commits the
        writes that succeeded when a MongoError leaves the block (MongoDB's multi-document
        writes are not atomic either); rolls back on any other exception."""
        with self.write_lock:
            state = self._state
            conn = self.conn()
            outer = state.depth == 0
            if outer:
                conn.execute("BEGIN IMMEDIATE")
            state.depth += 1
            commit = True
            try:
                yield conn
            except MongoError:
                raise
            except BaseException:
                commit = False
                raise
            finally:
                state.depth -= 1
                if outer:
                    self._finish(conn, commit)

    def _finish(self, conn: sqlcipher3.Connection, commit: bool) -> None:
        state = self._state
        if commit:
            try:
                conn.execute("COMMIT")
                self.unsynced = True
            except BaseException:
                with contextlib.suppress(sqlcipher3.Error):
                    conn.execute("ROLLBACK")
                self.reload_catalog()
                state.dirty = False
                raise
        else:
            with contextlib.suppress(sqlcipher3.Error):
                conn.execute("ROLLBACK")
            if state.dirty:
                self.reload_catalog()
        state.dirty = False

    @contextlib.contextmanager
    def operation(self) -> Iterator[sqlcipher3.Connection]:
        """One write that is all or nothing, as a savepoint of the thread's transaction
        (its own one when no batch is open)."""
        with self.transaction() as conn:
            conn.execute("SAVEPOINT op")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK TO op")
                conn.execute("RELEASE op")
                if self._state.dirty:
                    self.reload_catalog()
                raise
            conn.execute("RELEASE op")

    def mark_catalog_dirty(self) -> None:
        self._state.dirty = True

    # -- catalog -------------------------------------------------------------
    def reload_catalog(self) -> None:
        conn = self.conn()
        catalog: dict[str, CollectionMeta] = {}
        for name, table, options, uuid in conn.execute(
            "SELECT name, tbl, options, uuid FROM collections"
        ):
            options_doc = bson.decode(options, CODEC_OPTIONS)
            catalog[name] = CollectionMeta(name, table, options_doc, bson.Binary(uuid, 4))
        for coll, spec, table, multikey in conn.execute(
            "SELECT coll, spec, tbl, multikey FROM indexes ORDER BY seq"
        ):
            meta = catalog.get(coll)
            if meta is None:
                continue
            spec_doc = bson.decode(spec, CODEC_OPTIONS)
            index = id_index() if table is None else index_from_spec(spec_doc, table)
            index.spec = spec_doc
            index.multikey = bool(multikey)
            meta.indexes.append(index)
        self.catalog = catalog

    def next_number(self, conn: sqlcipher3.Connection, counter: str) -> int:
        """A number never handed out before in this file (table names stay unique)."""
        row = conn.execute("SELECT value FROM counters WHERE name = ?", (counter,)).fetchone()
        value = 1 if row is None else int(row[0]) + 1
        conn.execute(
            "INSERT INTO counters (name, value) VALUES (?, ?) "
            "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            (counter, value),
        )
        return value

    def file_size(self) -> int:
        total = 0
        for suffix in ("", "-wal"):
            with contextlib.suppress(OSError):
                total += os.path.getsize(self.path + suffix)
        return total

"""`SQLiteEngine`: the embedded engine, one SQLCipher file per database, each encrypted
with its own data key (wrapped by the master key in the keystore), or plain SQLite files
when encryption is off on purpose.
"""

# Table names in SQL text are generated here ("c12", "c12_i3"), never taken from a
# client; every value is a bound parameter.
# ruff: noqa: S608

from __future__ import annotations

import contextlib
import datetime
import logging
import os
import threading
import uuid
from collections.abc import Iterator, Mapping
from typing import Any

import bson
import sqlcipher3
from bson.objectid import ObjectId
from bson.raw_bson import RawBSONDocument

from phidb.errors import (
    BAD_VALUE,
    BSON_OBJECT_TOO_LARGE,
    ILLEGAL_OPERATION,
    INDEX_KEY_SPECS_CONFLICT,
    INDEX_NOT_FOUND,
    INDEX_OPTIONS_CONFLICT,
    INVALID_OPTIONS,
    NAMESPACE_EXISTS,
    NAMESPACE_NOT_FOUND,
    MongoError,
)
from phidb.query.filter import compile_filter
from phidb.query.order import sort_key
from phidb.security.keys import Keystore, KeystoreError
from phidb.security.keys.keystore import keystore_path
from phidb.storage.engine import (
    CODEC_OPTIONS,
    MAX_DOCUMENT_SIZE,
    NO_DEADLINE,
    CollectionInfo,
    CollectionStats,
    DatabaseStats,
    Deadline,
    Document,
    Engine,
    InsertResult,
    QueryPlan,
    RecordId,
)
from phidb.storage.sqlite.dbfile import CollectionMeta, DatabaseFile
from phidb.storage.sqlite.index_keys import (
    ID_INDEX_NAME,
    IndexInfo,
    duplicate_key_error,
    id_index,
    index_entries,
    index_from_spec,
)
from phidb.storage.sqlite.names import (
    check_collection_name,
    check_db_name,
    db_file_name,
    db_name_from_file,
)
from phidb.storage.sqlite.planner import plan_query, sort_direction
from phidb.storage.sqlite.scan import (
    SCAN_CHUNK,
    collection_scan,
    index_scan,
    matching,
    ordered_index_scan,
)

log = logging.getLogger("phidb.storage")

RAW_CODEC_OPTIONS = CODEC_OPTIONS.with_options(document_class=RawBSONDocument)

# MongoDB's default journal commit interval (storage.journal.commitIntervalMs).
DEFAULT_COMMIT_INTERVAL_MS = 100

_INVALID_ID = 53


class SQLiteEngine(Engine):
    """The storage engine over the files in `dbpath`. Thread-safe."""

    def __init__(
        self,
        dbpath: str,
        master_key: bytes | None,
        commit_interval_ms: int = DEFAULT_COMMIT_INTERVAL_MS,
    ) -> None:
        os.makedirs(dbpath, exist_ok=True)
        self.dbpath = dbpath
        self._commit_interval = commit_interval_ms / 1000.0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._files: dict[str, DatabaseFile] = {}
        self._keystore: Keystore | None = None
        existing = [name for name in os.listdir(dbpath) if db_name_from_file(name) is not None]
        has_keystore = os.path.exists(keystore_path(dbpath))
        if master_key is None:
            if has_keystore:
                raise KeystoreError(
                    f"the data in {dbpath} is encrypted; start with its encryption key"
                )
        else:
            if existing and not has_keystore:
                raise KeystoreError(
                    f"the data in {dbpath} was written without encryption; refusing to "
                    "mix it with encrypted databases"
                )
            self._keystore = Keystore(dbpath, master_key)
        for file_name in existing:
            db = db_name_from_file(file_name)
            assert db is not None
            dbf = self._open_file(db, create=False)
            if dbf is not None and not dbf.catalog:
                self._remove_file(db, dbf)
        self._syncer = threading.Thread(
            target=self._sync_periodically, name="phidb-journal", daemon=True
        )
        self._syncer.start()

    def _sync_periodically(self) -> None:
        while not self._stop.wait(self._commit_interval):
            try:
                self.flush()
            except OSError as exc:
                log.critical("cannot sync the data files to disk: %s", exc)

    def flush(self, db: str | None = None) -> None:
        """fsync the committed writes of `db` (of every database when None)."""
        with self._lock:
            files = list(self._files.values()) if db is None else [self._files.get(db)]
        for dbf in files:
            if dbf is not None:
                dbf.sync()

    # -- lifecycle -----------------------------------------------------------
    def close(self) -> None:
        self._stop.set()
        syncer = getattr(self, "_syncer", None)
        if syncer is not None and syncer.is_alive():
            syncer.join()
        self.flush()
        with self._lock:
            for dbf in self._files.values():
                dbf.close()
            self._files.clear()

    def checkpoint(self) -> None:
        """Fold every WAL into its database file (tests and clean shutdown)."""
        with self._lock:
            files = list(self._files.values())
        for dbf in files:
            with dbf.write_lock:
                dbf.checkpoint()

    # -- files ---------------------------------------------------------------
    def _open_file(self, db: str, create: bool) -> DatabaseFile | None:
        dbf = self._files.get(db)  # the common case needs no lock
        if dbf is not None:
            return dbf
        with self._lock:
            dbf = self._files.get(db)
            if dbf is not None:
                return dbf
            path = os.path.join(self.dbpath, db_file_name(db))
            if not create and not os.path.exists(path):
                return None
            key = None
            if self._keystore is not None:
                key = self._keystore.get_or_create(db) if create else self._keystore.get(db)
                if key is None:
                    raise KeystoreError(f"the keystore has no key for database {db}")
            dbf = DatabaseFile(db, path, key)
            self._files[db] = dbf
            return dbf

    def _remove_file(self, db: str, dbf: DatabaseFile) -> None:
        dbf.close()
        with self._lock:
            self._files.pop(db, None)
        for suffix in ("", "-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                os.remove(dbf.path + suffix)
        if self._keystore is not None:
            self._keystore.remove(db)

    def _file(self, db: str) -> DatabaseFile | None:
        dbf = self._files.get(db)
        return dbf if dbf is not None else self._open_file(db, create=False)

    def _meta(self, db: str, name: str) -> tuple[DatabaseFile, CollectionMeta] | None:
        dbf = self._file(db)
        if dbf is None:
            return None
        meta = dbf.catalog.get(name)
        return None if meta is None else (dbf, meta)

    # -- databases -----------------------------------------------------------
    def list_databases(self) -> list[str]:
        names = []
        for file_name in sorted(os.listdir(self.dbpath)):
            db = db_name_from_file(file_name)
            if db is None:
                continue
            dbf = self._file(db)
            if dbf is not None and dbf.catalog:
                names.append(db)
        return names

    def database_stats(self, db: str) -> DatabaseStats:
        check_db_name(db)
        dbf = self._file(db)
        if dbf is None:
            return DatabaseStats(0, 0, 0, 0, 0, 0, 0)
        objects = data = indexes = index_size = 0
        names = list(dbf.catalog)
        for name in names:
            stats = self.collection_stats(db, name)
            if stats is None:
                continue
            objects += stats.count
            data += stats.size
            indexes += len(stats.index_sizes)
            index_size += sum(stats.index_sizes.values())
        return DatabaseStats(len(names), objects, data, data, indexes, index_size, dbf.file_size())

    def drop_database(self, db: str) -> bool:
        check_db_name(db)
        dbf = self._file(db)
        if dbf is None or not dbf.catalog:
            return False
        with dbf.transaction() as conn:
            for meta in list(dbf.catalog.values()):
                self._drop_tables(dbf, conn, meta)
        # Limitation: the emptied file and its key stay until the next start, when empty
        # database files are removed; other threads may still hold connections to it.
        return True

    # -- collections ---------------------------------------------------------
    def list_collections(self, db: str) -> list[CollectionInfo]:
        check_db_name(db)
        dbf = self._file(db)
        if dbf is None:
            return []
        return [
            CollectionInfo(
                meta.name, dict(meta.options), meta.uuid, {"readOnly": False, "uuid": meta.uuid}
            )
            for meta in sorted(dbf.catalog.values(), key=lambda m: m.name)
        ]

    def create_collection(self, db: str, name: str, options: Mapping[str, Any]) -> None:
        check_collection_name(db, name)
        dbf = self._open_file(db, create=True)
        assert dbf is not None
        with dbf.operation() as conn:
            if name in dbf.catalog:
                raise MongoError(NAMESPACE_EXISTS, f"Collection {db}.{name} already exists.")
            self._create_tables(dbf, conn, name, dict(options))

    def _create_tables(
        self, dbf: DatabaseFile, conn: sqlcipher3.Connection, name: str, options: Document
    ) -> CollectionMeta:
        table = f"c{dbf.next_number(conn, 'collection')}"
        conn.execute(
            f"CREATE TABLE {table} (rid INTEGER PRIMARY KEY, id BLOB NOT NULL UNIQUE, "
            "doc BLOB NOT NULL)"
        )
        coll_uuid = bson.Binary(uuid.uuid4().bytes, 4)
        conn.execute(
            "INSERT INTO collections (name, tbl, options, uuid) VALUES (?, ?, ?, ?)",
            (name, table, bson.encode(options, codec_options=CODEC_OPTIONS), bytes(coll_uuid)),
        )
        index = id_index()
        self._insert_index_row(conn, name, index, dbf)
        meta = CollectionMeta(name, table, options, coll_uuid, [index])
        dbf.mark_catalog_dirty()
        dbf.catalog = {**dbf.catalog, name: meta}
        return meta

    def _insert_index_row(
        self, conn: sqlcipher3.Connection, coll: str, index: IndexInfo, dbf: DatabaseFile
    ) -> None:
        conn.execute(
            "INSERT INTO indexes (coll, name, spec, tbl, multikey, seq) VALUES (?, ?, ?, ?, ?, ?)",
            (
                coll,
                index.name,
                bson.encode(index.spec, codec_options=CODEC_OPTIONS),
                index.table,
                int(index.multikey),
                dbf.next_number(conn, "index_seq"),
            ),
        )

    def _ensure_collection(
        self, db: str, name: str
    ) -> tuple[DatabaseFile, sqlcipher3.Connection, CollectionMeta]:
        """Inside a transaction of the database's file: the collection, created if absent."""
        dbf = self._open_file(db, create=True)
        assert dbf is not None
        conn = dbf.conn()
        meta = dbf.catalog.get(name)
        if meta is None:
            check_collection_name(db, name)
            meta = self._create_tables(dbf, conn, name, {})
        return dbf, conn, meta

    def drop_collection(self, db: str, name: str) -> bool:
        check_collection_name(db, name)
        found = self._meta(db, name)
        if found is None:
            return False
        dbf, _ = found
        with dbf.operation() as conn:
            meta = dbf.catalog.get(name)
            if meta is None:
                return False
            self._drop_tables(dbf, conn, meta)
        return True

    def _drop_tables(
        self, dbf: DatabaseFile, conn: sqlcipher3.Connection, meta: CollectionMeta
    ) -> None:
        for index in meta.secondary:
            conn.execute(f"DROP TABLE {index.table}")
        conn.execute(f"DROP TABLE {meta.table}")
        conn.execute("DELETE FROM collections WHERE name = ?", (meta.name,))
        conn.execute("DELETE FROM indexes WHERE coll = ?", (meta.name,))
        dbf.mark_catalog_dirty()
        dbf.catalog = {k: v for k, v in dbf.catalog.items() if k != meta.name}

    def rename_collection(
        self, db: str, name: str, to_db: str, to_name: str, drop_target: bool
    ) -> None:
        check_collection_name(db, name)
        check_collection_name(to_db, to_name)
        found = self._meta(db, name)
        if found is None:
            raise MongoError(NAMESPACE_NOT_FOUND, "source namespace does not exist")
        if (db, name) == (to_db, to_name):
            raise MongoError(ILLEGAL_OPERATION, "Can't rename a collection to itself")
        if self._meta(to_db, to_name) is not None:
            if not drop_target:
                raise MongoError(NAMESPACE_EXISTS, "target namespace exists")
            self.drop_collection(to_db, to_name)
        dbf, meta = found
        if db == to_db:
            with dbf.operation() as conn:
                conn.execute("UPDATE collections SET name = ? WHERE name = ?", (to_name, name))
                conn.execute("UPDATE indexes SET coll = ? WHERE coll = ?", (to_name, name))
                dbf.mark_catalog_dirty()
                meta.name = to_name
                catalog = {k: v for k, v in dbf.catalog.items() if k != name}
                catalog[to_name] = meta
                dbf.catalog = catalog
            return
        # Limitation: a rename across databases copies the documents and then drops the
        # source; a crash in between can leave both copies.
        specs = [index.spec for index in meta.secondary]
        self.create_collection(to_db, to_name, meta.options)
        if specs:
            self.create_indexes(to_db, to_name, specs)
        target = self._open_file(to_db, create=True)
        assert target is not None
        with target.transaction():
            batch = [doc for _, doc in self.find(db, name, {})]
            result = self.insert(to_db, to_name, batch, ordered=True)
            if result.errors:
                raise result.errors[0][1]
        self.drop_collection(db, name)

    def collection_stats(self, db: str, name: str) -> CollectionStats | None:
        found = self._meta(db, name)
        if found is None:
            return None
        dbf, meta = found
        conn = dbf.conn()
        count, size, id_size = conn.execute(
            f"SELECT count(*), coalesce(sum(length(doc)), 0), coalesce(sum(length(id)), 0) "
            f"FROM {meta.table}"
        ).fetchone()
        # Each index entry costs its key plus a record id (about 8 bytes).
        index_sizes = {ID_INDEX_NAME: int(id_size) + 8 * int(count)}
        for index in meta.secondary:
            rows, key_bytes = conn.execute(
                f"SELECT count(*), coalesce(sum(length(key)), 0) FROM {index.table}"
            ).fetchone()
            index_sizes[index.name] = int(key_bytes) + 8 * int(rows)
        # Limitation: without SQLite's dbstat table per-collection storage size is the
        # BSON size; database_stats' size_on_disk is the files' real size.
        return CollectionStats(int(count), int(size), int(size), index_sizes)

    # -- indexes -------------------------------------------------------------
    def create_indexes(self, db: str, name: str, specs: list[Document]) -> tuple[int, int]:
        check_collection_name(db, name)
        dbf = self._open_file(db, create=True)
        assert dbf is not None
        with dbf.operation():
            dbf_, conn, meta = self._ensure_collection(db, name)
            before = len(meta.indexes)
            for spec in specs:
                self._create_index(dbf, conn, meta, spec, f"{db}.{name}")
            return before, len(meta.indexes)

    def _create_index(
        self,
        dbf: DatabaseFile,
        conn: sqlcipher3.Connection,
        meta: CollectionMeta,
        spec: Document,
        ns: str,
    ) -> None:
        index = index_from_spec(spec, None)
        for existing in meta.indexes:
            same_key = list(existing.key.items()) == list(index.key.items())
            if existing.name == index.name:
                if same_key and (existing.unique, existing.sparse) == (index.unique, index.sparse):
                    return
                if not same_key:
                    raise MongoError(
                        INDEX_KEY_SPECS_CONFLICT,
                        f"An existing index has the same name as the requested index. "
                        f"When index names are not specified, they are auto generated and "
                        f"can cause conflicts. Please refer to our documentation. "
                        f"Requested index: {index.spec}, existing index: {existing.spec}",
                    )
                raise MongoError(
                    INDEX_OPTIONS_CONFLICT,
                    f"An equivalent index already exists with the same name but different "
                    f"options. Requested index: {index.spec}, existing index: {existing.spec}",
                )
            if same_key and (existing.unique, existing.sparse) == (index.unique, index.sparse):
                raise MongoError(
                    INDEX_OPTIONS_CONFLICT,
                    f"Index already exists with a different name: {existing.name}",
                )
        if index.name == ID_INDEX_NAME:
            raise MongoError(BAD_VALUE, "The index name '_id_' is reserved for the _id index")
        index.table = f"{meta.table}_i{dbf.next_number(conn, 'index')}"
        if index.unique:
            conn.execute(
                f"CREATE TABLE {index.table} (key BLOB PRIMARY KEY, rid INTEGER NOT NULL) "
                "WITHOUT ROWID"
            )
        else:
            conn.execute(
                f"CREATE TABLE {index.table} (key BLOB NOT NULL, rid INTEGER NOT NULL, "
                "PRIMARY KEY (key, rid)) WITHOUT ROWID"
            )
        insert_sql = f"INSERT INTO {index.table} (key, rid) VALUES (?, ?)"
        last = 0
        while True:
            rows = conn.execute(
                f"SELECT rid, doc FROM {meta.table} WHERE rid > ? ORDER BY rid LIMIT ?",
                (last, SCAN_CHUNK),
            ).fetchall()
            if not rows:
                break
            for rid, raw in rows:
                entries, multikey = index_entries(index, bson.decode(raw, CODEC_OPTIONS))
                index.multikey = index.multikey or multikey
                for key, values in entries.items():
                    try:
                        conn.execute(insert_sql, (key, rid))
                    except sqlcipher3.IntegrityError:
                        raise duplicate_key_error(ns, index, values) from None
            last = rows[-1][0]
        self._insert_index_row(conn, meta.name, index, dbf)
        dbf.mark_catalog_dirty()
        meta.indexes = [*meta.indexes, index]

    def list_indexes(self, db: str, name: str) -> list[Document] | None:
        found = self._meta(db, name)
        if found is None:
            return None
        return [dict(index.spec) for index in found[1].indexes]

    def drop_index(self, db: str, name: str, index_name: str) -> None:
        found = self._meta(db, name)
        if found is None:
            raise MongoError(NAMESPACE_NOT_FOUND, f"ns not found {db}.{name}")
        dbf, meta = found
        if index_name == ID_INDEX_NAME:
            raise MongoError(INVALID_OPTIONS, "cannot drop _id index")
        with dbf.operation() as conn:
            index = meta.index(index_name)
            if index is None:
                raise MongoError(INDEX_NOT_FOUND, f"index not found with name [{index_name}]")
            conn.execute(f"DROP TABLE {index.table}")
            conn.execute("DELETE FROM indexes WHERE coll = ? AND name = ?", (meta.name, index_name))
            dbf.mark_catalog_dirty()
            meta.indexes = [i for i in meta.indexes if i.name != index_name]

    # -- documents -----------------------------------------------------------
    def insert(self, db: str, name: str, docs: list[Document], ordered: bool) -> InsertResult:
        check_collection_name(db, name)
        dbf = self._open_file(db, create=True)
        assert dbf is not None
        ns = f"{db}.{name}"
        inserted = 0
        errors: list[tuple[int, MongoError]] = []
        with dbf.transaction():
            _, _, meta = self._ensure_collection(db, name)
            # Without secondary indexes a document is one INSERT, atomic by itself;
            # with them, a savepoint keeps a failed document's index entries out.
            plain = not meta.secondary
            conn = dbf.conn()
            for i, doc in enumerate(docs):
                try:
                    if plain:
                        self._insert_one(conn, meta, doc, ns)
                    else:
                        with dbf.operation() as op_conn:
                            self._insert_one(op_conn, meta, doc, ns)
                    inserted += 1
                except MongoError as exc:
                    errors.append((i, exc))
                    if ordered:
                        break
        return InsertResult(inserted, errors)

    def _insert_one(
        self, conn: sqlcipher3.Connection, meta: CollectionMeta, doc: Document, ns: str
    ) -> None:
        raw, id_key = _encode(doc)
        entries = [(index, *index_entries(index, doc)) for index in meta.secondary]
        try:
            rid = conn.execute(
                f"INSERT INTO {meta.table} (id, doc) VALUES (?, ?)", (id_key, raw)
            ).lastrowid
        except sqlcipher3.IntegrityError:
            raise duplicate_key_error(ns, meta.indexes[0], (doc["_id"],)) from None
        for index, keys, multikey in entries:
            self._add_keys(conn, meta, index, keys, rid, multikey, ns)

    def _add_keys(
        self,
        conn: sqlcipher3.Connection,
        meta: CollectionMeta,
        index: IndexInfo,
        keys: Mapping[bytes, tuple[Any, ...]],
        rid: int,
        multikey: bool,
        ns: str,
    ) -> None:
        sql = f"INSERT INTO {index.table} (key, rid) VALUES (?, ?)"
        for key, values in keys.items():
            try:
                conn.execute(sql, (key, rid))
            except sqlcipher3.IntegrityError:
                raise duplicate_key_error(ns, index, values) from None
        if multikey and not index.multikey:
            conn.execute(
                "UPDATE indexes SET multikey = 1 WHERE coll = ? AND name = ?",
                (meta.name, index.name),
            )
            index.multikey = True

    def replace(
        self, db: str, name: str, rid: RecordId, doc: Document, old: Document | None = None
    ) -> None:
        found = self._meta(db, name)
        if found is None:
            raise MongoError(NAMESPACE_NOT_FOUND, f"ns not found {db}.{name}")
        dbf, meta = found
        ns = f"{db}.{name}"
        raw, id_key = _encode(doc)
        with dbf.operation() as conn:
            secondary = meta.secondary
            if secondary and old is None:
                row = conn.execute(f"SELECT doc FROM {meta.table} WHERE rid = ?", (rid,)).fetchone()
                if row is None:
                    return
                old = bson.decode(row[0], CODEC_OPTIONS)
            new_entries = [(index, *index_entries(index, doc)) for index in secondary]
            try:
                conn.execute(
                    f"UPDATE {meta.table} SET id = ?, doc = ? WHERE rid = ?", (id_key, raw, rid)
                )
            except sqlcipher3.IntegrityError:
                raise duplicate_key_error(ns, meta.indexes[0], (doc["_id"],)) from None
            for index, keys, multikey in new_entries:
                assert old is not None
                old_keys, _ = index_entries(index, old)
                conn.executemany(
                    f"DELETE FROM {index.table} WHERE key = ? AND rid = ?",
                    [(key, rid) for key in old_keys if key not in keys],
                )
                added = {k: v for k, v in keys.items() if k not in old_keys}
                self._add_keys(conn, meta, index, added, rid, multikey, ns)

    def delete(self, db: str, name: str, rid: RecordId) -> None:
        found = self._meta(db, name)
        if found is None:
            return
        dbf, meta = found
        with dbf.operation() as conn:
            secondary = meta.secondary
            if secondary:
                row = conn.execute(f"SELECT doc FROM {meta.table} WHERE rid = ?", (rid,)).fetchone()
                if row is None:
                    return
                old = bson.decode(row[0], CODEC_OPTIONS)
                for index in secondary:
                    keys, _ = index_entries(index, old)
                    conn.executemany(
                        f"DELETE FROM {index.table} WHERE key = ? AND rid = ?",
                        [(key, rid) for key in keys],
                    )
            conn.execute(f"DELETE FROM {meta.table} WHERE rid = ?", (rid,))

    def batch(self, db: str) -> contextlib.AbstractContextManager[None]:
        return self._batch(db)

    @contextlib.contextmanager
    def _batch(self, db: str) -> Iterator[None]:
        check_db_name(db)
        dbf = self._open_file(db, create=True)
        assert dbf is not None
        with dbf.transaction():
            yield

    def count(self, db: str, name: str) -> int:
        found = self._meta(db, name)
        if found is None:
            return 0
        dbf, meta = found
        return int(dbf.conn().execute(f"SELECT count(*) FROM {meta.table}").fetchone()[0])

    # -- queries -------------------------------------------------------------
    def plan(self, db: str, name: str, filter: Document, hint: Any = None) -> QueryPlan:
        found = self._meta(db, name)
        if found is None:
            return QueryPlan("EOF")
        return plan_query(found[1], filter, hint, f"{db}.{name}").query_plan()

    def find(
        self,
        db: str,
        name: str,
        filter: Document,
        deadline: Deadline = NO_DEADLINE,
        hint: Any = None,
    ) -> Iterator[tuple[RecordId, Document]]:
        found = self._meta(db, name)
        if found is None:
            return iter(())
        dbf, meta = found
        # Plan and compile now, so a bad filter or hint fails at the call, not later.
        plan = plan_query(meta, filter, hint, f"{db}.{name}")
        matcher = compile_filter(filter, deadline) if filter else None
        if plan.index is None:
            rows = collection_scan(dbf, meta.table, deadline)
        else:
            rows = index_scan(dbf, meta, plan, deadline)
        return _decoded(rows, matcher)

    def find_by_id(self, db: str, name: str, id_value: Any) -> Any:
        found = self._meta(db, name)
        if found is None:
            return None
        dbf, meta = found
        # _id keys are sort keys, so 1, 1.0 and Int64(1) find the same document, as a
        # MongoDB equality would.
        row = (
            dbf.conn()
            .execute(f"SELECT doc FROM {meta.table} WHERE id = ?", (sort_key(id_value),))
            .fetchone()
        )
        return None if row is None else RawBSONDocument(row[0], RAW_CODEC_OPTIONS)

    def find_sorted(
        self,
        db: str,
        name: str,
        filter: Document,
        sort: list[tuple[str, int]],
        deadline: Deadline = NO_DEADLINE,
        hint: Any = None,
        raw: bool = False,
    ) -> Iterator[tuple[RecordId, Mapping[str, Any]]] | None:
        found = self._meta(db, name)
        if found is None:
            return None
        dbf, meta = found
        plan = plan_query(meta, filter, hint, f"{db}.{name}")
        direction = sort_direction(plan, sort)
        if direction is None:
            return None
        rows = ordered_index_scan(dbf, meta, plan, direction, deadline)
        if raw and _index_decides(filter, plan):
            # Every key in the scanned range equals the filter's one value, so every row
            # matches: hand the stored BSON over undecoded.
            return ((rid, RawBSONDocument(raw, RAW_CODEC_OPTIONS)) for rid, raw in rows)
        matcher = compile_filter(filter, deadline) if filter else None
        return _decoded(rows, matcher)


_EXACT_KEY_TYPES = (str, int, float, ObjectId, datetime.datetime)


def _index_decides(filter: Document, plan: Any) -> bool:
    """Whether the plan's index range alone proves a match: the filter is one equality on
    the index's first field, with a scalar whose index key equality is MongoDB's equality,
    on an index that is neither multikey (an array holds other values) nor sparse."""
    index = plan.index
    if index is None or index.multikey or index.sparse or len(filter) != 1:
        return False
    ((path, value),) = filter.items()
    if path != next(iter(index.key)) or not plan.leading_point:
        return False
    if isinstance(value, bool) or not isinstance(value, _EXACT_KEY_TYPES):
        return False
    return not (isinstance(value, float) and value != value)


def _decoded(
    rows: Iterator[tuple[RecordId, bytes]], matcher: Any
) -> Iterator[tuple[RecordId, Document]]:
    """Stored rows as (record id, document), only those `matcher` accepts (all if None)."""
    if matcher is None:
        return ((rid, bson.decode(raw, CODEC_OPTIONS)) for rid, raw in rows)
    return matching(rows, matcher)


def _encode(doc: Document) -> tuple[bytes, bytes]:
    """The stored BSON of `doc` and its `_id` key, after MongoDB's checks on both."""
    if "_id" not in doc:
        raise MongoError(_INVALID_ID, "document to insert has no _id")
    id_value = doc["_id"]
    if isinstance(id_value, list):
        raise MongoError(_INVALID_ID, "The '_id' value cannot be of type array")
    raw = bson.encode(doc, codec_options=CODEC_OPTIONS)
    if len(raw) > MAX_DOCUMENT_SIZE:
        raise MongoError(
            BSON_OBJECT_TOO_LARGE,
            f"object to insert too large. size in bytes: {len(raw)}, max size: {MAX_DOCUMENT_SIZE}",
        )
    return raw, sort_key(id_value)

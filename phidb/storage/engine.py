"""The storage engine contract: what commands may ask of any engine.

Commands and the query layer see only this interface; the embedded SQLCipher
engine (`phidb.storage.sqlite`) implements it, and a PostgreSQL engine can
implement it later without touching commands or query semantics.

Documents cross this boundary as Python dicts decoded with `CODEC_OPTIONS`, so
every BSON type (Int64, Decimal128, datetime, Binary, ObjectId) round-trips.
An engine returns only documents that match the filter it was given (it may
use indexes to find candidates, then must check each one with
`phidb.query.filter`), so a second engine may push filters down instead.
"""

from __future__ import annotations

import abc
import time
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

from bson.binary import UuidRepresentation
from bson.codec_options import CodecOptions, DatetimeConversion

from phidb.errors import MAX_TIME_MS_EXPIRED, MongoError

Document = dict[str, Any]

CODEC_OPTIONS: CodecOptions[Document] = CodecOptions(
    document_class=dict,
    tz_aware=False,
    uuid_representation=UuidRepresentation.UNSPECIFIED,
    datetime_conversion=DatetimeConversion.DATETIME_AUTO,
)

MAX_DOCUMENT_SIZE = 16 * 1024 * 1024


class Deadline:
    """A point in time after which an operation fails with MaxTimeMSExpired (50)."""

    __slots__ = ("expires_at",)

    def __init__(self, max_time_ms: float | None) -> None:
        self.expires_at = None if not max_time_ms else time.monotonic() + max_time_ms / 1000.0

    def remaining(self) -> float | None:
        """Seconds left, or None when there is no limit."""
        if self.expires_at is None:
            return None
        return max(0.0, self.expires_at - time.monotonic())

    def check(self) -> None:
        if self.expires_at is not None and time.monotonic() >= self.expires_at:
            raise MongoError(MAX_TIME_MS_EXPIRED, "operation exceeded time limit")


NO_DEADLINE = Deadline(None)


@dataclass
class CollectionInfo:
    name: str
    options: Document
    uuid: Any  # bson.binary.Binary of subtype 4 (a UUID), stable for the collection's life
    info: Document = field(default_factory=dict)


@dataclass
class CollectionStats:
    count: int
    size: int  # bytes of BSON documents
    storage_size: int
    index_sizes: dict[str, int]


@dataclass
class DatabaseStats:
    collections: int
    objects: int
    data_size: int
    storage_size: int
    indexes: int
    index_size: int
    size_on_disk: int


@dataclass
class InsertResult:
    inserted: int
    errors: list[tuple[int, MongoError]]  # (index in the batch, error)


@dataclass
class QueryPlan:
    """What `explain` reports: which index (if any) found the candidates."""

    stage: str  # "COLLSCAN", "IXSCAN" (under a FETCH) or "IDHACK"/"EOF"
    index_name: str | None = None
    key_pattern: Document | None = None
    index_bounds: Document | None = None
    multi_key: bool = False  # the index holds an entry per array element of some document

    def winning_plan(self) -> Document:
        if self.stage == "IXSCAN":
            return {
                "stage": "FETCH",
                "inputStage": {
                    "stage": "IXSCAN",
                    "keyPattern": self.key_pattern,
                    "indexName": self.index_name,
                    "isMultiKey": self.multi_key,
                    "direction": "forward",
                    "indexBounds": self.index_bounds or {},
                },
            }
        return {"stage": self.stage}


RecordId = int


class Engine(abc.ABC):
    """One storage engine serving many databases. Methods are thread-safe."""

    # -- lifecycle -----------------------------------------------------------
    @abc.abstractmethod
    def close(self) -> None: ...

    # -- databases -----------------------------------------------------------
    @abc.abstractmethod
    def list_databases(self) -> list[str]: ...

    @abc.abstractmethod
    def database_stats(self, db: str) -> DatabaseStats: ...

    @abc.abstractmethod
    def drop_database(self, db: str) -> bool:
        """Drop every collection of `db`; False if it did not exist."""

    # -- collections ---------------------------------------------------------
    @abc.abstractmethod
    def list_collections(self, db: str) -> list[CollectionInfo]: ...

    @abc.abstractmethod
    def create_collection(self, db: str, name: str, options: Mapping[str, Any]) -> None:
        """Create `db.name` with its `_id_` index. NamespaceExists (48) if present."""

    @abc.abstractmethod
    def drop_collection(self, db: str, name: str) -> bool:
        """False if the collection did not exist."""

    @abc.abstractmethod
    def rename_collection(
        self, db: str, name: str, to_db: str, to_name: str, drop_target: bool
    ) -> None:
        """NamespaceNotFound (26) if the source is missing, NamespaceExists (48) if the
        target exists and `drop_target` is false."""

    @abc.abstractmethod
    def collection_stats(self, db: str, name: str) -> CollectionStats | None: ...

    # -- indexes -------------------------------------------------------------
    @abc.abstractmethod
    def create_indexes(self, db: str, name: str, specs: list[Document]) -> tuple[int, int]:
        """Create indexes (`{key, name, unique?, sparse?}`), creating the collection if
        needed. Returns (number of indexes before, after). Building a unique index over
        duplicates fails with DuplicateKey (11000); a different spec under an existing
        name fails with IndexKeySpecsConflict (86) or IndexOptionsConflict (85)."""

    @abc.abstractmethod
    def list_indexes(self, db: str, name: str) -> list[Document] | None:
        """Index specs `{v: 2, key, name, ...}`; None if the collection is missing."""

    @abc.abstractmethod
    def drop_index(self, db: str, name: str, index_name: str) -> None:
        """IndexNotFound (27) if absent; `_id_` cannot be dropped (InvalidOptions, 72)."""

    # -- documents -----------------------------------------------------------
    @abc.abstractmethod
    def insert(self, db: str, name: str, docs: list[Document], ordered: bool) -> InsertResult:
        """Insert documents (each already has `_id`), creating the collection if needed.
        Each successful insert survives a crash of phidb when this returns, and a crash
        of the machine after the engine's commit interval or `flush`. With `ordered`, stop at
        the first error; otherwise try every document."""

    @abc.abstractmethod
    def find(
        self,
        db: str,
        name: str,
        filter: Document,
        deadline: Deadline = NO_DEADLINE,
        hint: Any = None,
    ) -> Iterator[tuple[RecordId, Document]]:
        """Yield (record id, document) for every document matching `filter`, in
        natural order. Calls `deadline.check()` often enough to honour maxTimeMS."""

    def find_by_id(self, db: str, name: str, id_value: Any) -> Any:
        """The stored document whose `_id` equals `id_value` (numeric types compare by
        value), as a `bson.raw_bson.RawBSONDocument` the reply can carry without
        decoding; None when there is none, NotImplemented when the engine has no such
        shortcut. For reads only: the result is not a dict."""
        return NotImplemented

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
        """The matches of `filter` already in `sort` order ([(path, 1 | -1)]), when an
        index provides that order; None otherwise (the caller sorts `find`'s results).
        Lets a sorted, limited query stop after `limit` documents. With `raw`, documents
        the index alone proves to match may come as `RawBSONDocument`s (undecoded,
        read-only) instead of dicts."""
        return None

    @abc.abstractmethod
    def plan(self, db: str, name: str, filter: Document, hint: Any = None) -> QueryPlan:
        """The plan `find` would use for `filter`."""

    @abc.abstractmethod
    def count(self, db: str, name: str) -> int:
        """Number of documents in the collection (0 when missing)."""

    @abc.abstractmethod
    def replace(
        self, db: str, name: str, rid: RecordId, doc: Document, old: Document | None = None
    ) -> None:
        """Replace the document stored at `rid` (same `_id`), maintaining indexes;
        DuplicateKey (11000) leaves the old document in place. `old`, when the caller has
        it, is the document as `find` returned it (it spares the engine reading it
        again). Durable on return."""

    @abc.abstractmethod
    def delete(self, db: str, name: str, rid: RecordId) -> None:
        """Remove the document at `rid`. Durable on return."""

    @abc.abstractmethod
    def flush(self, db: str | None = None) -> None:
        """Make every acknowledged write of `db` (of all databases when None) survive a
        crash of the machine, not only of phidb (writeConcern `j: true`)."""

    @abc.abstractmethod
    def batch(self, db: str) -> AbstractContextManager[None]:
        """Group the writes made inside into one durable commit (a multi-document
        update or delete). Nested use joins the outer batch. Reads inside see the
        batch's own writes."""

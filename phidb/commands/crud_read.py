"""Read commands: find, getMore, killCursors, count and distinct.

`find` streams from the engine (which uses indexes for the filter) through sort,
skip, limit and projection into a cursor the client continues with getMore.
"""

from __future__ import annotations

import datetime
import heapq
import itertools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from bson.int64 import Int64
from bson.objectid import ObjectId

from phidb.commands.context import Context
from phidb.commands.cursors import DEFAULT_FIRST_BATCH
from phidb.commands.namespaces import (
    Document,
    collection_argument,
    get_bool,
    get_document,
    get_int,
    reject_unknown_fields,
    require,
    wrong_type,
)
from phidb.commands.registry import command
from phidb.errors import BAD_VALUE, MongoError
from phidb.query.filter import compile_filter
from phidb.query.order import sort_key
from phidb.query.projection import compile_projection
from phidb.query.sort import compile_sort, natural_direction, parse_sort
from phidb.security.authz.privileges import Privilege, on_database, on_namespace
from phidb.storage.engine import Deadline

FIND_FIELDS = (
    "filter", "projection", "sort", "hint", "skip", "limit", "batchSize", "singleBatch",
    "comment", "maxTimeMS", "readConcern", "max", "min", "returnKey", "showRecordId",
    "tailable", "oplogReplay", "noCursorTimeout", "awaitData", "allowPartialResults",
    "collation", "allowDiskUse", "let", "readOnce", "allowSpeculativeMajorityRead",
    "requestResumeToken", "resumeAfter", "startAt", "term", "includeQueryStatsMetrics",
)  # fmt: skip


@dataclass
class FindSpec:
    """A parsed find: what to match, in which order, how many, and which fields."""

    collection: str
    filter: Document
    projection: Document | None
    sort: Document | None
    skip: int
    limit: int | None  # None or 0: no limit
    batch_size: int | None
    single_batch: bool
    hint: Any


def parse_find(db: str, cmd: Document) -> FindSpec:
    """Validate a find command's arguments as MongoDB does."""
    reject_unknown_fields(cmd, "find", FIND_FIELDS)
    coll = collection_argument(cmd, "find", db)
    filter_spec = get_document(cmd, "find", "filter", {}) or {}
    projection = get_document(cmd, "find", "projection")
    sort = get_document(cmd, "find", "sort")
    skip = get_int(cmd, "find", "skip", minimum=0) or 0
    # Drivers send a legacy negative limit as `limit: n, singleBatch: true`; the
    # command itself, like MongoDB's, accepts only limits >= 0.
    limit = get_int(cmd, "find", "limit", minimum=0)
    batch_size = get_int(cmd, "find", "batchSize", minimum=0)
    single_batch = get_bool(cmd, "find", "singleBatch")
    hint = cmd.get("hint")
    if hint is not None and not isinstance(hint, str | dict):
        raise wrong_type("find", "hint", hint, "[string, object]")
    for flag in ("tailable", "awaitData"):
        if get_bool(cmd, "find", flag):
            raise MongoError(
                BAD_VALUE,
                "error processing query: tailable cursor requested on non capped collection",
            )
    # The filter is checked by the engine, which compiles it as the find starts.
    compile_projection(projection, filter_spec)
    compile_sort(sort)
    return FindSpec(
        coll, filter_spec, projection or None, sort or None, skip, limit or None,
        batch_size, single_batch, hint,
    )  # fmt: skip


def run_find(ctx: Context, db: str, spec: FindSpec, deadline: Deadline) -> Iterator[Document]:
    """The documents a find returns, lazily where no sort forces reading them all."""
    projection = compile_projection(spec.projection, spec.filter)
    point = _point_read(ctx, db, spec)
    if point is not NotImplemented:
        return iter(() if point is None or spec.skip else (point,))
    ordered = index_ordered(ctx, db, spec, deadline)
    docs: Iterator[Document]
    if ordered is not None:
        # The index hands the documents over in sort order: a limit stops the read.
        # Undecoded documents are read-only Mappings the reply encoder copies as they are.
        docs = (doc for _, doc in ordered)  # type: ignore[misc]
    else:
        found = ctx.engine.find(db, spec.collection, spec.filter, deadline, spec.hint)
        docs = (doc for _, doc in found)
        docs = sort_documents(docs, spec.sort, spec.skip + spec.limit if spec.limit else None)
    stop = spec.skip + spec.limit if spec.limit else None
    docs = itertools.islice(docs, spec.skip, stop)
    if projection is not None:
        docs = (projection.apply(doc) for doc in docs)
    return docs


_POINT_ID_TYPES = (str, int, float, ObjectId, datetime.datetime)


def _point_read(ctx: Context, db: str, spec: FindSpec) -> Any:
    """MongoDB's IDHACK: `{_id: <scalar>}` with no projection or hint reads one stored
    document and returns it undecoded. NotImplemented when the find is anything else."""
    if spec.projection or spec.hint is not None or len(spec.filter) != 1:
        return NotImplemented
    value = spec.filter.get("_id", spec.filter)
    if isinstance(value, bool) or not isinstance(value, _POINT_ID_TYPES):
        return NotImplemented
    if isinstance(value, float) and value != value:
        return NotImplemented  # NaN: leave it to the general path's rules
    return ctx.engine.find_by_id(db, spec.collection, value)


def index_ordered(
    ctx: Context, db: str, spec: FindSpec, deadline: Deadline
) -> Iterator[tuple[int, Mapping[str, Any]]] | None:
    """The matches in sort order straight from an index, when one provides it; without a
    projection they may stay undecoded BSON all the way into the reply."""
    if not spec.sort or natural_direction(spec.sort) is not None:
        return None
    fields = [(".".join(path), 1 if ascending else -1) for path, ascending in parse_sort(spec.sort)]
    return ctx.engine.find_sorted(
        db, spec.collection, spec.filter, fields, deadline, spec.hint, raw=not spec.projection
    )


def sort_documents(
    docs: Iterator[Document], sort: Document | None, keep: int | None
) -> Iterator[Document]:
    """Sort by `sort` (a `{$natural}` sort keeps storage order); with `keep`, only the
    first `keep` documents are needed, so only those are held in order."""
    if not sort:
        return docs
    if natural_direction(sort) == -1:
        docs = iter(list(docs)[::-1])
    if not parse_sort(sort):
        return docs
    key = compile_sort(sort)
    # The running index keeps the sort stable among equal keys.
    keyed = ((key(doc), n, doc) for n, doc in enumerate(docs))
    if keep is not None:
        return (doc for _, _, doc in heapq.nsmallest(keep, keyed, key=lambda t: (t[0], t[1])))
    return (doc for _, _, doc in sorted(keyed, key=lambda t: (t[0], t[1])))


def cursor_reply(cursor_id: int, ns: str, batch: list[Document], first: bool) -> Document:
    return {
        "cursor": {
            "id": Int64(cursor_id),
            "ns": ns,
            "firstBatch" if first else "nextBatch": batch,
        }
    }


def open_cursor(
    ctx: Context,
    ns: str,
    docs: Iterator[Document],
    batch_size: int | None,
    single_batch: bool = False,
    deadline: Deadline | None = None,
) -> Document:
    """Hand `docs` to the cursor registry and answer with the first batch."""
    cursor_id, batch = ctx.server.cursors.open(
        ns,
        ctx.conn.auth.owner_key(),
        ctx.conn.connection_id,
        docs,
        batch_size,
        single_batch,
        deadline,
    )
    return cursor_reply(cursor_id, ns, batch, first=True)


def request_deadline(ctx: Context) -> Deadline:
    """A private copy of the request's deadline for a cursor's source: the cursor
    registry keeps it counting down across getMores (MongoDB's maxTimeMS covers the
    cursor's whole processing time) and stops its clock between batches."""
    deadline = Deadline(None)
    deadline.expires_at = ctx.deadline.expires_at
    return deadline


def _find_privileges(ctx: Context, cmd: Document) -> list[Privilege]:
    return [on_namespace(ctx.db, _name_or_empty(cmd, "find"), "find")]


def _name_or_empty(cmd: Document, field: str) -> str:
    value = cmd.get(field)
    return value if isinstance(value, str) else ""


@command("find", privileges=_find_privileges, opcounter="query")
def find(ctx: Context, cmd: Document) -> Document:
    spec = parse_find(ctx.db, cmd)
    deadline = request_deadline(ctx)
    docs = run_find(ctx, ctx.db, spec, deadline)
    batch_size = spec.batch_size
    if spec.limit and batch_size != 0:
        batch_size = min(batch_size or DEFAULT_FIRST_BATCH, spec.limit)
    ns = f"{ctx.db}.{spec.collection}"
    return open_cursor(ctx, ns, docs, batch_size, spec.single_batch, deadline)


# -- getMore / killCursors --------------------------------------------------------


def cursor_namespace_privilege(db: str, collection: str, action: str) -> Privilege:
    """The privilege to continue a cursor on `db.collection`: cursors of listCollections
    and listIndexes live on `$cmd.` namespaces and need those commands' actions."""
    if collection.startswith("$cmd.listCollections"):
        return on_database(db, "listCollections")
    if collection.startswith("$cmd.listIndexes."):
        return on_namespace(db, collection[len("$cmd.listIndexes.") :], "listIndexes")
    if collection.startswith("$cmd.aggregate"):
        return on_database(db, action)
    return on_namespace(db, collection, action)


def _get_more_privileges(ctx: Context, cmd: Document) -> list[Privilege]:
    return [cursor_namespace_privilege(ctx.db, _name_or_empty(cmd, "collection"), "find")]


@command("getMore", privileges=_get_more_privileges, opcounter="getmore")
def get_more(ctx: Context, cmd: Document) -> Document:
    cursor_id = cmd.get("getMore")
    if not isinstance(cursor_id, Int64):
        raise wrong_type("getMore", "getMore", cursor_id, "long")
    collection = require(cmd, "getMore", "collection")
    if not isinstance(collection, str):
        raise wrong_type("getMore", "collection", collection, "string")
    batch_size = get_int(cmd, "getMore", "batchSize", minimum=0)
    ns = f"{ctx.db}.{collection}"
    next_id, batch = ctx.server.cursors.get_more(
        int(cursor_id), ns, ctx.conn.auth.owner_key(), batch_size or None
    )
    return cursor_reply(next_id, ns, batch, first=False)


def _kill_cursors_privileges(ctx: Context, cmd: Document) -> list[Privilege]:
    return [cursor_namespace_privilege(ctx.db, _name_or_empty(cmd, "killCursors"), "killCursors")]


@command("killCursors", privileges=_kill_cursors_privileges)
def kill_cursors(ctx: Context, cmd: Document) -> Document:
    collection = cmd.get("killCursors")
    if not isinstance(collection, str):
        raise wrong_type("killCursors", "killCursors", collection, "string")
    ids = require(cmd, "killCursors", "cursors")
    if not isinstance(ids, list):
        raise wrong_type("killCursors", "cursors", ids, "array")
    for cid in ids:
        if not isinstance(cid, Int64):
            raise wrong_type("killCursors", "cursors", cid, "long")
    killed, not_found = ctx.server.cursors.kill([int(c) for c in ids], ctx.conn.auth.owner_key())
    return {
        "cursorsKilled": [Int64(c) for c in killed],
        "cursorsNotFound": [Int64(c) for c in not_found],
        "cursorsAlive": [],
        "cursorsUnknown": [],
    }


# -- count / distinct -------------------------------------------------------------


def _count_privileges(ctx: Context, cmd: Document) -> list[Privilege]:
    return [on_namespace(ctx.db, _name_or_empty(cmd, "count"), "find")]


def count_matching(ctx: Context, db: str, cmd: Document) -> int:
    coll = collection_argument(cmd, "count", db)
    query = get_document(cmd, "count", "query", {}) or {}
    skip = get_int(cmd, "count", "skip", minimum=0) or 0
    limit = abs(get_int(cmd, "count", "limit") or 0)
    hint = cmd.get("hint")
    compile_filter(query)
    if not query and hint is None:
        total = max(0, ctx.engine.count(db, coll) - skip)
        return min(total, limit) if limit else total
    matches = (1 for _ in ctx.engine.find(db, coll, query, ctx.deadline, hint))
    stop = skip + limit if limit else None
    return sum(itertools.islice(matches, skip, stop))


@command("count", privileges=_count_privileges)
def count(ctx: Context, cmd: Document) -> Document:
    return {"n": count_matching(ctx, ctx.db, cmd)}


def _distinct_privileges(ctx: Context, cmd: Document) -> list[Privilege]:
    return [on_namespace(ctx.db, _name_or_empty(cmd, "distinct"), "find")]


def values_at(doc: Any, path: list[str]) -> Iterator[Any]:
    """The values `distinct` collects at `path`: arrays met on the way are searched
    element by element, and an array at the end gives its elements."""
    if not path:
        if isinstance(doc, list):
            yield from doc
        else:
            yield doc
        return
    head, rest = path[0], path[1:]
    if isinstance(doc, dict):
        if head in doc:
            yield from values_at(doc[head], rest)
    elif isinstance(doc, list):
        if head.isdigit() and int(head) < len(doc):
            yield from values_at(doc[int(head)], rest)
        for element in doc:
            if isinstance(element, dict) and head in element:
                yield from values_at(element[head], rest)


def distinct_values(ctx: Context, db: str, cmd: Document) -> list[Any]:
    coll = collection_argument(cmd, "distinct", db)
    key = require(cmd, "distinct", "key")
    if not isinstance(key, str):
        raise wrong_type("distinct", "key", key, "string")
    query = get_document(cmd, "distinct", "query", {}) or {}
    compile_filter(query)
    path = key.split(".")
    seen: dict[bytes, Any] = {}
    for _, doc in ctx.engine.find(db, coll, query, ctx.deadline, cmd.get("hint")):
        for value in values_at(doc, path):
            seen.setdefault(sort_key(value), value)
    return [seen[k] for k in sorted(seen)]


@command("distinct", privileges=_distinct_privileges)
def distinct(ctx: Context, cmd: Document) -> Document:
    return {"values": distinct_values(ctx, ctx.db, cmd)}

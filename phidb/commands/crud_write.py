"""Write commands: insert, update, delete and findAndModify.

Per-statement failures are `writeErrors` in an `ok: 1` reply, as MongoDB reports
them; `ordered` (the default) stops at the first. A multi-document update or
delete runs inside one engine batch, so it commits once.
"""

from __future__ import annotations

from typing import Any

import bson
from bson.objectid import ObjectId
from bson.regex import Regex

from phidb.commands.collections import ensure_collection
from phidb.commands.context import Context
from phidb.commands.crud_read import sort_documents
from phidb.commands.namespaces import (
    Document,
    get_array,
    get_bool,
    get_document,
    get_int,
    require,
    writable_collection,
    wrong_type,
)
from phidb.commands.registry import command
from phidb.errors import (
    BSON_OBJECT_TOO_LARGE,
    DOLLAR_PREFIXED_FIELD_NAME,
    FAILED_TO_PARSE,
    MongoError,
)
from phidb.query.filter import compile_filter
from phidb.query.projection import compile_projection
from phidb.query.update import compile_update, is_replacement, upsert_seed
from phidb.security.authz.privileges import Privilege, on_namespace
from phidb.storage.engine import MAX_DOCUMENT_SIZE, RecordId

INVALID_ID_FIELD = 53
INVALID_LENGTH = 16
UPDATE_RESULT_TOO_LARGE = 17419


def _write_reply(n: int, errors: list[tuple[int, MongoError]], **extra: Any) -> Document:
    reply: Document = {"n": n, **extra}
    if errors:
        reply["writeErrors"] = [err.to_write_error(i) for i, err in sorted(errors, key=_index)]
    return reply


def _index(entry: tuple[int, MongoError]) -> int:
    return entry[0]


# -- insert -----------------------------------------------------------------------


def check_id(value: Any) -> None:
    if isinstance(value, list):
        raise MongoError(INVALID_ID_FIELD, "The '_id' value cannot be of type array")
    if isinstance(value, Regex):
        raise MongoError(INVALID_ID_FIELD, "The '_id' value cannot be of type regex")
    if isinstance(value, dict):
        for key in value:
            if key.startswith("$"):
                raise MongoError(
                    DOLLAR_PREFIXED_FIELD_NAME,
                    f"_id fields may not contain '$'-prefixed fields: {key} is not valid for"
                    " storage.",
                )


def check_size(doc: Document) -> None:
    size = len(bson.encode(doc))
    if size > MAX_DOCUMENT_SIZE:
        raise MongoError(
            BSON_OBJECT_TOO_LARGE,
            f"object to insert too large. size in bytes: {size}, max size: {MAX_DOCUMENT_SIZE}",
        )


def prepare_insert(doc: Any) -> Document:
    """The document as stored: `_id` first (an ObjectId when missing), validated.
    `$`-prefixed field names are allowed in inserts since MongoDB 5.0."""
    if not isinstance(doc, dict):
        raise wrong_type("insert", "documents", doc, "object")
    if "_id" in doc:
        check_id(doc["_id"])
        if next(iter(doc)) == "_id":
            return doc
        prepared = {"_id": doc["_id"], **{k: v for k, v in doc.items() if k != "_id"}}
    else:
        prepared = {"_id": ObjectId(), **doc}
    # The engine refuses documents over 16 MiB (BSONObjectTooLarge) as it encodes them.
    return prepared


def insert_documents(
    ctx: Context, db: str, coll: str, docs: list[Any], ordered: bool
) -> tuple[int, list[tuple[int, MongoError]]]:
    """Insert, returning (number inserted, [(index, error)])."""
    prepared: list[tuple[int, Document]] = []
    errors: list[tuple[int, MongoError]] = []
    for index, doc in enumerate(docs):
        try:
            prepared.append((index, prepare_insert(doc)))
        except MongoError as exc:
            errors.append((index, exc))
            if ordered:
                break
    inserted = 0
    if prepared:
        ensure_collection(ctx, db, coll)
        result = ctx.engine.insert(db, coll, [doc for _, doc in prepared], ordered)
        inserted = result.inserted
        errors.extend((prepared[i][0], err) for i, err in result.errors)
    if ordered and errors:
        errors = [min(errors, key=_index)]
    return inserted, errors


# MongoDB's maxWriteBatchSize: drivers split larger batches, so only a hand-built
# command exceeds it.
MAX_WRITE_BATCH_SIZE = 100_000


def check_batch_size(statements: list[Any]) -> None:
    """InvalidLength (16) for an empty batch or one over maxWriteBatchSize."""
    if not 1 <= len(statements) <= MAX_WRITE_BATCH_SIZE:
        raise MongoError(
            INVALID_LENGTH,
            f"Write batch sizes must be between 1 and {MAX_WRITE_BATCH_SIZE}."
            f" Got {len(statements)} operations.",
        )


def _insert_privileges(ctx: Context, cmd: Document) -> list[Privilege]:
    # A write to a namespace no client may write (system.*) is an invalid request,
    # not a missing privilege: refuse it as such before the privilege check.
    return [on_namespace(ctx.db, writable_collection(cmd, "insert", ctx.db), "insert")]


@command("insert", privileges=_insert_privileges, opcounter="insert")
def insert(ctx: Context, cmd: Document) -> Document:
    coll = writable_collection(cmd, "insert", ctx.db)
    docs = require(cmd, "insert", "documents")
    if not isinstance(docs, list):
        raise wrong_type("insert", "documents", docs, "array")
    check_batch_size(docs)
    ordered = get_bool(cmd, "insert", "ordered", True)
    get_bool(cmd, "insert", "bypassDocumentValidation")
    n, errors = insert_documents(ctx, ctx.db, coll, docs, ordered)
    return _write_reply(n, errors)


# -- update -----------------------------------------------------------------------


class Modifier:
    """One statement's update (operators, a replacement document or a pipeline)."""

    def __init__(self, spec: Any, array_filters: list[Document] | None) -> None:
        self.is_replacement = is_replacement(spec)
        self.compiled = compile_update(spec, array_filters)

    def apply(self, doc: Document, query: Document) -> tuple[Document, bool]:
        """The updated document and whether it differs from `doc`."""
        new_doc, changed = self.compiled.apply(doc, is_insert=False, query=query)
        if changed:
            _check_update_size(new_doc)
        return new_doc, changed

    def upsert_document(self, query: Document) -> Document:
        """The document an upsert inserts when nothing matched `query`: the query's
        equality fields (only its `_id` for a replacement) with the update applied."""
        seed = upsert_seed(query)
        if self.is_replacement:
            seed = {"_id": seed["_id"]} if "_id" in seed else {}
        doc, _ = self.compiled.apply(seed, is_insert=True, query=query)
        return prepare_insert(doc)


def _check_update_size(doc: Document) -> None:
    size = len(bson.encode(doc))
    if size > MAX_DOCUMENT_SIZE:
        raise MongoError(
            UPDATE_RESULT_TOO_LARGE,
            f"Resulting document after update is larger than {MAX_DOCUMENT_SIZE}",
        )


def parse_array_filters(stmt: Document, command_name: str) -> list[Document] | None:
    filters = get_array(stmt, command_name, "arrayFilters")
    if filters is None:
        return None
    for entry in filters:
        if not isinstance(entry, dict):
            raise wrong_type(command_name, "arrayFilters", entry, "object")
    return filters


def upsert_one(ctx: Context, db: str, coll: str, doc: Document) -> None:
    ensure_collection(ctx, db, coll)
    result = ctx.engine.insert(db, coll, [doc], True)
    if result.errors:
        raise result.errors[0][1]


def run_update_statement(ctx: Context, db: str, coll: str, stmt: Any) -> tuple[int, int, Any]:
    """One `updates` entry: (matched, modified, upserted _id or None)."""
    if not isinstance(stmt, dict):
        raise wrong_type("update", "updates", stmt, "object")
    query = get_document(stmt, "update.updates", "q", {}) or {}
    spec = require(stmt, "update.updates", "u")
    multi = get_bool(stmt, "update.updates", "multi")
    upsert = get_bool(stmt, "update.updates", "upsert")
    modifier = Modifier(spec, parse_array_filters(stmt, "update.updates"))
    if multi and modifier.is_replacement:
        raise MongoError(
            FAILED_TO_PARSE, "multi update is not supported for replacement-style update"
        )
    hint = stmt.get("hint")

    # The engine compiles (and so checks) the filter as the find starts.
    with ctx.engine.batch(db):
        found = ctx.engine.find(db, coll, query, ctx.deadline, hint)
        targets = list(found) if multi else _first(found)
        matched = modified = 0
        for rid, doc in targets:
            new_doc, changed = modifier.apply(doc, query)
            matched += 1
            if changed:
                ctx.engine.replace(db, coll, rid, new_doc, doc)
                modified += 1
    if matched or not upsert:
        return matched, modified, None
    doc = modifier.upsert_document(query)
    upsert_one(ctx, db, coll, doc)
    return 1, 0, doc["_id"]


def _update_privileges(ctx: Context, cmd: Document) -> list[Privilege]:
    actions = ["update"]
    updates = cmd.get("updates")
    if isinstance(updates, list) and any(isinstance(u, dict) and u.get("upsert") for u in updates):
        actions.append("insert")
    return [on_namespace(ctx.db, writable_collection(cmd, "update", ctx.db), *actions)]


@command("update", privileges=_update_privileges, opcounter="update")
def update(ctx: Context, cmd: Document) -> Document:
    coll = writable_collection(cmd, "update", ctx.db)
    statements = require(cmd, "update", "updates")
    if not isinstance(statements, list):
        raise wrong_type("update", "updates", statements, "array")
    check_batch_size(statements)
    ordered = get_bool(cmd, "update", "ordered", True)
    get_bool(cmd, "update", "bypassDocumentValidation")
    matched = modified = 0
    upserted: list[Document] = []
    errors: list[tuple[int, MongoError]] = []
    for index, stmt in enumerate(statements):
        try:
            n, n_modified, upserted_id = run_update_statement(ctx, ctx.db, coll, stmt)
        except MongoError as exc:
            errors.append((index, exc))
            if ordered:
                break
            continue
        matched += n
        modified += n_modified
        if upserted_id is not None:
            upserted.append({"index": index, "_id": upserted_id})
    extra: Document = {"nModified": modified}
    if upserted:
        extra["upserted"] = upserted
    return _write_reply(matched, errors, **extra)


# -- delete -----------------------------------------------------------------------


def parse_delete_statement(stmt: Any) -> tuple[Document, int]:
    """(q, limit) of one `deletes` entry; malformed entries fail the whole command."""
    if not isinstance(stmt, dict):
        raise wrong_type("delete", "deletes", stmt, "object")
    require(stmt, "delete.deletes", "q")
    require(stmt, "delete.deletes", "limit")
    query = get_document(stmt, "delete.deletes", "q") or {}
    limit = get_int(stmt, "delete.deletes", "limit")
    if limit not in (0, 1):
        raise MongoError(
            FAILED_TO_PARSE, f"The limit field in delete objects must be 0 or 1. Got {limit}"
        )
    return query, limit


def run_delete_statement(ctx: Context, db: str, coll: str, stmt: Document) -> int:
    query, limit = parse_delete_statement(stmt)
    compile_filter(query)
    with ctx.engine.batch(db):
        found = ctx.engine.find(db, coll, query, ctx.deadline, stmt.get("hint"))
        rids = [rid for rid, _ in found] if limit == 0 else [rid for rid, _ in _first(found)]
        for rid in rids:
            ctx.engine.delete(db, coll, rid)
    return len(rids)


def _first(found: Any) -> list[tuple[RecordId, Document]]:
    for pair in found:
        return [pair]
    return []


def _delete_privileges(ctx: Context, cmd: Document) -> list[Privilege]:
    return [on_namespace(ctx.db, writable_collection(cmd, "delete", ctx.db), "remove")]


@command("delete", privileges=_delete_privileges, opcounter="delete")
def delete(ctx: Context, cmd: Document) -> Document:
    coll = writable_collection(cmd, "delete", ctx.db)
    statements = require(cmd, "delete", "deletes")
    if not isinstance(statements, list):
        raise wrong_type("delete", "deletes", statements, "array")
    check_batch_size(statements)
    ordered = get_bool(cmd, "delete", "ordered", True)
    for stmt in statements:
        parse_delete_statement(stmt)
    deleted = 0
    errors: list[tuple[int, MongoError]] = []
    for index, stmt in enumerate(statements):
        try:
            deleted += run_delete_statement(ctx, ctx.db, coll, stmt)
        except MongoError as exc:
            errors.append((index, exc))
            if ordered:
                break
    return _write_reply(deleted, errors)


# -- findAndModify ----------------------------------------------------------------


def _command_key(cmd: Document) -> str:
    return "findandmodify" if "findandmodify" in cmd else "findAndModify"


def _find_and_modify_privileges(ctx: Context, cmd: Document) -> list[Privilege]:
    actions = ["find", "remove" if cmd.get("remove") else "update"]
    if cmd.get("upsert"):
        actions.append("insert")
    key = _command_key(cmd)
    return [on_namespace(ctx.db, writable_collection(cmd, key, ctx.db), *actions)]


def _parse_find_and_modify(cmd: Document) -> tuple[bool, bool, bool]:
    """(remove, new, upsert) after MongoDB's checks of their combinations."""
    name = "findAndModify"
    remove = get_bool(cmd, name, "remove")
    new = get_bool(cmd, name, "new")
    upsert = get_bool(cmd, name, "upsert")
    has_update = cmd.get("update") is not None
    if remove and has_update:
        raise MongoError(FAILED_TO_PARSE, "Cannot specify both an update and remove=true")
    if not remove and not has_update:
        raise MongoError(FAILED_TO_PARSE, "Either an update or remove=true must be specified")
    if remove and upsert:
        raise MongoError(FAILED_TO_PARSE, "Cannot specify both upsert=true and remove=true")
    if remove and new:
        raise MongoError(
            FAILED_TO_PARSE,
            "Cannot specify both new=true and remove=true; 'remove' always returns the deleted"
            " document",
        )
    return remove, new, upsert


@command("findAndModify", privileges=_find_and_modify_privileges, aliases=("findandmodify",))
def find_and_modify(ctx: Context, cmd: Document) -> Document:
    db = ctx.db
    coll = writable_collection(cmd, _command_key(cmd), db)
    name = "findAndModify"
    query = get_document(cmd, name, "query", {}) or {}
    sort = get_document(cmd, name, "sort")
    fields = get_document(cmd, name, "fields")
    remove, new, upsert = _parse_find_and_modify(cmd)
    projection = compile_projection(fields, query)
    modifier = None if remove else Modifier(cmd["update"], parse_array_filters(cmd, name))
    compile_filter(query)

    def shown(doc: Document | None) -> Document | None:
        if doc is None or projection is None:
            return doc
        return projection.apply(doc)

    with ctx.engine.batch(db):
        found = ctx.engine.find(db, coll, query, ctx.deadline, cmd.get("hint"))
        target = _first_in_order(found, sort)
        if remove:
            if target is None:
                return {"lastErrorObject": {"n": 0}, "value": None}
            ctx.engine.delete(db, coll, target[0])
            return {"lastErrorObject": {"n": 1}, "value": shown(target[1])}
        assert modifier is not None
        if target is not None:
            rid, old = target
            new_doc, changed = modifier.apply(old, query)
            if changed:
                ctx.engine.replace(db, coll, rid, new_doc, old)
            return {
                "lastErrorObject": {"n": 1, "updatedExisting": True},
                "value": shown(new_doc if new else old),
            }
    if not upsert:
        return {"lastErrorObject": {"n": 0, "updatedExisting": False}, "value": None}
    doc = modifier.upsert_document(query)
    upsert_one(ctx, db, coll, doc)
    return {
        "lastErrorObject": {"n": 1, "updatedExisting": False, "upserted": doc["_id"]},
        "value": shown(doc) if new else None,
    }


def _first_in_order(found: Any, sort: Document | None) -> tuple[RecordId, Document] | None:
    if not sort:
        for pair in found:
            return pair  # type: ignore[no-any-return]
        return None
    pairs = list(found)
    by_rid = {id(doc): rid for rid, doc in pairs}
    ordered = sort_documents(iter(doc for _, doc in pairs), sort, 1)
    first = next(ordered, None)
    return None if first is None else (by_rid[id(first)], first)

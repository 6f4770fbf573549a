"""Index commands: createIndexes, listIndexes and dropIndexes, with the `createIndex`
and `dropIndex` audit events."""

from __future__ import annotations

from typing import Any

from phidb.commands.collections import ensure_collection
from phidb.commands.context import Context
from phidb.commands.crud_read import open_cursor
from phidb.commands.namespaces import (
    Document,
    bson_type_name,
    collection_argument,
    get_document,
    get_int,
    is_number,
    require,
    wrong_type,
)
from phidb.commands.registry import command
from phidb.errors import (
    BAD_VALUE,
    CANNOT_CREATE_INDEX,
    INDEX_NOT_FOUND,
    INVALID_OPTIONS,
    NAMESPACE_NOT_FOUND,
    MongoError,
)
from phidb.security.audit.events import index_param
from phidb.security.authz.privileges import Privilege, on_namespace

INVALID_INDEX_SPECIFICATION_OPTION = 197

# Options passed to the engine, which enforces them.
ENFORCED_OPTIONS = ("unique", "sparse")
# Options accepted for compatibility that change nothing here.
# Limitation: `expireAfterSeconds` is stored but no TTL monitor deletes expired
# documents; `hidden` indexes are still used by the planner.
STORED_OPTIONS = ("expireAfterSeconds", "hidden")
IGNORED_OPTIONS = ("v", "background", "ns", "dropDups")
# Limitation: partial, collated, wildcard, text, geospatial and hashed indexes are
# refused (CannotCreateIndex) rather than built with different semantics.
REFUSED_OPTIONS = (
    "partialFilterExpression", "collation", "wildcardProjection", "weights",
    "default_language", "language_override", "textIndexVersion", "2dsphereIndexVersion",
    "bits", "min", "max", "bucketSize", "storageEngine", "clustered", "prepareUnique",
)  # fmt: skip
SPECIAL_KEY_TYPES = ("text", "2d", "2dsphere", "geoHaystack", "hashed")
# MongoDB's per-collection limit, counting the _id index.
MAX_INDEXES = 64
MAX_TTL_SECONDS = 2**31 - 1


def _name(cmd: Document, field: str) -> str:
    value = cmd.get(field)
    return value if isinstance(value, str) else ""


def default_index_name(key: Document) -> str:
    """MongoDB's generated name: `field_direction` joined by `_` (`a_1_b_-1`)."""
    parts = []
    for field, direction in key.items():
        if isinstance(direction, float) and direction.is_integer():
            direction = int(direction)
        parts.append(f"{field}_{direction}")
    return "_".join(parts)


def _check_key(key: Any, spec: Document) -> Document:
    if not isinstance(key, dict):
        raise wrong_type("createIndexes", "indexes.key", key, "object")
    if not key:
        raise MongoError(CANNOT_CREATE_INDEX, "Index keys cannot be empty.")
    for field, direction in key.items():
        if not field or field.startswith("$") or ".$" in field or field.endswith("."):
            raise MongoError(
                CANNOT_CREATE_INDEX, f"Index key contains an illegal field name: '{field}'"
            )
        if is_number(direction):
            if float(str(direction)) == 0.0:
                raise MongoError(
                    CANNOT_CREATE_INDEX,
                    f"Error in specification {spec} :: caused by :: Values in the index key"
                    " pattern can't be 0",
                )
        elif isinstance(direction, str):
            if direction in SPECIAL_KEY_TYPES:
                raise MongoError(
                    CANNOT_CREATE_INDEX, f"phidb does not support '{direction}' indexes"
                )
            raise MongoError(CANNOT_CREATE_INDEX, f"Unknown index plugin '{direction}'")
        else:
            raise MongoError(
                CANNOT_CREATE_INDEX,
                f"Error in specification {spec} :: caused by :: Values in v:2 index key"
                " pattern cannot be of this type. Only numbers > 0, numbers < 0, and strings"
                " are allowed.",
            )
    return key


def render_key(key: Document) -> str:
    """A key pattern as MongoDB prints one in messages: `{ a: 1, b: -1 }`."""
    return "{ " + ", ".join(f"{field}: {direction}" for field, direction in key.items()) + " }"


def _check_ttl(value: Any) -> None:
    """CannotCreateIndex (67) for an expireAfterSeconds that is not a number of
    seconds from 0 to 2^31-1: a TTL monitor would misread it."""
    if not is_number(value):
        raise MongoError(
            CANNOT_CREATE_INDEX,
            "TTL index 'expireAfterSeconds' option must be numeric, but received a type of"
            f" '{bson_type_name(value)}'",
        )
    seconds = float(str(value))
    if seconds != seconds or seconds < 0:
        raise MongoError(
            CANNOT_CREATE_INDEX, "TTL index 'expireAfterSeconds' option cannot be less than 0"
        )
    if seconds > MAX_TTL_SECONDS:
        raise MongoError(
            CANNOT_CREATE_INDEX,
            "TTL index 'expireAfterSeconds' option must be within an acceptable range,"
            " try a lower number",
        )


def parse_index_spec(spec: Any) -> Document:
    """The engine's `{key, name, unique?, sparse?, ...}` for one entry of `indexes`."""
    if not isinstance(spec, dict):
        raise wrong_type("createIndexes", "indexes", spec, "object")
    key = _check_key(require(spec, "createIndexes.indexes", "key"), spec)
    name = spec.get("name", default_index_name(key))
    if not isinstance(name, str):
        raise wrong_type("createIndexes", "indexes.name", name, "string")
    if not name or name == "*":
        raise MongoError(CANNOT_CREATE_INDEX, f"The index name '{name}' is not valid")
    parsed: Document = {"v": 2, "key": key, "name": name}
    for option, value in spec.items():
        if option in ("key", "name") or option in IGNORED_OPTIONS:
            continue
        if option in REFUSED_OPTIONS:
            raise MongoError(
                CANNOT_CREATE_INDEX, f"phidb does not support the index option '{option}'"
            )
        if option not in ENFORCED_OPTIONS and option not in STORED_OPTIONS:
            raise MongoError(
                INVALID_INDEX_SPECIFICATION_OPTION,
                f"The field '{option}' is not valid for an index specification. Specification:"
                f' {{ key: {key}, name: "{name}" }}',
            )
        if option == "expireAfterSeconds":
            _check_ttl(value)
        if option in ENFORCED_OPTIONS and not isinstance(value, bool) and not is_number(value):
            raise wrong_type("createIndexes", f"indexes.{option}", value, "bool")
        parsed[option] = bool(value) if option in ENFORCED_OPTIONS else value
    if name == "_id_" and key != {"_id": 1}:
        raise MongoError(BAD_VALUE, "The index name '_id_' is reserved for the _id index")
    for flag in ENFORCED_OPTIONS:
        if parsed.get(flag) is False:
            del parsed[flag]
    return parsed


def _create_indexes_privileges(ctx: Context, cmd: Document) -> list[Privilege]:
    return [on_namespace(ctx.db, _name(cmd, "createIndexes"), "createIndex")]


@command("createIndexes", privileges=_create_indexes_privileges)
def create_indexes(ctx: Context, cmd: Document) -> Document:
    coll = collection_argument(cmd, "createIndexes", ctx.db)
    entries = require(cmd, "createIndexes", "indexes")
    if not isinstance(entries, list):
        raise wrong_type("createIndexes", "indexes", entries, "array")
    if not entries:
        raise MongoError(BAD_VALUE, "Must specify at least one index to create")
    specs = [parse_index_spec(entry) for entry in entries]

    created_collection = ensure_collection(ctx, ctx.db, coll)
    existing = {ix["name"] for ix in ctx.engine.list_indexes(ctx.db, coll) or []}
    _check_index_count(ctx.db, coll, existing, specs)
    before, after = ctx.engine.create_indexes(ctx.db, coll, specs)
    ns = f"{ctx.db}.{coll}"
    for spec in specs:
        if spec["name"] not in existing:
            existing.add(spec["name"])
            ctx.audit("createIndex", index_param(ns, spec["name"], spec))
    reply: Document = {
        "numIndexesBefore": before,
        "numIndexesAfter": after,
        "createdCollectionAutomatically": created_collection,
    }
    if before == after:
        reply["note"] = "all indexes already exist"
    return reply


def _check_index_count(db: str, coll: str, existing: set[str], specs: list[Document]) -> None:
    """CannotCreateIndex (67) when the new indexes would pass MAX_INDEXES."""
    names = set(existing) | {"_id_"}
    for spec in specs:
        if spec["name"] in names:
            continue
        if len(names) >= MAX_INDEXES:
            raise MongoError(
                CANNOT_CREATE_INDEX,
                f"add index fails, too many indexes for {db}.{coll} key:{render_key(spec['key'])}",
            )
        names.add(spec["name"])


def _list_indexes_privileges(ctx: Context, cmd: Document) -> list[Privilege]:
    return [on_namespace(ctx.db, _name(cmd, "listIndexes"), "listIndexes")]


@command("listIndexes", privileges=_list_indexes_privileges)
def list_indexes(ctx: Context, cmd: Document) -> Document:
    coll = collection_argument(cmd, "listIndexes", ctx.db)
    cursor_opts = get_document(cmd, "listIndexes", "cursor", {}) or {}
    batch_size = get_int(cursor_opts, "listIndexes", "batchSize", minimum=0)
    indexes = ctx.engine.list_indexes(ctx.db, coll)
    if indexes is None:
        raise MongoError(NAMESPACE_NOT_FOUND, f"ns does not exist: {ctx.db}.{coll}")
    return open_cursor(ctx, f"{ctx.db}.$cmd.listIndexes.{coll}", iter(indexes), batch_size)


def _drop_indexes_privileges(ctx: Context, cmd: Document) -> list[Privilege]:
    return [on_namespace(ctx.db, _name(cmd, "dropIndexes"), "dropIndex")]


def _indexes_to_drop(target: Any, indexes: list[Document]) -> list[str]:
    names = [ix["name"] for ix in indexes]
    if target == "*":
        return [n for n in names if n != "_id_"]
    if isinstance(target, str):
        wanted = [target]
    elif isinstance(target, dict):
        matching = [ix["name"] for ix in indexes if list(ix["key"].items()) == list(target.items())]
        if not matching:
            raise MongoError(INDEX_NOT_FOUND, f"can't find index with key: {target}")
        wanted = matching[:1]
    elif isinstance(target, list) and all(isinstance(t, str) for t in target):
        wanted = list(target)
    else:
        raise wrong_type("dropIndexes", "index", target, "[string, object, array]")
    for name in wanted:
        if name == "_id_":
            raise MongoError(INVALID_OPTIONS, "cannot drop _id index")
        if name == "*" and len(wanted) > 1:
            raise MongoError(BAD_VALUE, "'*' cannot be combined with other index names")
        if name not in names:
            raise MongoError(INDEX_NOT_FOUND, f"index not found with name [{name}]")
    return wanted


@command("dropIndexes", privileges=_drop_indexes_privileges)
def drop_indexes(ctx: Context, cmd: Document) -> Document:
    coll = collection_argument(cmd, "dropIndexes", ctx.db)
    target = require(cmd, "dropIndexes", "index")
    indexes = ctx.engine.list_indexes(ctx.db, coll)
    if indexes is None:
        raise MongoError(NAMESPACE_NOT_FOUND, f"ns not found {ctx.db}.{coll}")
    doomed = _indexes_to_drop(target, indexes)
    ns = f"{ctx.db}.{coll}"
    specs = {ix["name"]: ix for ix in indexes}
    for name in doomed:
        ctx.engine.drop_index(ctx.db, coll, name)
        ctx.audit("dropIndex", index_param(ns, name, specs[name]))
    reply: Document = {"nIndexesWas": len(indexes)}
    if target == "*":
        reply["msg"] = "non-_id indexes dropped for collection"
    return reply

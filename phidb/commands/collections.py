"""Database and collection commands: create, drop, dropDatabase, renameCollection,
listDatabases, listCollections, collStats and dbStats, with their audit events."""

from __future__ import annotations

import shutil
from typing import Any

from phidb.commands.context import Context
from phidb.commands.crud_read import open_cursor
from phidb.commands.namespaces import (
    VALUE_OUT_OF_RANGE,
    Document,
    collection_argument,
    get_bool,
    get_document,
    get_int,
    require,
    split_namespace,
)
from phidb.commands.registry import command
from phidb.errors import (
    BAD_VALUE,
    ILLEGAL_OPERATION,
    INVALID_NAMESPACE,
    NAMESPACE_EXISTS,
    MongoError,
)
from phidb.query.filter import compile_filter
from phidb.security.audit.events import ns_param, rename_param
from phidb.security.authz.privileges import Privilege, on_cluster, on_database, on_namespace

ID_INDEX: Document = {"v": 2, "key": {"_id": 1}, "name": "_id_"}

# Options `create` accepts and stores in the collection's catalog entry.
# Limitation: they are stored and reported by listCollections but not enforced:
# a capped collection never rolls over, a validator never rejects a document,
# and views, time series and clustered collections are refused outright.
STORED_CREATE_OPTIONS = (
    "capped", "size", "max", "validator", "validationLevel", "validationAction",
    "storageEngine", "indexOptionDefaults", "collation", "changeStreamPreAndPostImages",
    "expireAfterSeconds", "encryptedFields",
)  # fmt: skip
REFUSED_CREATE_OPTIONS = ("viewOn", "pipeline", "timeseries", "clusteredIndex")
IGNORED_CREATE_FIELDS = ("autoIndexId", "flags", "idIndex", "temp", "recordPreImages")


def _name(cmd: Document, field: str) -> str:
    value = cmd.get(field)
    return value if isinstance(value, str) else ""


def database_exists(ctx: Context, db: str) -> bool:
    return db in ctx.engine.list_databases()


def collection_exists(ctx: Context, db: str, name: str) -> bool:
    return ctx.engine.list_indexes(db, name) is not None


def ensure_collection(ctx: Context, db: str, name: str) -> bool:
    """Create `db.name` if missing (a first write creates it implicitly), auditing
    `createDatabase` and `createCollection`. True when this call created it."""
    if collection_exists(ctx, db, name):
        return False
    create_collection(ctx, db, name, {}, exists_ok=True)
    return collection_exists(ctx, db, name)


def create_collection(
    ctx: Context, db: str, name: str, options: Document, exists_ok: bool = False
) -> None:
    new_database = not database_exists(ctx, db)
    try:
        ctx.engine.create_collection(db, name, options)
    except MongoError as exc:
        # Another connection's write may create the collection first; it audits it.
        if exc.code == NAMESPACE_EXISTS and exists_ok:
            return
        raise
    if new_database:
        ctx.audit("createDatabase", ns_param(db))
    ctx.audit("createCollection", ns_param(f"{db}.{name}"))


# -- create / drop --------------------------------------------------------------


def _create_privileges(ctx: Context, cmd: Document) -> list[Privilege]:
    return [on_namespace(ctx.db, _name(cmd, "create"), "createCollection")]


MAX_CAPPED_SIZE = 2**50
MAX_CAPPED_DOCS = 2**31 - 1


def _at_most(field: str, value: int | None, limit: int) -> None:
    if value is not None and value > limit:
        raise MongoError(
            VALUE_OUT_OF_RANGE,
            f"BSON field '{field}' value must be <= {limit}, actual value '{value}'",
        )


def parse_create_options(cmd: Document) -> Document:
    for option in REFUSED_CREATE_OPTIONS:
        if option in cmd:
            raise MongoError(
                BAD_VALUE, f"the '{option}' option of create is not supported by phidb"
            )
    options: Document = {}
    for option in STORED_CREATE_OPTIONS:
        if option in cmd:
            options[option] = cmd[option]
    # MongoDB's create parser bounds size to [1, 1 PiB] and max below 2^31 whether
    # or not the collection is capped; a negative max is refused here too.
    size = get_int(cmd, "create", "size", minimum=1)
    _at_most("size", size, MAX_CAPPED_SIZE)
    _at_most("max", get_int(cmd, "create", "max", minimum=0), MAX_CAPPED_DOCS)
    if get_bool(cmd, "create", "capped"):
        if size is None:
            raise MongoError(BAD_VALUE, "the 'size' field is required when 'capped' is true")
        options["capped"] = True
    elif "capped" in options:
        options.pop("capped")
    get_document(cmd, "create", "validator")
    return options


@command("create", privileges=_create_privileges)
def create(ctx: Context, cmd: Document) -> Document:
    name = collection_argument(cmd, "create", ctx.db)
    options = parse_create_options(cmd)
    if collection_exists(ctx, ctx.db, name):
        existing = next((c for c in ctx.engine.list_collections(ctx.db) if c.name == name), None)
        # An identical repeat of create succeeds, as in MongoDB.
        if existing is not None and existing.options == options:
            return {}
        raise MongoError(NAMESPACE_EXISTS, f"Collection {ctx.db}.{name} already exists.")
    create_collection(ctx, ctx.db, name, options)
    return {}


def _drop_privileges(ctx: Context, cmd: Document) -> list[Privilege]:
    return [on_namespace(ctx.db, _name(cmd, "drop"), "dropCollection")]


@command("drop", privileges=_drop_privileges)
def drop(ctx: Context, cmd: Document) -> Document:
    name = collection_argument(cmd, "drop", ctx.db)
    indexes = ctx.engine.list_indexes(ctx.db, name)
    # MongoDB 7.0 answers ok for a collection that does not exist.
    if indexes is None:
        return {}
    ns = f"{ctx.db}.{name}"
    if not ctx.engine.drop_collection(ctx.db, name):
        return {}
    ctx.server.cursors.close_namespace(ns)
    ctx.audit("dropCollection", ns_param(ns))
    return {"nIndexesWas": len(indexes), "ns": ns}


def _drop_database_privileges(ctx: Context, cmd: Document) -> list[Privilege]:
    return [on_database(ctx.db, "dropDatabase")]


@command("dropDatabase", privileges=_drop_database_privileges)
def drop_database(ctx: Context, cmd: Document) -> Document:
    # Limitation: unlike MongoDB, the admin database cannot be dropped: it holds
    # phidb's users and roles, and losing them would lock every operator out.
    if ctx.db == "admin":
        raise MongoError(ILLEGAL_OPERATION, "Dropping the 'admin' database is prohibited.")
    collections = [c.name for c in ctx.engine.list_collections(ctx.db)]
    if not ctx.engine.drop_database(ctx.db):
        return {}
    ctx.server.cursors.close_namespace(f"{ctx.db}.")
    for name in collections:
        ctx.audit("dropCollection", ns_param(f"{ctx.db}.{name}"))
    ctx.audit("dropDatabase", ns_param(ctx.db))
    return {"dropped": ctx.db}


# -- renameCollection -------------------------------------------------------------


def _rename_namespace(value: Any, which: str) -> tuple[str, str]:
    try:
        return split_namespace(value, "renameCollection", which)
    except MongoError as exc:
        if exc.code != INVALID_NAMESPACE:
            raise
        side = "source" if which == "renameCollection" else "target"
        raise MongoError(INVALID_NAMESPACE, f"Invalid {side} namespace: {value}") from None


def _rename_namespaces(cmd: Document) -> tuple[str, str, str, str]:
    """(source db, source collection, target db, target collection), validated."""
    src_db, src = _rename_namespace(cmd.get("renameCollection"), "renameCollection")
    dst_db, dst = _rename_namespace(require(cmd, "renameCollection", "to"), "to")
    if src.startswith("system.") or dst.startswith("system."):
        raise MongoError(INVALID_NAMESPACE, "renaming system collections is not allowed")
    return src_db, src, dst_db, dst


def _rename_privileges(ctx: Context, cmd: Document) -> list[Privilege]:
    # A malformed namespace is reported as such before privileges are checked.
    src_db, src, dst_db, dst = _rename_namespaces(cmd)
    if src_db == dst_db:
        needed = [on_database(src_db, "renameCollectionSameDB")]
    else:
        needed = [
            on_namespace(src_db, src, "find", "dropCollection"),
            on_namespace(dst_db, dst, "insert", "createIndex"),
        ]
    if get_bool(cmd, "renameCollection", "dropTarget"):
        needed.append(on_namespace(dst_db, dst, "dropCollection"))
    return needed


@command("renameCollection", privileges=_rename_privileges, admin_only=True)
def rename_collection(ctx: Context, cmd: Document) -> Document:
    src_db, src, dst_db, dst = _rename_namespaces(cmd)
    drop_target = get_bool(cmd, "renameCollection", "dropTarget")
    if (src_db, src) == (dst_db, dst):
        raise MongoError(ILLEGAL_OPERATION, "Can't rename a collection to itself")
    target_existed = collection_exists(ctx, dst_db, dst)
    new_database = not database_exists(ctx, dst_db)
    ctx.engine.rename_collection(src_db, src, dst_db, dst, drop_target)
    ctx.server.cursors.close_namespace(f"{src_db}.{src}")
    ctx.server.cursors.close_namespace(f"{dst_db}.{dst}")
    if new_database:
        ctx.audit("createDatabase", ns_param(dst_db))
    if target_existed:
        ctx.audit("dropCollection", ns_param(f"{dst_db}.{dst}"))
    ctx.audit("renameCollection", rename_param(f"{src_db}.{src}", f"{dst_db}.{dst}"))
    return {}


# -- listDatabases / listCollections ----------------------------------------------


def _list_databases_privileges(ctx: Context, cmd: Document) -> list[Privilege]:
    # Limitation: `authorizedDatabases` still needs the listDatabases action;
    # MongoDB would instead list just the databases the user has a privilege on.
    return [on_cluster("listDatabases")]


@command("listDatabases", privileges=_list_databases_privileges, admin_only=True)
def list_databases(ctx: Context, cmd: Document) -> Document:
    name_only = get_bool(cmd, "listDatabases", "nameOnly")
    spec = get_document(cmd, "listDatabases", "filter")
    matcher = compile_filter(spec) if spec else None
    get_bool(cmd, "listDatabases", "authorizedDatabases")

    entries: list[Document] = []
    total = 0
    for name in sorted(ctx.engine.list_databases()):
        if name_only:
            entry: Document = {"name": name}
        else:
            stats = ctx.engine.database_stats(name)
            entry = {"name": name, "sizeOnDisk": stats.size_on_disk, "empty": stats.objects == 0}
        if matcher is not None and not matcher(entry):
            continue
        total += entry.get("sizeOnDisk", 0)
        entries.append(entry)
    if name_only:
        return {"databases": entries}
    return {"databases": entries, "totalSize": total, "totalSizeMb": total // (1024 * 1024)}


def _list_collections_privileges(ctx: Context, cmd: Document) -> list[Privilege]:
    return [on_database(ctx.db, "listCollections")]


@command("listCollections", privileges=_list_collections_privileges)
def list_collections(ctx: Context, cmd: Document) -> Document:
    name_only = get_bool(cmd, "listCollections", "nameOnly")
    spec = get_document(cmd, "listCollections", "filter")
    matcher = compile_filter(spec) if spec else None
    get_bool(cmd, "listCollections", "authorizedCollections")
    cursor_opts = get_document(cmd, "listCollections", "cursor", {}) or {}
    batch_size = get_int(cursor_opts, "listCollections", "batchSize", minimum=0)

    entries: list[Document] = []
    for info in sorted(ctx.engine.list_collections(ctx.db), key=lambda c: c.name):
        entry: Document = {"name": info.name, "type": "collection"}
        if not name_only:
            entry["options"] = dict(info.options)
            entry["info"] = {"readOnly": False, "uuid": info.uuid, **info.info}
            entry["idIndex"] = dict(ID_INDEX)
        if matcher is None or matcher(entry):
            entries.append(entry)
    return open_cursor(ctx, f"{ctx.db}.$cmd.listCollections", iter(entries), batch_size)


# -- collStats / dbStats ----------------------------------------------------------


def stats_scale(cmd: Document, command_name: str) -> int:
    scale = get_int(cmd, command_name, "scale")
    if scale is None:
        return 1
    if scale < 1:
        raise MongoError(BAD_VALUE, "scale has to be >= 1")
    return scale


def _coll_stats_privileges(ctx: Context, cmd: Document) -> list[Privilege]:
    return [on_namespace(ctx.db, _name(cmd, "collStats"), "collStats")]


@command("collStats", privileges=_coll_stats_privileges)
def coll_stats(ctx: Context, cmd: Document) -> Document:
    name = collection_argument(cmd, "collStats", ctx.db)
    scale = stats_scale(cmd, "collStats")
    stats = storage_stats(ctx, ctx.db, name, scale)
    ns = f"{ctx.db}.{name}"
    if stats is None:
        return {
            "ns": ns, "size": 0, "count": 0, "storageSize": 0, "totalIndexSize": 0,
            "totalSize": 0, "indexSizes": {}, "scaleFactor": scale, "nindexes": 0,
        }  # fmt: skip
    return {"ns": ns, **stats}


def storage_stats(ctx: Context, db: str, name: str, scale: int) -> Document | None:
    """collStats' figures (also `$collStats.storageStats`), sizes divided by `scale`;
    None when the collection does not exist."""
    stats = ctx.engine.collection_stats(db, name)
    if stats is None:
        return None
    index_total = sum(stats.index_sizes.values())
    return {
        "size": stats.size // scale,
        "count": stats.count,
        "avgObjSize": stats.size // stats.count if stats.count else 0,
        "storageSize": stats.storage_size // scale,
        "freeStorageSize": 0,
        "capped": False,
        "nindexes": len(stats.index_sizes),
        "indexBuilds": [],
        "totalIndexSize": index_total // scale,
        "totalSize": (stats.storage_size + index_total) // scale,
        "indexSizes": {k: v // scale for k, v in stats.index_sizes.items()},
        "scaleFactor": scale,
    }


def _db_stats_privileges(ctx: Context, cmd: Document) -> list[Privilege]:
    return [on_database(ctx.db, "dbStats")]


def _filesystem_usage(path: str) -> tuple[int, int] | None:
    try:
        usage = shutil.disk_usage(path)
    except OSError:
        return None
    return usage.used, usage.total


@command("dbStats", privileges=_db_stats_privileges)
def db_stats(ctx: Context, cmd: Document) -> Document:
    scale = stats_scale(cmd, "dbStats")
    stats = ctx.engine.database_stats(ctx.db)
    reply: dict[str, Any] = {
        "db": ctx.db,
        "collections": stats.collections,
        "views": 0,
        "objects": stats.objects,
        "avgObjSize": stats.data_size / stats.objects if stats.objects else 0,
        "dataSize": stats.data_size / scale,
        "storageSize": stats.storage_size / scale,
        "indexes": stats.indexes,
        "indexSize": stats.index_size / scale,
        "totalSize": (stats.storage_size + stats.index_size) / scale,
        "scaleFactor": scale,
    }
    usage = _filesystem_usage(ctx.server.config.dbpath)
    if usage is not None:
        reply["fsUsedSize"] = usage[0] / scale
        reply["fsTotalSize"] = usage[1] / scale
    return reply

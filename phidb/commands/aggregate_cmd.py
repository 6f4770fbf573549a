"""The aggregate command: a leading `$match` goes to the engine (so indexes serve it),
the rest of the pipeline runs in `phidb.query.aggregate`; `$out` is written and a
leading `$collStats` answered here."""

from __future__ import annotations

import datetime
import socket
from collections.abc import Iterator
from typing import Any

from phidb.commands.collections import create_collection, stats_scale, storage_stats
from phidb.commands.context import Context
from phidb.commands.crud_read import open_cursor, request_deadline
from phidb.commands.namespaces import (
    UNKNOWN_FIELD,
    Document,
    get_bool,
    get_document,
    get_int,
    is_number,
    validate_collection_name,
    wrong_type,
)
from phidb.commands.registry import command
from phidb.errors import (
    FAILED_TO_PARSE,
    INVALID_NAMESPACE,
    NAMESPACE_NOT_FOUND,
    NOT_IMPLEMENTED,
    TYPE_MISMATCH,
    MongoError,
)
from phidb.query.aggregate import run_pipeline, split_leading_match
from phidb.query.filter import compile_filter
from phidb.security.authz.privileges import Privilege, on_cluster, on_database, on_namespace
from phidb.storage.engine import Deadline

# Stages that name another collection of the same database to read from.
_READS_OTHER = {"$lookup": "from", "$graphLookup": "from", "$unionWith": "coll"}


def aggregate_target(cmd: Document) -> str | None:
    """The collection name, or None for a collection-less `aggregate: 1`."""
    value = cmd.get("aggregate")
    if isinstance(value, str):
        return value
    if is_number(value) and float(str(value)) == 1.0:
        return None
    raise MongoError(
        FAILED_TO_PARSE,
        "Invalid command format: the 'aggregate' field must specify a collection name or 1",
    )


def parse_pipeline(cmd: Document) -> list[Document]:
    pipeline = cmd.get("pipeline")
    if not isinstance(pipeline, list):
        raise MongoError(TYPE_MISMATCH, "'pipeline' option must be specified as an array")
    for stage in pipeline:
        if not isinstance(stage, dict) or len(stage) != 1:
            raise MongoError(
                40323, "A pipeline stage specification object must contain exactly one field."
            )
    return pipeline


def nested_collections(pipeline: list[Any]) -> list[str]:
    """Every other collection the pipeline reads: `$lookup`/`$graphLookup` `from`,
    `$unionWith`, inside `$facet` and sub-pipelines too."""
    found: list[str] = []
    for stage in pipeline:
        if not isinstance(stage, dict) or len(stage) != 1:
            continue
        name, spec = next(iter(stage.items()))
        if name in _READS_OTHER:
            if isinstance(spec, str):
                found.append(spec)
            elif isinstance(spec, dict):
                source = spec.get(_READS_OTHER[name])
                if isinstance(source, str):
                    found.append(source)
                sub = spec.get("pipeline")
                if isinstance(sub, list):
                    found.extend(nested_collections(sub))
        elif name == "$facet" and isinstance(spec, dict):
            for sub in spec.values():
                if isinstance(sub, list):
                    found.extend(nested_collections(sub))
    return found


def out_target(pipeline: list[Any], db: str) -> str | None:
    """The collection a final `$out` writes.

    Limitation: `$out` writes only to the aggregate's own database; `{db: <other>}`
    is refused (NotImplemented) rather than written to the wrong place.
    """
    if not pipeline or not isinstance(pipeline[-1], dict) or "$out" not in pipeline[-1]:
        return None
    spec = pipeline[-1]["$out"]
    if isinstance(spec, dict):
        target_db = spec.get("db", db)
        if target_db != db:
            raise MongoError(NOT_IMPLEMENTED, "$out to another database is not supported by phidb")
        spec = spec.get("coll")
    if not isinstance(spec, str):
        raise MongoError(
            FAILED_TO_PARSE, "$out supports only a collection name of this database in phidb"
        )
    return spec


def _aggregate_privileges(ctx: Context, cmd: Document) -> list[Privilege]:
    pipeline = cmd.get("pipeline")
    stages = pipeline if isinstance(pipeline, list) else []
    try:
        coll = aggregate_target(cmd)
    except MongoError:
        coll = ""
    first = next(iter(stages[0]), "") if stages and isinstance(stages[0], dict) else ""
    needed: list[Privilege] = []
    if first == "$collStats" and coll:
        needed.append(on_namespace(ctx.db, coll, "collStats"))
    elif coll is None:
        if first == "$currentOp":
            needed.append(on_cluster("inprog"))
        else:
            needed.append(on_database(ctx.db, "find"))
    else:
        needed.append(on_namespace(ctx.db, coll, "find"))
    needed.extend(on_namespace(ctx.db, other, "find") for other in nested_collections(stages))
    # A `$out` this server cannot run is refused as such, not as a missing privilege.
    target = out_target(stages, ctx.db)
    if target is not None:
        needed.append(on_namespace(ctx.db, target, "insert", "remove", "createCollection"))
    return needed


def coll_stats_document(ctx: Context, db: str, coll: str, spec: Any) -> Document:
    """The one document `$collStats` produces: `storageStats` and `count` when asked.

    Limitation: `latencyStats` and `queryExecStats` are refused; phidb keeps neither.
    """
    if not isinstance(spec, dict):
        raise MongoError(5447000, "$collStats must take a nested object but found: " + str(spec))
    for option in spec:
        if option not in ("storageStats", "count"):
            raise MongoError(
                UNKNOWN_FIELD
                if option not in ("latencyStats", "queryExecStats")
                else NOT_IMPLEMENTED,
                f"BSON field '$collStats.{option}' is not supported by phidb",
            )
    ns = f"{db}.{coll}"
    out: Document = {
        "ns": ns,
        "host": f"{socket.gethostname()}:{ctx.server.config.port}",
        "localTime": datetime.datetime.now(datetime.UTC),
    }
    if "storageStats" in spec:
        options = get_document(spec, "$collStats", "storageStats", {}) or {}
        stats = storage_stats(ctx, db, coll, stats_scale(options, "$collStats.storageStats"))
        if stats is None:
            raise MongoError(
                NAMESPACE_NOT_FOUND,
                "Unable to retrieve storageStats in $collStats stage :: caused by ::"
                f" Collection [{ns}] not found.",
            )
        out["storageStats"] = stats
    if "count" in spec:
        get_document(spec, "$collStats", "count")
        found = ctx.engine.collection_stats(db, coll)
        if found is None:
            raise MongoError(
                NAMESPACE_NOT_FOUND,
                f"Unable to retrieve count in $collStats stage :: caused by :: Collection [{ns}]"
                " not found.",
            )
        out["count"] = found.count
    return out


def pipeline_source(
    ctx: Context, db: str, coll: str | None, pipeline: list[Document], deadline: Deadline
) -> tuple[Iterator[Document], list[Document]]:
    """The documents that enter the pipeline and the stages still to run: a leading
    `$match` becomes the engine's filter."""
    if coll is None:
        return documents_stage(pipeline)
    match, rest = split_leading_match(pipeline)
    match = match or {}
    compile_filter(match)
    found = ctx.engine.find(db, coll, match, deadline)
    return (doc for _, doc in found), rest


def documents_stage(pipeline: list[Document]) -> tuple[Iterator[Document], list[Document]]:
    """A collection-less pipeline's source: the documents of a leading `$documents`.

    Limitation: `$documents` takes a literal array of documents; an expression that
    computes the array is refused.
    """
    if not pipeline or "$documents" not in pipeline[0]:
        return iter(()), pipeline
    docs = pipeline[0]["$documents"]
    if not isinstance(docs, list) or not all(isinstance(d, dict) for d in docs):
        raise MongoError(5858203, "an array is expected as the argument of $documents")
    return iter([dict(d) for d in docs]), pipeline[1:]


def run_aggregate(
    ctx: Context, db: str, coll: str | None, pipeline: list[Document], deadline: Deadline
) -> Iterator[Document]:
    source, rest = pipeline_source(ctx, db, coll, pipeline, deadline)
    return run_stages(ctx, db, rest, source, deadline)


def run_stages(
    ctx: Context, db: str, stages: list[Document], source: Iterator[Document], deadline: Deadline
) -> Iterator[Document]:
    """`stages` over `source`; `$lookup` and its kin read collections of `db`."""

    def lookup(other: str) -> Iterator[Document]:
        validate_collection_name(db, other)
        return (doc for _, doc in ctx.engine.find(db, other, {}, deadline))

    return iter(run_pipeline(stages, source, lookup=lookup, deadline=deadline))


def write_out(ctx: Context, db: str, target: str, docs: Iterator[Document]) -> None:
    """`$out`: replace the target collection's documents with the pipeline's output.

    Limitation: the old documents are removed and the new ones inserted in one engine
    batch, not by an atomic collection swap; the target's indexes are kept.
    """
    if target.startswith("system.") or "$" in target:
        raise MongoError(INVALID_NAMESPACE, f"Invalid $out target namespace, {db}.{target}")
    output = list(docs)
    if ctx.engine.list_indexes(db, target) is None:
        create_collection(ctx, db, target, {}, exists_ok=True)
    with ctx.engine.batch(db):
        for rid, _ in list(ctx.engine.find(db, target, {})):
            ctx.engine.delete(db, target, rid)
        if output:
            result = ctx.engine.insert(db, target, output, True)
            if result.errors:
                raise result.errors[0][1]


@command("aggregate", privileges=_aggregate_privileges)
def aggregate(ctx: Context, cmd: Document) -> Document:
    coll = aggregate_target(cmd)
    if coll is not None:
        validate_collection_name(ctx.db, coll)
    pipeline = parse_pipeline(cmd)
    if get_bool(cmd, "aggregate", "explain"):
        from phidb.commands.explain import explain_aggregate

        return explain_aggregate(ctx, ctx.db, cmd, "queryPlanner")
    if "cursor" not in cmd:
        raise MongoError(
            FAILED_TO_PARSE,
            "The 'cursor' option is required, except for aggregate with the explain argument",
        )
    cursor_opts = get_document(cmd, "aggregate", "cursor", {}) or {}
    batch_size = get_int(cursor_opts, "aggregate", "cursor.batchSize", minimum=0)
    get_bool(cmd, "aggregate", "allowDiskUse")
    get_bool(cmd, "aggregate", "bypassDocumentValidation")
    let = cmd.get("let")
    if let is not None and not isinstance(let, dict):
        raise wrong_type("aggregate", "let", let, "object")

    ns = f"{ctx.db}.{coll}" if coll is not None else f"{ctx.db}.$cmd.aggregate"
    first = next(iter(pipeline[0])) if pipeline else ""
    if coll is None and first == "$currentOp":
        # Limitation: phidb does not report in-progress operations; $currentOp
        # (which mongosh runs at start-up) answers with no operations.
        return open_cursor(ctx, ns, iter(()), batch_size)

    for stage in pipeline[1:]:
        if "$collStats" in stage:
            raise MongoError(40602, "$collStats is only valid as the first stage in a pipeline")
    if first == "$collStats":
        if coll is None:
            raise MongoError(
                INVALID_NAMESPACE, "$collStats must be run against a collection namespace"
            )
        source = iter([coll_stats_document(ctx, ctx.db, coll, pipeline[0]["$collStats"])])
        docs = run_stages(ctx, ctx.db, pipeline[1:], source, request_deadline(ctx))
        return open_cursor(ctx, ns, docs, batch_size)

    target = out_target(pipeline, ctx.db)
    deadline = request_deadline(ctx)
    if target is not None:
        write_out(ctx, ctx.db, target, run_aggregate(ctx, ctx.db, coll, pipeline[:-1], deadline))
        return open_cursor(ctx, ns, iter(()), batch_size)
    docs = run_aggregate(ctx, ctx.db, coll, pipeline, deadline)
    return open_cursor(ctx, ns, docs, batch_size, deadline=deadline)

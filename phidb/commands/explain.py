"""The explain command: the plan the engine would use for a find, aggregate, count,
distinct, update, delete or findAndModify, in MongoDB's `queryPlanner` shape, and with
`executionStats` when asked. Explaining a write never writes."""

from __future__ import annotations

import socket
import time
from typing import Any

from phidb.commands.aggregate_cmd import aggregate_target, parse_pipeline
from phidb.commands.context import Context
from phidb.commands.crud_read import index_ordered, parse_find, run_find
from phidb.commands.handshake import MONGODB_VERSION
from phidb.commands.namespaces import (
    Document,
    collection_argument,
    get_document,
    wrong_type,
)
from phidb.commands.registry import command, lookup
from phidb.errors import BAD_VALUE, COMMAND_NOT_FOUND, ILLEGAL_OPERATION, MongoError
from phidb.query.aggregate import split_leading_match
from phidb.query.filter import compile_filter
from phidb.security.authz.privileges import Privilege
from phidb.storage.engine import Deadline

VERBOSITIES = ("queryPlanner", "executionStats", "allPlansExecution")
EXPLAINABLE = ("find", "aggregate", "count", "distinct", "update", "delete", "findAndModify")


def _inner(cmd: Document) -> tuple[str, Document]:
    inner = cmd.get("explain")
    if not isinstance(inner, dict) or not inner:
        raise wrong_type("explain", "explain", inner, "object")
    name = next(iter(inner))
    if name == "findandmodify":
        name = "findAndModify"
        inner = {("findAndModify" if k == "findandmodify" else k): v for k, v in inner.items()}
    if lookup(name) is None:
        raise MongoError(COMMAND_NOT_FOUND, f"Explain failed due to unknown command: {name}")
    if name not in EXPLAINABLE:
        raise MongoError(ILLEGAL_OPERATION, f"Cannot explain cmd: {name}")
    return name, inner


def _explain_privileges(ctx: Context, cmd: Document) -> list[Privilege]:
    """Explaining a command needs exactly the privileges of running it; a request
    that cannot be explained is refused as invalid before privileges are checked."""
    name, inner = _inner(cmd)
    spec = lookup(name)
    return spec.privileges(ctx, inner) if spec is not None else []


def _verbosity(cmd: Document) -> str:
    verbosity = cmd.get("verbosity", "allPlansExecution")
    if verbosity not in VERBOSITIES:
        raise MongoError(
            BAD_VALUE,
            "verbosity string must be one of {'queryPlanner', 'executionStats',"
            " 'allPlansExecution'}",
        )
    return str(verbosity)


def server_info(ctx: Context) -> Document:
    return {
        "host": socket.gethostname(),
        "port": ctx.server.config.port,
        "version": MONGODB_VERSION,
        "gitVersion": "",
    }


def base_plan(ctx: Context, db: str, coll: str, filter_spec: Document, hint: Any) -> Document:
    plan = ctx.engine.plan(db, coll, filter_spec, hint)
    winning = plan.winning_plan()
    if winning.get("stage") == "COLLSCAN":
        if filter_spec:
            winning["filter"] = filter_spec
        winning["direction"] = "forward"
    elif winning.get("stage") == "FETCH" and filter_spec:
        winning["filter"] = filter_spec
    return winning


def _wrap(stage: str, inner: Document, **fields: Any) -> Document:
    return {"stage": stage, **fields, "inputStage": inner}


def _query_planner(ns: str, filter_spec: Document, winning: Document) -> Document:
    return {
        "namespace": ns,
        "indexFilterSet": False,
        "parsedQuery": filter_spec,
        "maxIndexedOrSolutionsReached": False,
        "maxIndexedAndSolutionsReached": False,
        "maxScansToExplodeReached": False,
        "winningPlan": winning,
        "rejectedPlans": [],
    }


def _execution_stats(
    ctx: Context, db: str, coll: str, winning: Document, n_returned: int, started: float
) -> Document:
    """Counts for `executionStats`.

    Limitation: the engine yields only matching documents, so examined counts are
    estimates: a collection scan examines every document, an index scan as many
    keys and documents as it returned.
    """
    uses_index = "IXSCAN" in repr(winning)
    examined = n_returned if uses_index else ctx.engine.count(db, coll)
    return {
        "executionSuccess": True,
        "nReturned": n_returned,
        "executionTimeMillis": int((time.monotonic() - started) * 1000),
        "totalKeysExamined": n_returned if uses_index else 0,
        "totalDocsExamined": examined,
        "executionStages": {**winning, "nReturned": n_returned, "docsExamined": examined},
        "allPlansExecution": [],
    }


def _reply(
    ctx: Context,
    verbosity: str,
    ns: str,
    filter_spec: Document,
    winning: Document,
    inner: Document,
    run: Any,
) -> Document:
    """The explain reply; `run()` counts the documents returned when stats are asked."""
    db, _, coll = ns.partition(".")
    reply: Document = {
        "explainVersion": "1",
        "queryPlanner": _query_planner(ns, filter_spec, winning),
    }
    if verbosity != "queryPlanner":
        started = time.monotonic()
        n_returned = run()
        stats = _execution_stats(ctx, db, coll, winning, n_returned, started)
        if verbosity == "executionStats":
            stats.pop("allPlansExecution")
        reply["executionStats"] = stats
    reply["command"] = {**inner, "$db": db}
    reply["serverInfo"] = server_info(ctx)
    return reply


def explain_find(ctx: Context, db: str, inner: Document, verbosity: str) -> Document:
    spec = parse_find(db, inner)
    winning = base_plan(ctx, db, spec.collection, spec.filter, spec.hint)
    # No SORT stage when the index already returns the documents in sort order.
    if spec.sort and index_ordered(ctx, db, spec, Deadline(None)) is None:
        winning = _wrap("SORT", winning, sortPattern=spec.sort, type="simple")
    if spec.skip:
        winning = _wrap("SKIP", winning, skipAmount=spec.skip)
    if spec.limit:
        winning = _wrap("LIMIT", winning, limitAmount=spec.limit)
    if spec.projection:
        winning = _wrap("PROJECTION_DEFAULT", winning, transformBy=spec.projection)

    def run() -> int:
        return sum(1 for _ in run_find(ctx, db, spec, Deadline(None)))

    ns = f"{db}.{spec.collection}"
    return _reply(ctx, verbosity, ns, spec.filter, winning, inner, run)


def _matching(ctx: Context, db: str, coll: str, filter_spec: Document, hint: Any) -> int:
    return sum(1 for _ in ctx.engine.find(db, coll, filter_spec, Deadline(None), hint))


def explain_count(ctx: Context, db: str, inner: Document, verbosity: str) -> Document:
    coll = collection_argument(inner, "count", db)
    query = get_document(inner, "count", "query", {}) or {}
    compile_filter(query)
    winning = _wrap("COUNT", base_plan(ctx, db, coll, query, inner.get("hint")))
    ns = f"{db}.{coll}"
    return _reply(
        ctx, verbosity, ns, query, winning, inner,
        lambda: _matching(ctx, db, coll, query, inner.get("hint")),
    )  # fmt: skip


def explain_distinct(ctx: Context, db: str, inner: Document, verbosity: str) -> Document:
    coll = collection_argument(inner, "distinct", db)
    query = get_document(inner, "distinct", "query", {}) or {}
    compile_filter(query)
    winning = _wrap("PROJECTION_DEFAULT", base_plan(ctx, db, coll, query, inner.get("hint")))
    ns = f"{db}.{coll}"
    return _reply(
        ctx, verbosity, ns, query, winning, inner,
        lambda: _matching(ctx, db, coll, query, inner.get("hint")),
    )  # fmt: skip


def explain_write(ctx: Context, db: str, name: str, inner: Document, verbosity: str) -> Document:
    """update/delete explain the first statement; findAndModify its query."""
    coll = collection_argument(inner, name, db)
    if name == "findAndModify":
        query = get_document(inner, name, "query", {}) or {}
        stage = "DELETE" if inner.get("remove") else "UPDATE"
        hint = inner.get("hint")
    else:
        field = "updates" if name == "update" else "deletes"
        statements = inner.get(field)
        if not isinstance(statements, list) or not statements:
            raise MongoError(BAD_VALUE, f"explain of {name} needs one statement in '{field}'")
        first = statements[0]
        if not isinstance(first, dict):
            raise wrong_type(name, field, first, "object")
        query = get_document(first, f"{name}.{field}", "q", {}) or {}
        stage = "UPDATE" if name == "update" else "DELETE"
        hint = first.get("hint")
    compile_filter(query)
    winning = _wrap(stage, base_plan(ctx, db, coll, query, hint))
    ns = f"{db}.{coll}"
    return _reply(
        ctx, verbosity, ns, query, winning, inner, lambda: _matching(ctx, db, coll, query, hint)
    )


def explain_aggregate(ctx: Context, db: str, inner: Document, verbosity: str) -> Document:
    """A pipeline's explain: the `$cursor` stage (the engine's part: the leading
    `$match`) with its plan, then the remaining stages as given."""
    coll = aggregate_target(inner)
    pipeline = parse_pipeline(inner)
    if coll is None:
        return {
            "explainVersion": "1",
            "stages": [
                {stage_name: spec} for stage in pipeline for stage_name, spec in stage.items()
            ],
            "command": {**inner, "$db": db},
            "serverInfo": server_info(ctx),
        }
    match, rest = split_leading_match(pipeline)
    match = match or {}
    compile_filter(match)
    ns = f"{db}.{coll}"
    winning = base_plan(ctx, db, coll, match, inner.get("hint"))
    cursor_stage: Document = {"queryPlanner": _query_planner(ns, match, winning)}
    if verbosity != "queryPlanner":
        started = time.monotonic()
        n = _matching(ctx, db, coll, match, inner.get("hint"))
        cursor_stage["executionStats"] = _execution_stats(ctx, db, coll, winning, n, started)
    return {
        "explainVersion": "1",
        "stages": [{"$cursor": cursor_stage}, *rest],
        "command": {**inner, "$db": db},
        "serverInfo": server_info(ctx),
    }


@command("explain", privileges=_explain_privileges)
def explain(ctx: Context, cmd: Document) -> Document:
    name, inner = _inner(cmd)
    verbosity = _verbosity(cmd)
    # The inner command's own `$db` is ignored: explain runs in the outer database.
    inner = {k: v for k, v in inner.items() if k != "$db"}
    if name == "find":
        return explain_find(ctx, ctx.db, inner, verbosity)
    if name == "aggregate":
        return explain_aggregate(ctx, ctx.db, inner, verbosity)
    if name == "count":
        return explain_count(ctx, ctx.db, inner, verbosity)
    if name == "distinct":
        return explain_distinct(ctx, ctx.db, inner, verbosity)
    return explain_write(ctx, ctx.db, name, inner, verbosity)

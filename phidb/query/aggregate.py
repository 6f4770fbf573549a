"""Aggregation pipelines: `run_pipeline(pipeline, source, lookup=...)` streams documents through
the stages; `split_leading_match` lets the command layer push a leading `$match` into an
indexed find.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from bson.int64 import Int64

from phidb.errors import MongoError
from phidb.query import accumulators, limits, numbers
from phidb.query.expressions import MISSING, Scope, evaluate_in, type_name
from phidb.query.filter import Deadline, compile_filter
from phidb.query.order import sort_key
from phidb.query.paths import MISSING as PATH_MISSING
from phidb.query.paths import lookup as path_lookup
from phidb.query.reshape import AddFields, Projection, exclude, set_computed, unset_paths
from phidb.query.sort import compile_sort
from phidb.query.update_paths import copy_value

Document = dict[str, Any]
Lookup = Callable[[str], Iterable[Document]]
Stage = Callable[[Iterator[Document]], Iterator[Document]]

CHECK_EVERY = 256

# Stages that write a pipeline's output: MongoDB accepts them only as the last stage. The
# command layer runs a final `$out`; anywhere else they fail here with MongoDB's 40601.
FINAL_STAGES = ("$out", "$merge")


def split_leading_match(pipeline: list[Any]) -> tuple[Document | None, list[Any]]:
    """The filter of the pipeline's leading `$match` stages (joined with `$and`) and the rest."""
    filters: list[Document] = []
    index = 0
    while index < len(pipeline):
        stage = pipeline[index]
        if not (isinstance(stage, dict) and len(stage) == 1 and "$match" in stage):
            break
        if not isinstance(stage["$match"], dict):
            break
        filters.append(stage["$match"])
        index += 1
    if not filters:
        return None, list(pipeline)
    spec = filters[0] if len(filters) == 1 else {"$and": filters}
    return spec, list(pipeline[index:])


def run_pipeline(
    pipeline: list[Any],
    source: Iterable[Document],
    *,
    lookup: Lookup,
    deadline: Deadline | None = None,
) -> Iterator[Document]:
    """Documents out of `pipeline` applied to `source`; stages are validated before any runs."""
    if not isinstance(pipeline, list):
        raise MongoError(14, "'pipeline' option must be specified as an array")
    for stage in pipeline[:-1]:
        name = next(iter(stage), None) if isinstance(stage, dict) else None
        if name in FINAL_STAGES:
            raise MongoError(40601, f"{name} can only be the final stage in the pipeline")
    stages = [_compile_stage(stage, lookup, deadline) for stage in pipeline]
    stream: Iterator[Document] = _checked(iter(source), deadline)
    for stage in stages:
        stream = stage(stream)
    return stream


def _checked(source: Iterator[Document], deadline: Deadline | None) -> Iterator[Document]:
    for count, doc in enumerate(source):
        if deadline is not None and count % CHECK_EVERY == 0:
            deadline.check()
        yield doc


def _compile_stage(stage: Any, lookup: Lookup, deadline: Deadline | None) -> Stage:
    if not isinstance(stage, dict):
        raise MongoError(14, "Each element of the 'pipeline' array must be an object")
    if len(stage) != 1:
        raise MongoError(
            40323, "A pipeline stage specification object must contain exactly one field."
        )
    name, spec = next(iter(stage.items()))
    builder = _STAGES.get(name)
    if builder is None:
        raise MongoError(40324, f"Unrecognized pipeline stage name: '{name}'")
    return builder(spec, lookup, deadline)


def _match(spec: Any, lookup: Lookup, deadline: Deadline | None) -> Stage:
    if not isinstance(spec, dict):
        raise MongoError(15959, "the match filter must be an expression in an object")
    matcher = compile_filter(spec, deadline)
    return lambda docs: (doc for doc in docs if matcher(doc))


def _project(spec: Any, lookup: Lookup, deadline: Deadline | None) -> Stage:
    projection = Projection(spec)
    return lambda docs: (
        limits.check_value(projection.apply(doc, Scope(doc, deadline=deadline))) for doc in docs
    )


def _add_fields(stage_name: str) -> Callable[[Any, Lookup, Deadline | None], Stage]:
    def build(spec: Any, lookup: Lookup, deadline: Deadline | None) -> Stage:
        add = AddFields(stage_name, spec)
        return lambda docs: (
            limits.check_value(add.apply(doc, Scope(doc, deadline=deadline))) for doc in docs
        )

    return build


def _unset(spec: Any, lookup: Lookup, deadline: Deadline | None) -> Stage:
    paths = unset_paths(spec)
    return lambda docs: (exclude(doc, paths) for doc in docs)


def _group_key(value: Any) -> bytes:
    return sort_key(None if value is MISSING else value)


def _group(spec: Any, lookup: Lookup, deadline: Deadline | None) -> Stage:
    if not isinstance(spec, dict):
        raise MongoError(15947, "a group's fields must be specified in an object")
    if "_id" not in spec:
        raise MongoError(15955, "a group specification must include an _id")
    fields: list[tuple[str, str, Any]] = []
    for name, field_spec in spec.items():
        if name == "_id":
            continue
        if "." in name:
            raise MongoError(40235, f"The field name '{name}' cannot contain '.'")
        if not isinstance(field_spec, dict) or len(field_spec) != 1:
            raise MongoError(40238, f"The field '{name}' must specify one accumulator")
        ((operator, argument),) = field_spec.items()
        accumulators.make(operator)  # unknown accumulators fail before any document is read
        if operator == "$count" and argument != {}:
            raise MongoError(40181, "$count takes no arguments, i.e. $count:{}")
        fields.append((name, operator, argument))
    id_expr = spec["_id"]

    def run(docs: Iterator[Document]) -> Iterator[Document]:
        groups: dict[bytes, tuple[Any, list[accumulators.Accumulator]]] = {}
        for doc in docs:
            scope = Scope(doc, deadline=deadline)
            key_value = evaluate_in(id_expr, scope)
            key_value = None if key_value is MISSING else key_value
            key = _group_key(key_value)
            group = groups.get(key)
            if group is None:
                group = groups[key] = (key_value, [accumulators.make(op) for _, op, _ in fields])
            for (_, _, argument), accumulator in zip(fields, group[1], strict=True):
                accumulator.add(evaluate_in(argument, scope))
        for key_value, accs in groups.values():
            out: Document = {"_id": key_value}
            for (name, _, _), accumulator in zip(fields, accs, strict=True):
                out[name] = accumulator.result()
            yield limits.check_value(out)

    return run


def _sort_keys(spec: Any) -> list[tuple[list[str], int]]:
    if not isinstance(spec, dict):
        raise MongoError(15973, "the $sort key specification must be an object")
    if not spec:
        raise MongoError(15976, "$sort stage must have at least one sort key")
    keys = []
    for path, direction in spec.items():
        if not numbers.is_number(direction) or numbers.to_float(direction) not in (1.0, -1.0):
            raise MongoError(
                15975, "$sort key ordering must be 1 (for ascending) or -1 (for descending)"
            )
        keys.append((path.split("."), int(numbers.to_float(direction))))
    return keys


def _sort(spec: Any, lookup: Lookup, deadline: Deadline | None) -> Stage:
    _sort_keys(spec)  # the $sort stage's own error codes, before the shared sort parser
    key_of = compile_sort(spec)
    return lambda docs: iter(sorted(docs, key=key_of))


def _count_argument(stage: str, value: Any, code_nan: int, code_negative: int) -> int:
    if not numbers.is_number(value):
        raise MongoError(code_nan, f"the {stage} must be specified as a number")
    as_float = numbers.to_float(value)
    if as_float != int(as_float) or as_float > numbers.INT64_MAX:
        raise MongoError(code_nan, f"the {stage} must be specified as a number")
    return int(as_float)


def _limit(spec: Any, lookup: Lookup, deadline: Deadline | None) -> Stage:
    limit = _count_argument("limit", spec, 15957, 15958)
    if limit <= 0:
        raise MongoError(15958, "the limit must be positive")

    def run(docs: Iterator[Document]) -> Iterator[Document]:
        for index, doc in enumerate(docs):
            if index >= limit:
                return
            yield doc

    return run


def _skip(spec: Any, lookup: Lookup, deadline: Deadline | None) -> Stage:
    if not numbers.is_number(spec):
        raise MongoError(15972, "Argument to $skip must be a number")
    skip = _count_argument("skip", spec, 15972, 15956)
    if skip < 0:
        raise MongoError(15956, "Argument to $skip cannot be negative")

    def run(docs: Iterator[Document]) -> Iterator[Document]:
        for index, doc in enumerate(docs):
            if index >= skip:
                yield doc

    return run


def _unwind(spec: Any, lookup: Lookup, deadline: Deadline | None) -> Stage:
    include_index: str | None = None
    preserve = False
    if isinstance(spec, str):
        path = spec
    elif isinstance(spec, dict):
        for key in spec:
            if key not in ("path", "includeArrayIndex", "preserveNullAndEmptyArrays"):
                raise MongoError(28811, f"unrecognized option to $unwind stage: {key}")
        if "path" not in spec:
            raise MongoError(28812, "no path specified to $unwind stage")
        path = spec["path"]
        if not isinstance(path, str):
            raise MongoError(
                28808, f"expected a string as the path for $unwind stage, got {type_name(path)}"
            )
        include_index = spec.get("includeArrayIndex")
        if include_index is not None and (
            not isinstance(include_index, str) or not include_index or include_index.startswith("$")
        ):
            raise MongoError(
                28822, "includeArrayIndex option to $unwind stage should not be prefixed with a '$'"
            )
        preserve = bool(spec.get("preserveNullAndEmptyArrays", False))
    else:
        raise MongoError(
            15981,
            f"expected either a string or an object as specification for "
            f"$unwind stage, got {type_name(spec)}",
        )
    if not path.startswith("$"):
        raise MongoError(
            28818, f"path option to $unwind stage should be prefixed with a '$': {path}"
        )
    parts = path[1:].split(".")

    def run(docs: Iterator[Document]) -> Iterator[Document]:
        for doc in docs:
            value = _get_document_path(doc, parts)
            if isinstance(value, list) and value:
                for index, element in enumerate(value):
                    out = copy_value(doc)
                    _set_document_path(out, parts, element)
                    if include_index:
                        out[include_index] = Int64(index)
                    yield out
            elif isinstance(value, list) or value is MISSING or value is None:
                if preserve:
                    out = copy_value(doc)
                    if isinstance(value, list):
                        _remove_document_path(out, parts)
                    if include_index:
                        out[include_index] = None
                    yield out
            else:
                out = copy_value(doc) if include_index else doc
                if include_index:
                    out[include_index] = None
                yield out

    return run


def _get_document_path(doc: Any, parts: list[str]) -> Any:
    for part in parts:
        if not isinstance(doc, dict) or part not in doc:
            return MISSING
        doc = doc[part]
    return doc


def _set_document_path(doc: Document, parts: list[str], value: Any) -> None:
    for part in parts[:-1]:
        doc = doc[part]
    doc[parts[-1]] = value


def _remove_document_path(doc: Document, parts: list[str]) -> None:
    for part in parts[:-1]:
        doc = doc[part]
    doc.pop(parts[-1], None)


def _count(spec: Any, lookup: Lookup, deadline: Deadline | None) -> Stage:
    if not isinstance(spec, str):
        raise MongoError(40156, "the count field must be a non-empty string")
    if not spec:
        raise MongoError(40157, "the count field must be a non-empty string")
    if spec.startswith("$"):
        raise MongoError(40158, "the count field cannot be a $-prefixed path")
    if "." in spec:
        raise MongoError(40160, "the count field cannot contain '.'")

    def run(docs: Iterator[Document]) -> Iterator[Document]:
        total = sum(1 for _ in docs)
        if total:
            yield {spec: numbers.fit_integer(total, numbers.INT)}

    return run


def _lookup(spec: Any, lookup: Lookup, deadline: Deadline | None) -> Stage:
    if not isinstance(spec, dict):
        raise MongoError(9, "the $lookup specification must be an Object")
    for key in spec:
        if key not in ("from", "localField", "foreignField", "as", "let", "pipeline"):
            raise MongoError(9, f"unknown argument to $lookup: {key}")
    if "as" not in spec or not isinstance(spec["as"], str):
        raise MongoError(9, "must specify 'as' field for a $lookup")
    if "pipeline" in spec or "let" in spec:
        # Limitation: $lookup with let/pipeline (correlated sub-pipelines) is not supported.
        raise MongoError(238, "$lookup with 'let' or 'pipeline' is not supported")
    for key in ("from", "localField", "foreignField"):
        if not isinstance(spec.get(key), str):
            raise MongoError(
                9, f"$lookup argument '{key}' must be a string, is type {type_name(spec.get(key))}"
            )
    local_parts = spec["localField"].split(".")
    foreign_field, as_parts = spec["foreignField"], spec["as"].split(".")

    def run(docs: Iterator[Document]) -> Iterator[Document]:
        foreign: list[Document] | None = None
        for doc in docs:
            if foreign is None:
                foreign = list(lookup(spec["from"]))
            wanted = _local_values(doc, local_parts)
            matcher = compile_filter({foreign_field: {"$in": wanted}}, deadline)
            out = copy_value(doc)
            set_computed(out, as_parts, [copy_value(f) for f in foreign if matcher(f)])
            yield out

    return run


def _local_values(doc: Document, parts: list[str]) -> list[Any]:
    values: list[Any] = []
    for value in path_lookup(doc, parts):
        if isinstance(value, list):
            values.extend(value)
        elif value is PATH_MISSING:
            values.append(None)
        else:
            values.append(value)
    return values or [None]


def _replace_root(stage: str) -> Callable[[Any, Lookup, Deadline | None], Stage]:
    def build(spec: Any, lookup: Lookup, deadline: Deadline | None) -> Stage:
        if stage == "$replaceRoot":
            if not isinstance(spec, dict) or "newRoot" not in spec:
                raise MongoError(40231, "no newRoot specified for the $replaceRoot stage")
            expr = spec["newRoot"]
        else:
            expr = spec

        def run(docs: Iterator[Document]) -> Iterator[Document]:
            for doc in docs:
                root = evaluate_in(expr, Scope(doc, deadline=deadline))
                if not isinstance(root, dict):
                    raise MongoError(
                        40228,
                        "'newRoot' expression must evaluate to an object, but resulting value "
                        f"was: {root if root is not MISSING else 'MISSING'}. Type of resulting "
                        f"value: '{type_name(root)}'.",
                    )
                yield limits.check_value(root)

        return run

    return build


def _facet(spec: Any, lookup: Lookup, deadline: Deadline | None) -> Stage:
    if not isinstance(spec, dict) or not spec:
        raise MongoError(40169, "the $facet specification must be a non-empty object")
    facets: list[tuple[str, list[Any]]] = []
    for name, sub in spec.items():
        if not isinstance(sub, list):
            raise MongoError(
                40170, f"arguments to $facet must be arrays, {name} is type {type_name(sub)}"
            )
        for stage in sub:
            if isinstance(stage, dict) and next(iter(stage), None) in ("$facet", "$out", "$merge"):
                raise MongoError(
                    40600, f"{next(iter(stage))} is not allowed to be used within a $facet stage"
                )
        run_pipeline(sub, [], lookup=lookup)  # validates the sub-pipeline now
        facets.append((name, sub))

    def run(docs: Iterator[Document]) -> Iterator[Document]:
        inputs = list(docs)
        yield {
            name: list(run_pipeline(sub, inputs, lookup=lookup, deadline=deadline))
            for name, sub in facets
        }

    return run


def _sort_by_count(spec: Any, lookup: Lookup, deadline: Deadline | None) -> Stage:
    group = _group({"_id": spec, "count": {"$sum": 1}}, lookup, deadline)
    order = _sort({"count": -1}, lookup, deadline)
    return lambda docs: order(group(docs))


_STAGES: dict[str, Callable[[Any, Lookup, Deadline | None], Stage]] = {
    "$match": _match,
    "$project": _project,
    "$addFields": _add_fields("$addFields"),
    "$set": _add_fields("$set"),
    "$unset": _unset,
    "$group": _group,
    "$sort": _sort,
    "$limit": _limit,
    "$skip": _skip,
    "$unwind": _unwind,
    "$count": _count,
    "$lookup": _lookup,
    "$replaceRoot": _replace_root("$replaceRoot"),
    "$replaceWith": _replace_root("$replaceWith"),
    "$facet": _facet,
    "$sortByCount": _sort_by_count,
}

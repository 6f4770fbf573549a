"""Update semantics: operator updates, replacement documents, pipeline updates and upsert seeds.

`compile_update(spec, array_filters)` validates the update once (MongoDB's parse-time errors);
`Update.apply(doc)` returns a new document and whether anything changed, never mutating `doc`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import bson
from bson.regex import Regex

from phidb.errors import (
    BAD_VALUE,
    DOLLAR_PREFIXED_FIELD_NAME,
    FAILED_TO_PARSE,
    IMMUTABLE_FIELD,
    INVALID_OPTIONS,
    MongoError,
)
from phidb.query.expr_core import type_name
from phidb.query.update_ops import OPERATORS, ApplyContext, parse_argument
from phidb.query.update_paths import (
    ABSENT,
    ElementMatcher,
    brief,
    copy_value,
    expand,
    get_at,
    is_positional,
    same_value,
    set_at,
    split_update_path,
    unset_at,
)

CONFLICTING_UPDATE_OPERATORS = 40
NOT_SINGLE_VALUE_FIELD = 54
_IDENTIFIER = re.compile(r"^[a-z][a-zA-Z0-9]*$")
_PIPELINE_STAGES = ("$addFields", "$set", "$project", "$unset", "$replaceRoot", "$replaceWith")
_ID_CHANGED = "Performing an update on the path '_id' would modify the immutable field '_id'"

Document = dict[str, Any]


def is_replacement(spec: Any) -> bool:
    """True when `spec` is a replacement document (its first field is not an operator)."""
    return isinstance(spec, dict) and (not spec or not next(iter(spec)).startswith("$"))


class Update:
    """A compiled update; `apply` returns `(new_doc, changed)` and leaves `doc` untouched."""

    def apply(
        self, doc: Document, *, is_insert: bool = False, query: Document | None = None
    ) -> tuple[Document, bool]:
        raise NotImplementedError


def _check_id(old: Document, new: Document) -> None:
    old_id = old.get("_id", ABSENT)
    if old_id is not ABSENT and not same_value(old_id, new.get("_id", ABSENT)):
        raise MongoError(IMMUTABLE_FIELD, _ID_CHANGED)


class ReplacementUpdate(Update):
    def __init__(self, replacement: Document) -> None:
        for key in replacement:
            if key.startswith("$"):
                raise MongoError(
                    DOLLAR_PREFIXED_FIELD_NAME,
                    f"The dollar ($) prefixed field '{key}' in '{key}' is not allowed in the "
                    "context of an update's replacement document. Consider using an "
                    "aggregation pipeline with $replaceWith.",
                )
        self.replacement = replacement

    def apply(
        self, doc: Document, *, is_insert: bool = False, query: Document | None = None
    ) -> tuple[Document, bool]:
        new = copy_value(self.replacement)
        if "_id" in doc:
            if "_id" in new and not same_value(new["_id"], doc["_id"]):
                raise MongoError(
                    IMMUTABLE_FIELD,
                    "After applying the update, the (immutable) field '_id' was found to have "
                    f"been altered to _id: {brief(new['_id'])}",
                )
            new = {"_id": doc["_id"], **{k: v for k, v in new.items() if k != "_id"}}
        return new, not same_value(doc, new)


class PipelineUpdate(Update):
    """An update given as an aggregation pipeline of the stages MongoDB allows there."""

    def __init__(self, pipeline: list[Any]) -> None:
        for stage in pipeline:
            if not isinstance(stage, dict) or len(stage) != 1:
                raise MongoError(
                    40323, "A pipeline stage specification object must contain exactly one field."
                )
            name = next(iter(stage))
            if name not in _PIPELINE_STAGES:
                raise MongoError(
                    INVALID_OPTIONS, f"{name} is not allowed to be used within an update"
                )
        self.pipeline = pipeline

    def apply(
        self, doc: Document, *, is_insert: bool = False, query: Document | None = None
    ) -> tuple[Document, bool]:
        from phidb.query.aggregate import run_pipeline

        results = list(run_pipeline(self.pipeline, [copy_value(doc)], lookup=lambda _name: []))
        new = results[0] if results else {}
        _check_id(doc, new)
        if "_id" in doc and "_id" not in new:
            raise MongoError(IMMUTABLE_FIELD, _ID_CHANGED)
        return new, not same_value(doc, new)


class _Entry:
    __slots__ = ("op", "path", "parts", "arg", "target")

    def __init__(self, op: str, path: str, parts: list[str], arg: Any, target: list[str]) -> None:
        self.op, self.path, self.parts, self.arg, self.target = op, path, parts, arg, target


def _unknown_modifier(name: str) -> MongoError:
    return MongoError(
        FAILED_TO_PARSE,
        f"Unknown modifier: {name}. Expected a valid update modifier or pipeline-style update "
        "specified as an array",
    )


def _check_components(path: str, parts: list[str], op: str) -> None:
    if sum(part == "$" for part in parts) > 1:
        raise MongoError(
            BAD_VALUE, f"Too many positional (i.e. '$') elements found in path '{path}'"
        )
    if is_positional(parts[0]):
        kind = (
            "positional (i.e. '$')"
            if parts[0] == "$"
            else "array filter identifier (i.e. '$[<id>]')"
        )
        raise MongoError(
            BAD_VALUE, f"Cannot have {kind} element in the first position in path '{path}'"
        )
    for part in parts:
        if part.startswith("$") and not is_positional(part):
            raise MongoError(
                DOLLAR_PREFIXED_FIELD_NAME,
                f"The dollar ($) prefixed field '{part}' in '{path}' is not allowed in the "
                "context of an update's replacement document. Consider using an aggregation "
                "pipeline with $replaceWith.",
            )
    if op == "$rename" and any(is_positional(part) for part in parts):
        raise MongoError(BAD_VALUE, f"The source field for $rename may not be dynamic: {path}")


def _is_prefix(a: list[str], b: list[str]) -> bool:
    return len(a) <= len(b) and b[: len(a)] == a


class OperatorUpdate(Update):
    def __init__(self, spec: Document, array_filters: list[Any] | None) -> None:
        self.entries: list[_Entry] = []
        claimed: list[list[str]] = []
        for op, operand in spec.items():
            if not op.startswith("$") or (op not in OPERATORS and op != "$rename"):
                raise _unknown_modifier(op)
            if not isinstance(operand, dict):
                raise MongoError(
                    FAILED_TO_PARSE,
                    f"Modifiers operate on fields but we found type {type_name(operand)} "
                    f"instead. For example: {{$mod: {{<field>: ...}}}} not "
                    f"{{{op}: {brief(operand)}}}",
                )
            for path, value in operand.items():
                parts = split_update_path(path)
                _check_components(path, parts, op)
                arg = parse_argument(op, path, value)
                target = parts
                if op == "$rename":
                    target = split_update_path(arg)
                    _check_components(arg, target, op)
                    if target == parts:
                        raise MongoError(
                            BAD_VALUE,
                            f"The source and target field for $rename must differ: "
                            f"{path}: {brief(arg)}",
                        )
                    if _is_prefix(parts, target) or _is_prefix(target, parts):
                        raise MongoError(
                            BAD_VALUE,
                            "The source and target field for $rename must not be on the same "
                            f"path: {path}: {brief(arg)}",
                        )
                    self._claim(claimed, path, parts)
                    self._claim(claimed, arg, target)
                else:
                    self._claim(claimed, path, parts)
                self.entries.append(_Entry(op, path, parts, arg, target))
        # MongoDB applies an update in field-name order, so the fields it creates come out sorted.
        self.entries.sort(key=lambda entry: entry.target)
        self.filters = self._compile_array_filters(spec, array_filters or [])

    @staticmethod
    def _claim(claimed: list[list[str]], path: str, parts: list[str]) -> None:
        for earlier in claimed:
            if _is_prefix(earlier, parts) or _is_prefix(parts, earlier):
                shorter = earlier if len(earlier) <= len(parts) else parts
                raise MongoError(
                    CONFLICTING_UPDATE_OPERATORS,
                    f"Updating the path '{path}' would create a conflict at '{'.'.join(shorter)}'",
                )
        claimed.append(parts)

    def _compile_array_filters(
        self, spec: Document, array_filters: list[Any]
    ) -> dict[str, ElementMatcher]:
        from phidb.query.filter import compile_filter

        filters: dict[str, ElementMatcher] = {}
        for array_filter in array_filters:
            if not isinstance(array_filter, dict):
                raise MongoError(
                    FAILED_TO_PARSE,
                    f"arrayFilters entries must be objects, found: {type_name(array_filter)}",
                )
            names = {key.split(".", 1)[0] for key in array_filter if not key.startswith("$")}
            if not names:
                raise MongoError(
                    FAILED_TO_PARSE,
                    "Cannot use an expression without a top-level field name in arrayFilters",
                )
            if len(names) > 1:
                first, second = sorted(names)[:2]
                raise MongoError(
                    FAILED_TO_PARSE,
                    "Error parsing array filter :: caused by :: Expected a single top-level "
                    f"field name, found '{first}' and '{second}'",
                )
            (identifier,) = names
            if not _IDENTIFIER.match(identifier):
                raise MongoError(
                    BAD_VALUE,
                    "Error parsing array filter :: caused by :: The top-level field name must "
                    "be an alphanumeric string beginning with a lowercase letter, found "
                    f"'{identifier}'",
                )
            if identifier in filters:
                raise MongoError(
                    FAILED_TO_PARSE,
                    f"Found multiple array filters with the same top-level field name {identifier}",
                )
            matcher = compile_filter(array_filter)
            filters[identifier] = _element_matcher(identifier, matcher)
        used = {
            part[2:-1]
            for entry in self.entries
            for part in entry.parts
            if part.startswith("$[") and len(part) > 3
        }
        for identifier in filters:
            if identifier not in used:
                raise MongoError(
                    FAILED_TO_PARSE,
                    f"The array filter for identifier '{identifier}' was not used in the update "
                    f"{brief(spec)}",
                )
        return filters

    def apply(
        self, doc: Document, *, is_insert: bool = False, query: Document | None = None
    ) -> tuple[Document, bool]:
        new = copy_value(doc)
        ctx = ApplyContext(doc.get("_id"))
        for entry in self.entries:
            if entry.op == "$setOnInsert" and not is_insert:
                continue
            if entry.op == "$rename":
                _rename(new, entry.parts, entry.target, ctx)
                continue
            position = None
            if "$" in entry.parts:
                prefix = entry.parts[: entry.parts.index("$")]
                position = positional_index(new, prefix, query or {})
            for concrete in expand(new, entry.parts, position, self.filters, entry.path):
                OPERATORS[entry.op](new, concrete, entry.arg, ctx)
        _check_id(doc, new)
        # Changed means not binary-equal (types and field order count, so 1 -> 1.0 is a
        # change); comparing the encodings does that at C speed.
        return new, bson.encode(doc) != bson.encode(new)


def _element_matcher(identifier: str, matcher: Callable[[Any], bool]) -> ElementMatcher:
    return lambda element: bool(matcher({identifier: element}))


def _through_array(doc: Document, parts: list[str]) -> str | None:
    """The first array an intermediate component of `parts` passes through, if any."""
    for depth in range(1, len(parts)):
        if isinstance(get_at(doc, parts[:depth]), list):
            return ".".join(parts[:depth])
    return None


def _rename(doc: Document, source: list[str], target: list[str], ctx: ApplyContext) -> None:
    value = get_at(doc, source)
    if value is ABSENT:
        return
    for parts, which in ((source, "source"), (target, "destination")):
        array = _through_array(doc, parts)
        if array is not None:
            raise MongoError(
                BAD_VALUE,
                f"The {which} field cannot be an array element, '{'.'.join(parts)}' in doc with "
                f"_id: {brief(ctx.doc_id)} has an array field called '{array}'",
            )
    unset_at(doc, source)
    set_at(doc, target, value)


def positional_index(doc: Document, prefix: list[str], query: Document) -> int | None:
    """The index of the first element of the array at `prefix` that `query` matched."""
    array = get_at(doc, prefix)
    if not isinstance(array, list):
        return None
    name = ".".join(prefix)
    clauses: list[Document] = []
    _conditions_on(query, name, clauses)
    if not clauses:
        return None
    from phidb.query.filter import compile_filter

    # Each condition on the array is tried against a one-element array holding the candidate,
    # so array-matching semantics ($elemMatch, "a.b" into element documents) stay the same.
    matcher = compile_filter({"$and": clauses})
    for index, element in enumerate(array):
        if matcher({"e": [element]}):
            return index
    return None


def _conditions_on(query: Document, name: str, out: list[Document]) -> None:
    for key, value in query.items():
        if key == "$and" and isinstance(value, list):
            for clause in value:
                if isinstance(clause, dict):
                    _conditions_on(clause, name, out)
        elif key == name or key.startswith(name + "."):
            out.append({"e" + key[len(name) :]: value})


def compile_update(spec: Any, array_filters: list[Any] | None = None) -> Update:
    """Validate and compile an update: operators, a replacement document or a pipeline."""
    if isinstance(spec, list):
        if array_filters:
            raise MongoError(
                FAILED_TO_PARSE, "arrayFilters may not be specified for pipeline-style updates"
            )
        return PipelineUpdate(spec)
    if not isinstance(spec, dict):
        raise MongoError(FAILED_TO_PARSE, "Update argument must be either an object or an array")
    if is_replacement(spec):
        if array_filters:
            raise MongoError(
                FAILED_TO_PARSE, "arrayFilters may not be specified for replacement-style updates"
            )
        return ReplacementUpdate(spec)
    return OperatorUpdate(spec, array_filters)


def upsert_seed(filter_spec: Document) -> Document:
    """The document an upsert starts from: the filter's equality conditions, paths expanded."""
    seed: Document = {}
    _seed_from(filter_spec, seed, [])
    return seed


def _seed_from(spec: Document, seed: Document, claimed: list[list[str]]) -> None:
    for key, value in spec.items():
        if key == "$and" and isinstance(value, list):
            for clause in value:
                if isinstance(clause, dict):
                    _seed_from(clause, seed, claimed)
            continue
        if key == "$or" and isinstance(value, list) and len(value) == 1:
            if isinstance(value[0], dict):
                _seed_from(value[0], seed, claimed)
            continue
        if key.startswith("$"):
            continue
        equal = _equality_value(value)
        if equal is ABSENT:
            continue
        parts = key.split(".")
        for earlier in claimed:
            if earlier == parts:
                raise MongoError(
                    NOT_SINGLE_VALUE_FIELD,
                    f"cannot infer query fields to set, path '{key}' is matched twice",
                )
            if _is_prefix(earlier, parts) or _is_prefix(parts, earlier):
                raise MongoError(
                    NOT_SINGLE_VALUE_FIELD,
                    "cannot infer query fields to set, both paths "
                    f"'{'.'.join(earlier)}' and '{key}' are matched",
                )
        claimed.append(parts)
        set_at(seed, parts, copy_value(equal))


def _equality_value(value: Any) -> Any:
    if isinstance(value, dict) and value and next(iter(value)).startswith("$"):
        if "$eq" in value:
            return value["$eq"]
        if set(value) == {"$in"} and isinstance(value["$in"], list) and len(value["$in"]) == 1:
            only = value["$in"][0]
            return ABSENT if isinstance(only, Regex | re.Pattern) else only
        return ABSENT
    if isinstance(value, Regex | re.Pattern):
        return ABSENT
    return value

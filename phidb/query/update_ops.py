"""The update operators, each applied to one concrete path of a document being updated.

Each operator is `apply(doc, parts, arg, ctx)`; `arg` was validated when the update was
compiled (`parse_argument`), so application only raises for what the document itself causes.
"""

from __future__ import annotations

import datetime
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bson.int64 import Int64
from bson.timestamp import Timestamp

from phidb.errors import BAD_VALUE, FAILED_TO_PARSE, TYPE_MISMATCH, MongoError
from phidb.query import numbers
from phidb.query.expr_core import compare
from phidb.query.update_paths import ABSENT, brief, get_at, set_at, unset_at


@dataclass
class ApplyContext:
    """What an operator may need beyond its path: the document's `_id` for messages, now."""

    doc_id: Any
    now: datetime.datetime = field(
        default_factory=lambda: datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
    )

    def id_text(self) -> str:
        return "{_id: " + brief(self.doc_id) + "}"


Operator = Callable[[dict[str, Any], list[str], Any, ApplyContext], None]


def _modifier_error(op: str, field_name: str, value: Any, wanted: str) -> MongoError:
    return MongoError(
        TYPE_MISMATCH,
        f"Cannot {wanted} with non-numeric argument: {{{field_name}: {brief(value)}}}",
    )


def parse_argument(op: str, path: str, value: Any) -> Any:
    """Validate (and normalize) one operator argument when the update is compiled."""
    if op == "$inc" and not numbers.is_number(value):
        raise _modifier_error(op, path, value, "increment")
    if op == "$mul" and not numbers.is_number(value):
        raise _modifier_error(op, path, value, "multiply")
    if op == "$pop":
        if not numbers.is_number(value) or numbers.to_float(value) not in (1.0, -1.0):
            raise MongoError(FAILED_TO_PARSE, f"$pop expects 1 or -1, found: {brief(value)}")
        return 1 if numbers.to_float(value) > 0 else -1
    if op == "$pullAll" and not isinstance(value, list):
        raise MongoError(
            BAD_VALUE, f"$pullAll requires an array argument but was given a {_type(value)}"
        )
    if op == "$currentDate":
        return _parse_current_date(path, value)
    if op == "$push":
        return _parse_push(value)
    if op == "$addToSet":
        if isinstance(value, dict) and "$each" in value:
            if not isinstance(value["$each"], list):
                raise MongoError(
                    TYPE_MISMATCH,
                    f"The argument to $each in $addToSet must be an array but it was of type "
                    f"{_type(value['$each'])}",
                )
            return list(value["$each"])
        return [value]
    if op == "$rename":
        if not isinstance(value, str):
            raise MongoError(
                BAD_VALUE, f"The 'to' field for $rename must be a string: {path}: {brief(value)}"
            )
    return value


def _type(value: Any) -> str:
    from phidb.query.expr_core import type_name

    return type_name(value)


def _parse_current_date(path: str, value: Any) -> str:
    if isinstance(value, bool):
        return "date"
    if isinstance(value, dict) and set(value) == {"$type"}:
        if value["$type"] in ("date", "timestamp"):
            return str(value["$type"])
        raise MongoError(
            BAD_VALUE,
            "The '$type' string field is required to be 'date' or 'timestamp': "
            "{$currentDate: {field : {$type: 'date'}}}",
        )
    raise MongoError(
        BAD_VALUE,
        f"{path} is not valid type for $currentDate. Please use a boolean ('true') or a $type "
        "expression ({$type: 'timestamp/date'}).",
    )


@dataclass
class PushSpec:
    each: list[Any]
    slice: int | None = None
    sort: Any = None
    position: int | None = None


def _int_clause(name: str, value: Any) -> int:
    if not numbers.is_number(value) or numbers.to_float(value) != int(numbers.to_float(value)):
        raise MongoError(
            BAD_VALUE,
            f"The value for {name} must be an integer value but was given type: {_type(value)}",
        )
    return int(numbers.to_float(value))


def _parse_push(value: Any) -> PushSpec:
    if not (isinstance(value, dict) and "$each" in value):
        return PushSpec([value])
    spec = PushSpec([])
    for key, clause in value.items():
        if key == "$each":
            if not isinstance(clause, list):
                raise MongoError(
                    BAD_VALUE,
                    f"The argument to $each in $push must be an array but it was of type: "
                    f"{_type(clause)}",
                )
            spec.each = list(clause)
        elif key == "$slice":
            spec.slice = _int_clause("$slice", clause)
        elif key == "$position":
            spec.position = _int_clause("$position", clause)
        elif key == "$sort":
            spec.sort = _parse_sort(clause)
        else:
            raise MongoError(BAD_VALUE, f"Unrecognized clause in $push: {key}")
    return spec


def _parse_sort(clause: Any) -> Any:
    if numbers.is_number(clause) and numbers.to_float(clause) in (1.0, -1.0):
        return int(numbers.to_float(clause))
    if isinstance(clause, dict) and clause:
        for direction in clause.values():
            if not numbers.is_number(direction) or numbers.to_float(direction) not in (1, -1):
                raise MongoError(BAD_VALUE, "The $sort element value must be either 1 or -1")
        return dict(clause)
    raise MongoError(
        BAD_VALUE,
        "The $sort is invalid: use 1/-1 to sort the whole element, or {field:1/-1} "
        "to sort embedded fields",
    )


def _number_at(op: str, doc: dict[str, Any], parts: list[str], ctx: ApplyContext) -> Any:
    current = get_at(doc, parts)
    if current is not ABSENT and not numbers.is_number(current):
        raise MongoError(
            TYPE_MISMATCH,
            f"Cannot apply {op} to a value of non-numeric type. {ctx.id_text()} has the field "
            f"'{parts[-1]}' of non-numeric type {_type(current)}",
        )
    return current


def _checked(op: str, current: Any, result: Any, ctx: ApplyContext) -> Any:
    if isinstance(result, float) and numbers.kind(current) in (numbers.INT, numbers.LONG):
        raise MongoError(
            BAD_VALUE,
            f"Failed to apply {op} operations to current value ((NumberLong){brief(current)}) "
            f"for document {ctx.id_text()}",
        )
    return result


def op_set(doc: dict[str, Any], parts: list[str], arg: Any, ctx: ApplyContext) -> None:
    set_at(doc, parts, arg)


def op_unset(doc: dict[str, Any], parts: list[str], arg: Any, ctx: ApplyContext) -> None:
    unset_at(doc, parts)


def op_inc(doc: dict[str, Any], parts: list[str], arg: Any, ctx: ApplyContext) -> None:
    current = _number_at("$inc", doc, parts, ctx)
    if current is ABSENT:
        set_at(doc, parts, arg)
        return
    result = numbers.add(current, arg)
    if numbers.widest(current, arg) <= numbers.LONG:
        result = _checked("$inc", current, result, ctx)
    set_at(doc, parts, result)


def op_mul(doc: dict[str, Any], parts: list[str], arg: Any, ctx: ApplyContext) -> None:
    current = _number_at("$mul", doc, parts, ctx)
    if current is ABSENT:
        set_at(doc, parts, numbers.multiply(0 if not isinstance(arg, Int64) else Int64(0), arg))
        return
    result = numbers.multiply(current, arg)
    if numbers.widest(current, arg) <= numbers.LONG:
        result = _checked("$mul", current, result, ctx)
    set_at(doc, parts, result)


def _extreme(sign: int) -> Operator:
    def apply(doc: dict[str, Any], parts: list[str], arg: Any, ctx: ApplyContext) -> None:
        current = get_at(doc, parts)
        if current is ABSENT or sign * compare(arg, current) > 0:
            set_at(doc, parts, arg)

    return apply


def op_current_date(doc: dict[str, Any], parts: list[str], arg: Any, ctx: ApplyContext) -> None:
    if arg == "timestamp":
        set_at(doc, parts, Timestamp(int(time.time()), 1))
    else:
        set_at(doc, parts, ctx.now.replace(microsecond=ctx.now.microsecond // 1000 * 1000))


def _array_at(op: str, doc: dict[str, Any], parts: list[str], ctx: ApplyContext) -> Any:
    current = get_at(doc, parts)
    if current is ABSENT or isinstance(current, list):
        return current
    if op == "$push":
        raise MongoError(
            BAD_VALUE,
            f"The field '{parts[-1]}' must be an array but is of type {_type(current)} in "
            f"document {ctx.id_text()}",
        )
    if op == "$addToSet":
        raise MongoError(
            BAD_VALUE,
            f"Cannot apply $addToSet to non-array field. Field named '{parts[-1]}' has "
            f"non-array type {_type(current)}",
        )
    if op == "$pop":
        raise MongoError(
            TYPE_MISMATCH,
            f"Path '{'.'.join(parts)}' contains an element of non-array type '{_type(current)}'",
        )
    raise MongoError(BAD_VALUE, "Cannot apply $pull to a non-array value")


def _sort_elements(elements: list[Any], sort: Any) -> list[Any]:
    from functools import cmp_to_key

    from phidb.query.expr_core import MISSING, get_path, split_path

    if isinstance(sort, int):
        return sorted(elements, key=cmp_to_key(lambda a, b: sort * compare(a, b)))
    keys = [(split_path(k), int(numbers.to_float(d))) for k, d in sort.items()]

    def by_fields(a: Any, b: Any) -> int:
        for parts, direction in keys:
            left = get_path(a, parts) if isinstance(a, dict) else MISSING
            right = get_path(b, parts) if isinstance(b, dict) else MISSING
            left = None if left is MISSING else left
            right = None if right is MISSING else right
            result = compare(left, right)
            if result:
                return direction * result
        return 0

    return sorted(elements, key=cmp_to_key(by_fields))


def op_push(doc: dict[str, Any], parts: list[str], arg: PushSpec, ctx: ApplyContext) -> None:
    current = _array_at("$push", doc, parts, ctx)
    array = [] if current is ABSENT else list(current)
    if arg.position is None:
        array.extend(arg.each)
    else:
        at = arg.position if arg.position >= 0 else max(len(array) + arg.position, 0)
        array[at:at] = arg.each
    if arg.sort is not None:
        array = _sort_elements(array, arg.sort)
    if arg.slice is not None:
        s = arg.slice
        array = array[:s] if s >= 0 else array[max(len(array) + s, 0) :]
    set_at(doc, parts, array)


def op_add_to_set(doc: dict[str, Any], parts: list[str], arg: Any, ctx: ApplyContext) -> None:
    current = _array_at("$addToSet", doc, parts, ctx)
    array = [] if current is ABSENT else list(current)
    for value in arg:
        if not any(compare(value, existing) == 0 for existing in array):
            array.append(value)
    if current is ABSENT or len(array) != len(current):
        set_at(doc, parts, array)


def op_pop(doc: dict[str, Any], parts: list[str], arg: int, ctx: ApplyContext) -> None:
    current = _array_at("$pop", doc, parts, ctx)
    if current is ABSENT or not current:
        return
    set_at(doc, parts, current[:-1] if arg > 0 else current[1:])


def pull_matcher(condition: Any) -> Callable[[Any], bool]:
    """Which array elements `$pull: {field: condition}` removes."""
    if not isinstance(condition, dict):
        return lambda element: compare(element, condition) == 0
    from phidb.query.filter import compile_filter

    if condition and all(key.startswith("$") for key in condition) and not _is_logical(condition):
        # Operators apply to the element itself: {$pull: {votes: {$gte: 6}}}.
        on_value = compile_filter({"element": condition})
        return lambda element: on_value({"element": element})
    on_document = compile_filter(condition)
    return lambda element: isinstance(element, dict) and on_document(element)


def _is_logical(condition: dict[str, Any]) -> bool:
    return all(key in ("$and", "$or", "$nor") for key in condition)


def op_pull(doc: dict[str, Any], parts: list[str], arg: Any, ctx: ApplyContext) -> None:
    current = _array_at("$pull", doc, parts, ctx)
    if current is ABSENT:
        return
    matches = pull_matcher(arg)
    kept = [element for element in current if not matches(element)]
    if len(kept) != len(current):
        set_at(doc, parts, kept)


def op_pull_all(doc: dict[str, Any], parts: list[str], arg: Any, ctx: ApplyContext) -> None:
    current = _array_at("$pull", doc, parts, ctx)
    if current is ABSENT:
        return
    kept = [e for e in current if not any(compare(e, v) == 0 for v in arg)]
    if len(kept) != len(current):
        set_at(doc, parts, kept)


OPERATORS: dict[str, Operator] = {
    "$set": op_set,
    "$setOnInsert": op_set,
    "$unset": op_unset,
    "$inc": op_inc,
    "$mul": op_mul,
    "$min": _extreme(-1),
    "$max": _extreme(1),
    "$currentDate": op_current_date,
    "$push": op_push,
    "$addToSet": op_add_to_set,
    "$pop": op_pop,
    "$pull": op_pull,
    "$pullAll": op_pull_all,
}

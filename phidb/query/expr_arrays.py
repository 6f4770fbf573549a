"""Array expression operators, and `$sum $avg $min $max` applied to an array operand."""

from __future__ import annotations

from typing import Any

from phidb.query import limits, numbers
from phidb.query.expr_core import (
    MISSING,
    Scope,
    compare,
    eval_args,
    evaluate_in,
    fail,
    nullish,
    operator,
    truthy,
    type_name,
    values_equal,
)
from phidb.query.expr_logic import check_variable_name


def _int32_index(name: str, which: str, value: Any) -> int:
    if numbers.kind(value) is None:
        raise fail(
            28690, f"{name}'s {which} argument must be a numeric value, but is {type_name(value)}"
        )
    whole = numbers.integral(value)
    if whole is None or not numbers.INT32_MIN <= whole <= numbers.INT32_MAX:
        raise fail(
            28691, f"{name}'s {which} argument must be representable as a 32-bit integer: {value}"
        )
    return whole


@operator("$size")
def _size(args: Any, scope: Scope) -> Any:
    (value,) = eval_args("$size", args, scope, exactly=1)
    if not isinstance(value, list):
        raise fail(
            17124,
            f"The argument to $size must be an array. Type of argument was: {type_name(value)}",
        )
    return len(value)


@operator("$arrayElemAt")
def _array_elem_at(args: Any, scope: Scope) -> Any:
    array, index = eval_args("$arrayElemAt", args, scope, exactly=2)
    if nullish(array) or nullish(index):
        return None
    if not isinstance(array, list):
        raise fail(
            28689, f"$arrayElemAt's first argument must be an array, but is {type_name(array)}"
        )
    position = _int32_index("$arrayElemAt", "second", index)
    if position < 0:
        position += len(array)
    return array[position] if 0 <= position < len(array) else MISSING


def _first_last(name: str, pick: int, args: Any, scope: Scope) -> Any:
    (array,) = eval_args(name, args, scope, exactly=1)
    if nullish(array):
        return None
    if not isinstance(array, list):
        raise fail(28689, f"{name}'s argument must be an array, but is {type_name(array)}")
    return array[pick] if array else MISSING


@operator("$first")
def _first(args: Any, scope: Scope) -> Any:
    return _first_last("$first", 0, args, scope)


@operator("$last")
def _last(args: Any, scope: Scope) -> Any:
    return _first_last("$last", -1, args, scope)


@operator("$in")
def _in(args: Any, scope: Scope) -> Any:
    value, array = eval_args("$in", args, scope, exactly=2)
    if not isinstance(array, list):
        raise fail(40081, f"$in requires an array as a second argument, found: {type_name(array)}")
    return any(values_equal(value, element) for element in array)


@operator("$indexOfArray")
def _index_of_array(args: Any, scope: Scope) -> Any:
    values = eval_args("$indexOfArray", args, scope, at_least=2)
    array, target = values[0], values[1]
    if nullish(array):
        return None
    if not isinstance(array, list):
        raise fail(
            40090, f"$indexOfArray requires an array as a first argument, found: {type_name(array)}"
        )
    start = _int32_index("$indexOfArray", "third", values[2]) if len(values) > 2 else 0
    end = _int32_index("$indexOfArray", "fourth", values[3]) if len(values) > 3 else len(array)
    for position in range(max(start, 0), min(end, len(array))):
        if values_equal(array[position], target):
            return position
    return -1


# Every BSON array element takes at least 3 bytes (a type byte and a one-digit name).
_MAX_ELEMENTS = limits.MAX_VALUE_BYTES // 3


@operator("$concatArrays")
def _concat_arrays(args: Any, scope: Scope) -> Any:
    arrays: list[list[Any]] = []
    for value in eval_args("$concatArrays", args, scope):
        if nullish(value):
            return None
        if not isinstance(value, list):
            raise fail(28664, f"$concatArrays only supports arrays, not {type_name(value)}")
        arrays.append(value)
    count = sum(len(array) for array in arrays)
    if count > _MAX_ELEMENTS:
        raise limits.too_large(count * 3)
    out: list[Any] = []
    for array in arrays:
        out.extend(array)
    return out


@operator("$isArray")
def _is_array(args: Any, scope: Scope) -> Any:
    (value,) = eval_args("$isArray", args, scope, exactly=1)
    return isinstance(value, list)


@operator("$reverseArray")
def _reverse_array(args: Any, scope: Scope) -> Any:
    (value,) = eval_args("$reverseArray", args, scope, exactly=1)
    if nullish(value):
        return None
    if not isinstance(value, list):
        raise fail(
            34435,
            f"The argument to $reverseArray must be an array, but was of type: {type_name(value)}",
        )
    return value[::-1]


@operator("$slice")
def _slice(args: Any, scope: Scope) -> Any:
    values = eval_args("$slice", args, scope, at_least=2)
    array = values[0]
    if any(nullish(v) for v in values):
        return None
    if not isinstance(array, list):
        raise fail(
            28724, f"First argument to $slice must be an array, but is of type: {type_name(array)}"
        )
    if len(values) == 2:
        n = _int32_index("$slice", "second", values[1])
        return array[:n] if n >= 0 else array[max(len(array) + n, 0) :]
    start = _int32_index("$slice", "second", values[1])
    count = _int32_index("$slice", "third", values[2])
    if count <= 0:
        raise fail(28729, f"Third argument to $slice must be positive: {count}")
    if start < 0:
        start = max(len(array) + start, 0)
    return array[start : start + count]


def _iteration_spec(name: str, args: Any, allowed: tuple[str, ...], code: int) -> dict[str, Any]:
    if not isinstance(args, dict):
        raise fail(
            28646 if name == "$filter" else 16878, f"{name} only supports an object as its argument"
        )
    for key in args:
        if key not in allowed:
            raise fail(
                28647 if name == "$filter" else 16879, f"Unrecognized parameter to {name}: {key}"
            )
    if "input" not in args:
        raise fail(code, f"Missing 'input' parameter to {name}")
    return args


@operator("$filter")
def _filter(args: Any, scope: Scope) -> Any:
    spec = _iteration_spec("$filter", args, ("input", "as", "cond", "limit"), 28648)
    if "cond" not in spec:
        raise fail(28650, "Missing 'cond' parameter to $filter")
    name = spec.get("as", "this")
    check_variable_name(name)
    array = evaluate_in(spec["input"], scope)
    limit = None
    if "limit" in spec:
        raw_limit = evaluate_in(spec["limit"], scope)
        if not nullish(raw_limit):
            limit = _int32_index("$filter", "limit", raw_limit)
            if limit < 1:
                raise fail(327391, f"$filter: limit must be greater than 0: {limit}")
    if nullish(array):
        return None
    if not isinstance(array, list):
        raise fail(28651, f"input to $filter must be an array not {type_name(array)}")
    out: list[Any] = []
    for count, element in enumerate(array):
        scope.tick(count)
        if truthy(evaluate_in(spec["cond"], scope.bind({name: element}))):
            out.append(element)
            if limit is not None and len(out) >= limit:
                break
    return out


@operator("$map")
def _map(args: Any, scope: Scope) -> Any:
    spec = _iteration_spec("$map", args, ("input", "as", "in"), 16880)
    if "in" not in spec:
        raise fail(16882, "Missing 'in' parameter to $map")
    name = spec.get("as", "this")
    check_variable_name(name)
    array = evaluate_in(spec["input"], scope)
    if nullish(array):
        return None
    if not isinstance(array, list):
        raise fail(16883, f"input to $map must be an array not {type_name(array)}")
    out = []
    for count, element in enumerate(array):
        scope.tick(count)
        value = evaluate_in(spec["in"], scope.bind({name: element}))
        out.append(None if value is MISSING else value)
    return limits.check_value(out)


@operator("$reduce")
def _reduce(args: Any, scope: Scope) -> Any:
    if not isinstance(args, dict) or not {"input", "initialValue", "in"} <= set(args):
        raise fail(40080, "$reduce requires 'input', 'initialValue' and 'in' parameters")
    array = evaluate_in(args["input"], scope)
    if nullish(array):
        return None
    if not isinstance(array, list):
        raise fail(40080, f"$reduce requires that 'input' be an array, found: {type_name(array)}")
    accumulated = evaluate_in(args["initialValue"], scope)
    for count, element in enumerate(array, 1):
        scope.tick(count)
        accumulated = evaluate_in(args["in"], scope.bind({"this": element, "value": accumulated}))
        if count & (count - 1) == 0:
            # `in` can double the value each step by sharing it ([$$value, $$value]); measuring
            # at powers of two stops that within a few steps and costs linear time overall.
            limits.check_value(accumulated)
    return limits.check_value(accumulated)


# MongoDB refuses a $range whose elements would take more than internalQueryMaxRangeBytes.
RANGE_MEMORY_LIMIT = 64 * 1024 * 1024
# Each element counts 16 bytes, the size of MongoDB's in-memory value, so the largest $range is
# 4,194,304 elements, as in MongoDB (phidb's Python ints take more memory than that count).
RANGE_BYTES_PER_ELEMENT = 16
EXCEEDED_MEMORY_LIMIT = 146


@operator("$range")
def _range(args: Any, scope: Scope) -> Any:
    values = eval_args("$range", args, scope, at_least=2)
    start = _int32_index("$range", "first", values[0])
    end = _int32_index("$range", "second", values[1])
    step = _int32_index("$range", "third", values[2]) if len(values) > 2 else 1
    if step == 0:
        raise fail(34449, "$range requires a non-zero step value")
    span = range(start, end, step)
    needed = len(span) * RANGE_BYTES_PER_ELEMENT
    if needed > RANGE_MEMORY_LIMIT:
        # Counted before a single element is built: a large list would hold the GIL for seconds.
        raise fail(
            EXCEEDED_MEMORY_LIMIT,
            f"$range would use too much memory ({needed} bytes) and cannot spill to disk. "
            f"Memory limit: {RANGE_MEMORY_LIMIT} bytes",
        )
    return list(span)


def sum_values(values: list[Any]) -> Any:
    """`$sum` over values: numbers add with promotion, everything else is ignored."""
    total: Any = 0
    for value in values:
        if numbers.is_number(value):
            total = numbers.add(total, value)
    return total


def avg_values(values: list[Any]) -> Any:
    count = 0
    total: Any = 0
    for value in values:
        if numbers.is_number(value):
            total = numbers.add(total, value)
            count += 1
    if count == 0:
        return None
    if numbers.kind(total) == numbers.DECIMAL:
        return numbers.divide(total, count)
    return numbers.to_float(total) / count


def _operands_for_group_style(name: str, args: Any, scope: Scope) -> list[Any]:
    """`{$sum: "$arr"}` sums the array's elements; `{$sum: [a, b]}` sums the operands."""
    if isinstance(args, list) and len(args) != 1:
        return eval_args(name, args, scope)
    (value,) = eval_args(name, args, scope)
    return value if isinstance(value, list) else [value]


@operator("$sum")
def _sum(args: Any, scope: Scope) -> Any:
    return sum_values(_operands_for_group_style("$sum", args, scope))


@operator("$avg")
def _avg(args: Any, scope: Scope) -> Any:
    return avg_values(_operands_for_group_style("$avg", args, scope))


def _extreme(name: str, sign: int, args: Any, scope: Scope) -> Any:
    best: Any = None
    for value in _operands_for_group_style(name, args, scope):
        if nullish(value):
            continue
        if best is None or sign * compare(value, best) > 0:
            best = value
    return best


@operator("$max")
def _max(args: Any, scope: Scope) -> Any:
    return _extreme("$max", 1, args, scope)


@operator("$min")
def _min(args: Any, scope: Scope) -> Any:
    return _extreme("$min", -1, args, scope)

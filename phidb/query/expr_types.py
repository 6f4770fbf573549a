"""Type expression operators: `$type`, `$convert` and the `$toX` shorthands."""

from __future__ import annotations

import datetime
import decimal
import math
import re
from typing import Any

from bson.decimal128 import Decimal128
from bson.int64 import Int64
from bson.objectid import ObjectId
from bson.timestamp import Timestamp

from phidb.query import numbers
from phidb.query.expr_core import (
    MISSING,
    Scope,
    eval_args,
    evaluate_in,
    fail,
    nullish,
    operator,
    type_name,
)
from phidb.query.expr_math import date_to_ms, ms_to_date

CONVERSION_FAILURE = 241

_TYPE_ALIASES = {
    1: "double",
    2: "string",
    7: "objectId",
    8: "bool",
    9: "date",
    16: "int",
    18: "long",
    19: "decimal",
}

_ISO_DATE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?)?"
    r"\s*(Z|[+-]\d{2}:?\d{2})?$"
)


class _Failure(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@operator("$type")
def _type(args: Any, scope: Scope) -> Any:
    (value,) = eval_args("$type", args, scope, exactly=1)
    return type_name(value)


@operator("$isNumber")
def _is_number(args: Any, scope: Scope) -> Any:
    (value,) = eval_args("$isNumber", args, scope, exactly=1)
    return numbers.is_number(value)


def format_double(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def format_date(value: datetime.datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def to_string(value: Any) -> Any:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return format_double(value)
    if isinstance(value, int | Decimal128):
        return str(value)
    if isinstance(value, ObjectId):
        return str(value)
    if isinstance(value, datetime.datetime):
        return format_date(value)
    if isinstance(value, Timestamp):
        return f"Timestamp({value.time}, {value.inc})"
    raise _Failure(f"Unsupported conversion from {type_name(value)} to string")


def _parse_integer(text: str) -> int:
    if not re.fullmatch(r"\s*[+-]?\d+", text) or text != text.strip():
        raise _Failure(f"Failed to parse number '{text}'")
    return int(text)


def _to_integer(value: Any, target: str, low: int, high: int) -> int:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        result = int(value)
    elif isinstance(value, float | Decimal128):
        as_float = numbers.to_float(value)
        if math.isnan(as_float) or math.isinf(as_float):
            raise _Failure("Attempt to convert NaN value to integer")
        result = int(as_float)
    elif isinstance(value, str):
        result = _parse_integer(value)
    elif isinstance(value, datetime.datetime) and target == "long":
        result = date_to_ms(value)
    else:
        raise _Failure(f"Unsupported conversion from {type_name(value)} to {target}")
    if not low <= result <= high:
        raise _Failure("Conversion would overflow target type")
    return result


def _to_double(value: Any) -> float:
    if isinstance(value, bool):
        return float(value)
    if numbers.is_number(value):
        return numbers.to_float(value)
    if isinstance(value, str):
        text = value.strip()
        if text != value or not re.fullmatch(
            r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?|[+-]?(Infinity|inf)|NaN", text
        ):
            raise _Failure(f"Failed to parse number '{value}'")
        return float(text.replace("Infinity", "inf"))
    if isinstance(value, datetime.datetime):
        return float(date_to_ms(value))
    raise _Failure(f"Unsupported conversion from {type_name(value)} to double")


def _to_decimal(value: Any) -> Decimal128:
    if isinstance(value, bool):
        return Decimal128(str(int(value)))
    if numbers.is_number(value):
        return numbers.make_decimal(numbers.to_decimal(value))
    if isinstance(value, str):
        try:
            return Decimal128(value)
        except (decimal.InvalidOperation, ValueError):
            raise _Failure(f"Failed to parse number '{value}'") from None
    if isinstance(value, datetime.datetime):
        return Decimal128(str(date_to_ms(value)))
    raise _Failure(f"Unsupported conversion from {type_name(value)} to decimal")


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if numbers.is_number(value):
        return not numbers.is_zero(value)
    return True


def parse_date_string(text: str) -> datetime.datetime:
    match = _ISO_DATE.match(text.strip())
    if not match:
        raise _Failure(f"Error parsing date string '{text}'")
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    try:
        result = datetime.datetime(
            int(year),
            int(month),
            int(day),
            int(hour or 0),
            int(minute or 0),
            int(second or 0),
            int((fraction or "0").ljust(6, "0")[:6]) // 1000 * 1000,
        )
    except ValueError:
        raise _Failure(f"Error parsing date string '{text}'") from None
    if zone and zone != "Z":
        digits = zone[1:].replace(":", "")
        offset = datetime.timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
        result = result - offset if zone[0] == "+" else result + offset
    return result


def _to_date(value: Any) -> datetime.datetime:
    if isinstance(value, datetime.datetime):
        return value
    if isinstance(value, Int64 | float | Decimal128) and not isinstance(value, bool):
        as_float = numbers.to_float(value)
        if math.isnan(as_float) or math.isinf(as_float):
            raise _Failure("Conversion would overflow target type")
        return ms_to_date(int(as_float))
    if isinstance(value, str):
        return parse_date_string(value)
    if isinstance(value, ObjectId):
        return value.generation_time.replace(tzinfo=None)
    if isinstance(value, Timestamp):
        return ms_to_date(value.time * 1000)
    raise _Failure(f"Unsupported conversion from {type_name(value)} to date")


def _to_object_id(value: Any) -> ObjectId:
    if isinstance(value, ObjectId):
        return value
    if isinstance(value, str):
        if re.fullmatch(r"[0-9a-fA-F]{24}", value):
            return ObjectId(value)
        raise _Failure(f"Failed to parse objectId '{value}'")
    raise _Failure(f"Unsupported conversion from {type_name(value)} to objectId")


def convert(value: Any, target: str) -> Any:
    """`value` converted to BSON type `target`; raises _Failure as `$convert` would report."""
    if target == "string":
        return to_string(value)
    if target == "int":
        return _to_integer(value, "int", numbers.INT32_MIN, numbers.INT32_MAX)
    if target == "long":
        return Int64(_to_integer(value, "long", numbers.INT64_MIN, numbers.INT64_MAX))
    if target == "double":
        return _to_double(value)
    if target == "decimal":
        return _to_decimal(value)
    if target == "bool":
        return _to_bool(value)
    if target == "date":
        return _to_date(value)
    if target == "objectId":
        return _to_object_id(value)
    raise fail(
        CONVERSION_FAILURE,
        f"Unsupported conversion from {type_name(value)} to {target} "
        "in $convert with no onError value",
    )


def _run_convert(value: Any, target: str, on_error: Any = MISSING, on_null: Any = MISSING) -> Any:
    if nullish(value):
        return None if on_null is MISSING else on_null
    try:
        return convert(value, target)
    except _Failure as failure:
        if on_error is not MISSING:
            return on_error
        raise fail(
            CONVERSION_FAILURE, f"{failure.message} in $convert with no onError value"
        ) from None
    except OverflowError:
        if on_error is not MISSING:
            return on_error
        raise fail(
            CONVERSION_FAILURE,
            "Conversion would overflow target type in $convert with no onError value",
        ) from None


@operator("$convert")
def _convert(args: Any, scope: Scope) -> Any:
    if not isinstance(args, dict):
        raise fail(9, f"$convert expects an object of named arguments but found: {type_name(args)}")
    for key in args:
        if key not in ("input", "to", "onError", "onNull"):
            raise fail(9, f"$convert found an unknown argument: {key}")
    if "input" not in args:
        raise fail(9, "Missing 'input' parameter to $convert")
    if "to" not in args:
        raise fail(9, "Missing 'to' parameter to $convert")
    target = evaluate_in(args["to"], scope)
    if nullish(target):
        return None
    if numbers.is_number(target):
        target = _TYPE_ALIASES.get(int(numbers.to_float(target)), str(target))
    if not isinstance(target, str) or target not in _TYPE_ALIASES.values():
        raise fail(2, f"Unknown type name: {target}")
    value = evaluate_in(args["input"], scope)
    on_error = evaluate_in(args["onError"], scope) if "onError" in args else MISSING
    on_null = evaluate_in(args["onNull"], scope) if "onNull" in args else MISSING
    return _run_convert(value, target, on_error, on_null)


def _shorthand(name: str, target: str) -> None:
    @operator(name)
    def to_type(args: Any, scope: Scope) -> Any:
        (value,) = eval_args(name, args, scope, exactly=1)
        return _run_convert(value, target)

    del to_type


for _name, _target in (
    ("$toString", "string"),
    ("$toInt", "int"),
    ("$toLong", "long"),
    ("$toDouble", "double"),
    ("$toDecimal", "decimal"),
    ("$toBool", "bool"),
    ("$toDate", "date"),
    ("$toObjectId", "objectId"),
):
    _shorthand(_name, _target)

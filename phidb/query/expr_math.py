"""Arithmetic expression operators, with MongoDB's numeric promotion and date arithmetic."""

from __future__ import annotations

import datetime
import decimal
import math
from typing import Any

from bson.int64 import Int64

from phidb.query import numbers
from phidb.query.expr_core import Scope, eval_args, fail, nullish, operator, type_name

_MS = datetime.timedelta(milliseconds=1)
_EPOCH = datetime.datetime(1970, 1, 1)


def is_date(value: Any) -> bool:
    return isinstance(value, datetime.datetime)


def date_to_ms(value: datetime.datetime) -> int:
    if value.tzinfo is not None:
        value = value.astimezone(datetime.UTC).replace(tzinfo=None)
    delta = value - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


def ms_to_date(ms: int) -> datetime.datetime:
    return _EPOCH + datetime.timedelta(milliseconds=ms)


def _round_ms(value: Any) -> int:
    """A number added to a date, rounded to whole milliseconds as MongoDB does."""
    if numbers.kind(value) in (numbers.DOUBLE, numbers.DECIMAL):
        as_float = numbers.to_float(value)
        if math.isnan(as_float) or math.isinf(as_float):
            raise fail(16554, "Date arithmetic with a NaN or infinite value is not allowed")
        return round(as_float)
    return int(value)


@operator("$add")
def _add(args: Any, scope: Scope) -> Any:
    values = eval_args("$add", args, scope)
    total: Any = 0
    date_ms: int | None = None
    for value in values:
        if nullish(value):
            return None
        if is_date(value):
            if date_ms is not None:
                raise fail(16612, "only one date allowed in an $add expression")
            date_ms = date_to_ms(value)
        elif numbers.is_number(value):
            total = numbers.add(total, value)
        else:
            raise fail(16554, f"$add only supports numeric or date types, not {type_name(value)}")
    if date_ms is not None:
        return ms_to_date(date_ms + _round_ms(total))
    return total


@operator("$subtract")
def _subtract(args: Any, scope: Scope) -> Any:
    a, b = eval_args("$subtract", args, scope, exactly=2)
    if nullish(a) or nullish(b):
        return None
    if numbers.is_number(a) and numbers.is_number(b):
        return numbers.subtract(a, b)
    if is_date(a) and is_date(b):
        return Int64(date_to_ms(a) - date_to_ms(b))
    if is_date(a) and numbers.is_number(b):
        return ms_to_date(date_to_ms(a) - _round_ms(b))
    raise fail(16556, f"cant $subtract a{type_name(b)} from a{type_name(a)}")


@operator("$multiply")
def _multiply(args: Any, scope: Scope) -> Any:
    product: Any = 1
    for value in eval_args("$multiply", args, scope):
        if nullish(value):
            return None
        if not numbers.is_number(value):
            raise fail(16555, f"$multiply only supports numeric types, not {type_name(value)}")
        product = numbers.multiply(product, value)
    return product


@operator("$divide")
def _divide(args: Any, scope: Scope) -> Any:
    a, b = eval_args("$divide", args, scope, exactly=2)
    if nullish(a) or nullish(b):
        return None
    if not (numbers.is_number(a) and numbers.is_number(b)):
        raise fail(
            16609,
            f"$divide only supports numeric types, not {type_name(a)} and {type_name(b)}",
        )
    if numbers.is_zero(b):
        raise fail(16608, "can't $divide by zero")
    return numbers.divide(a, b)


@operator("$mod")
def _mod(args: Any, scope: Scope) -> Any:
    a, b = eval_args("$mod", args, scope, exactly=2)
    if nullish(a) or nullish(b):
        return None
    if not (numbers.is_number(a) and numbers.is_number(b)):
        raise fail(
            16611, f"$mod only supports numeric types, not {type_name(a)} and {type_name(b)}"
        )
    if numbers.is_zero(b):
        raise fail(16610, "can't $mod by zero")
    return numbers.mod(a, b)


def _unary_number(name: str, args: Any, scope: Scope) -> Any:
    (value,) = eval_args(name, args, scope, exactly=1)
    if nullish(value):
        return None
    if not numbers.is_number(value):
        raise fail(28765, f"{name} only supports numeric types, not {type_name(value)}")
    return value


@operator("$abs")
def _abs(args: Any, scope: Scope) -> Any:
    value = _unary_number("$abs", args, scope)
    if value is None:
        return None
    k = numbers.kind(value)
    if k == numbers.DECIMAL:
        return numbers.make_decimal(abs(numbers.to_decimal(value)))
    if k == numbers.DOUBLE:
        return abs(value)
    if k == numbers.LONG and int(value) == numbers.INT64_MIN:
        raise fail(28680, "can't take $abs of long long min")
    return numbers.fit_integer(abs(int(value)), k or numbers.INT)


def _integral(name: str, fn: Any, args: Any, scope: Scope) -> Any:
    value = _unary_number(name, args, scope)
    if value is None:
        return None
    k = numbers.kind(value)
    if k == numbers.DECIMAL:
        return numbers.make_decimal(
            numbers.to_decimal(value).to_integral_value(
                rounding=decimal.ROUND_CEILING if fn is math.ceil else decimal.ROUND_FLOOR
            )
        )
    if k == numbers.DOUBLE:
        if math.isnan(value) or math.isinf(value):
            return value
        return float(fn(value))
    return value


@operator("$ceil")
def _ceil(args: Any, scope: Scope) -> Any:
    return _integral("$ceil", math.ceil, args, scope)


@operator("$floor")
def _floor(args: Any, scope: Scope) -> Any:
    return _integral("$floor", math.floor, args, scope)


def _places(name: str, operands: list[Any]) -> int | None:
    if len(operands) < 2:
        return 0
    places = operands[1]
    if nullish(places):
        return None
    if numbers.kind(places) is None:
        raise fail(
            51081,
            f'{name} requires "place" argument to be an integral value, '
            f"found a value of type: {type_name(places)}",
        )
    whole = numbers.integral(places)
    if whole is None or not -20 <= whole <= 100:
        raise fail(
            51083, f"cannot apply {name} with precision value {places} value must be in [-20, 100]"
        )
    return whole


def _round_like(name: str, mode: str, args: Any, scope: Scope) -> Any:
    operands = args if isinstance(args, list) else [args]
    if not 1 <= len(operands) <= 2:
        raise fail(
            28667,
            f"Expression {name} takes at least 1 arguments, and at most 2, but "
            f"{len(operands)} were passed in.",
        )
    values = eval_args(name, operands, scope)
    value = values[0]
    if nullish(value):
        return None
    if not numbers.is_number(value):
        raise fail(
            51081 if name == "$round" else 51081,
            f"{name} only supports numeric types, not {type_name(value)}",
        )
    places = _places(name, values)
    if places is None:
        return None
    k = numbers.kind(value)
    if k == numbers.DOUBLE and (math.isnan(value) or math.isinf(value)):
        return value
    exact = (
        numbers.to_decimal(value)
        if k == numbers.DECIMAL
        else decimal.Decimal(repr(value) if k == numbers.DOUBLE else int(value))
    )
    quantum = decimal.Decimal(1).scaleb(-places)
    with decimal.localcontext() as ctx:
        ctx.prec = 100
        rounded = (
            exact.quantize(quantum, rounding=mode)
            if places >= 0
            else ((exact / quantum).quantize(decimal.Decimal(1), rounding=mode) * quantum)
        )
    if k == numbers.DECIMAL:
        return numbers.make_decimal(rounded)
    if k == numbers.DOUBLE:
        return float(rounded)
    return numbers.fit_integer(int(rounded), k or numbers.INT)


@operator("$round")
def _round(args: Any, scope: Scope) -> Any:
    return _round_like("$round", decimal.ROUND_HALF_EVEN, args, scope)


@operator("$trunc")
def _trunc(args: Any, scope: Scope) -> Any:
    return _round_like("$trunc", decimal.ROUND_DOWN, args, scope)


def _float_fn(name: str, fn: Any) -> None:
    @operator(name)
    def unary(args: Any, scope: Scope) -> Any:
        value = _unary_number(name, args, scope)
        if value is None:
            return None
        try:
            return fn(numbers.to_float(value))
        except OverflowError:
            # C's exp() overflows to Infinity; Python's math.exp raises instead.
            return math.inf
        except ValueError:
            raise fail(
                28766, f"{name}'s argument must be a positive number, but is {value}"
            ) from None

    del unary


_float_fn("$sqrt", math.sqrt)
_float_fn("$exp", math.exp)
_float_fn("$ln", math.log)
_float_fn("$log10", math.log10)


@operator("$pow")
def _pow(args: Any, scope: Scope) -> Any:
    base, exponent = eval_args("$pow", args, scope, exactly=2)
    if nullish(base) or nullish(exponent):
        return None
    if not numbers.is_number(base):
        raise fail(28762, f"$pow's base must be numeric, not {type_name(base)}")
    if not numbers.is_number(exponent):
        raise fail(28763, f"$pow's exponent must be numeric, not {type_name(exponent)}")
    k = numbers.widest(base, exponent)
    if k == numbers.DECIMAL:
        return _decimal_pow(numbers.to_decimal(base), numbers.to_decimal(exponent))
    if k == numbers.DOUBLE:
        return numbers.float_pow(numbers.to_float(base), numbers.to_float(exponent))
    b, e = int(base), int(exponent)
    if e >= 0:
        return numbers.integer_pow(b, e, k)
    if b == 0:
        raise fail(28764, "$pow cannot take a base of 0 and a negative exponent")
    if b in (1, -1):
        # MongoDB keeps the integer type when the result of a negative power is whole.
        return numbers.fit_integer(b if e % 2 else 1, k)
    return numbers.float_pow(float(b), float(e))


def _decimal_pow(base: decimal.Decimal, exponent: decimal.Decimal) -> Any:
    # The Decimal128 context bounds the work (34 digits) and overflows to Infinity.
    context = numbers.DECIMAL_CONTEXT.copy()
    context.traps = dict.fromkeys(context.traps, False)
    return numbers.make_decimal(context.power(base, exponent))

"""BSON numeric arithmetic: int32 -> int64 -> double promotion and Decimal128, as MongoDB does.

Shared by aggregation expressions, accumulators and the `$inc`/`$mul` update operators.
"""

from __future__ import annotations

import decimal
import math
from typing import Any

from bson.decimal128 import Decimal128, create_decimal128_context
from bson.int64 import Int64

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1

# The numeric kinds, widest last: an operation's result has the widest kind of its operands.
INT, LONG, DOUBLE, DECIMAL = 0, 1, 2, 3

DECIMAL_CONTEXT = create_decimal128_context()


def kind(value: Any) -> int | None:
    """The numeric kind of `value`, or None when it is not a number (bool is not a number)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, Int64):
        return LONG
    if isinstance(value, int):
        return INT if INT32_MIN <= value <= INT32_MAX else LONG
    if isinstance(value, float):
        return DOUBLE
    if isinstance(value, Decimal128):
        return DECIMAL
    return None


def is_number(value: Any) -> bool:
    return kind(value) is not None


def to_decimal(value: Any) -> decimal.Decimal:
    if isinstance(value, Decimal128):
        return value.to_decimal()
    if isinstance(value, float):
        # MongoDB converts a double to decimal with 15 significant digits.
        if math.isnan(value) or math.isinf(value):
            return decimal.Decimal(value)
        return decimal.Decimal(format(value, ".15g"))
    return decimal.Decimal(int(value))


def to_float(value: Any) -> float:
    if isinstance(value, Decimal128):
        return float(value.to_decimal())
    return float(value)


def make_decimal(value: decimal.Decimal) -> Decimal128:
    return Decimal128(DECIMAL_CONTEXT.create_decimal(value))


def fit_integer(value: int, at_least: int) -> Any:
    """An exact integer result as int32 or Int64 (not narrower than `at_least`), else a double."""
    if at_least == INT and INT32_MIN <= value <= INT32_MAX:
        return value
    if INT64_MIN <= value <= INT64_MAX:
        return Int64(value)
    return float(value)


def make(result_kind: int, value: Any) -> Any:
    """`value` (a Python number) as a BSON number of `result_kind` (promoted if it overflows)."""
    if result_kind == DECIMAL:
        return make_decimal(value if isinstance(value, decimal.Decimal) else to_decimal(value))
    if result_kind == DOUBLE:
        return float(value)
    return fit_integer(int(value), result_kind)


def widest(*values: Any) -> int:
    kinds = [kind(v) for v in values]
    return max(k for k in kinds if k is not None)


def add(a: Any, b: Any) -> Any:
    k = widest(a, b)
    if k == DECIMAL:
        return make_decimal(DECIMAL_CONTEXT.add(to_decimal(a), to_decimal(b)))
    if k == DOUBLE:
        return to_float(a) + to_float(b)
    return fit_integer(int(a) + int(b), k)


def subtract(a: Any, b: Any) -> Any:
    k = widest(a, b)
    if k == DECIMAL:
        return make_decimal(DECIMAL_CONTEXT.subtract(to_decimal(a), to_decimal(b)))
    if k == DOUBLE:
        return to_float(a) - to_float(b)
    return fit_integer(int(a) - int(b), k)


def multiply(a: Any, b: Any) -> Any:
    k = widest(a, b)
    if k == DECIMAL:
        return make_decimal(DECIMAL_CONTEXT.multiply(to_decimal(a), to_decimal(b)))
    if k == DOUBLE:
        return to_float(a) * to_float(b)
    return fit_integer(int(a) * int(b), k)


def divide(a: Any, b: Any) -> Any:
    """a / b: a double unless either is Decimal128; the caller rejects a zero divisor."""
    if widest(a, b) == DECIMAL:
        return make_decimal(DECIMAL_CONTEXT.divide(to_decimal(a), to_decimal(b)))
    return to_float(a) / to_float(b)


def mod(a: Any, b: Any) -> Any:
    """The remainder with the dividend's sign (C's fmod); the caller rejects a zero divisor."""
    k = widest(a, b)
    if k == DECIMAL:
        return make_decimal(DECIMAL_CONTEXT.remainder(to_decimal(a), to_decimal(b)))
    if k == DOUBLE:
        return math.fmod(to_float(a), to_float(b))
    x, y = int(a), int(b)
    r = abs(x) % abs(y)
    return fit_integer(-r if x < 0 else r, k)


def integral(value: Any) -> int | None:
    """`value` as an exact Python int when it is a finite whole number, else None."""
    if isinstance(value, Decimal128):
        number = value.to_decimal()
        if not number.is_finite() or number != number.to_integral_value():
            return None
        # A whole Decimal128 can be 10**6144: far past any index, so clamp it cheaply.
        if number.adjusted() > 30:
            return INT64_MAX if number > 0 else INT64_MIN
        return int(number)
    if isinstance(value, float):
        if not math.isfinite(value) or value != math.floor(value):
            return None
        return int(value)
    return int(value)


def clamped_int(value: Any) -> int:
    """A number truncated to an int within Int64's range (NaN is 0), for string positions."""
    as_float = to_float(value)
    if math.isnan(as_float):
        return 0
    return int(max(min(as_float, float(INT64_MAX)), float(INT64_MIN)))


def float_pow(base: float, exponent: float) -> float:
    """C's pow() as MongoDB gets it: overflow is an infinity and a domain error NaN, never an
    exception (Python's `**` raises OverflowError, or returns a complex number)."""
    try:
        return math.pow(base, exponent)
    except OverflowError:
        odd = exponent == math.floor(exponent) and math.fmod(exponent, 2.0) != 0.0
        return -math.inf if base < 0 and odd else math.inf
    except ValueError:
        if base == 0.0 and exponent < 0:
            odd = exponent == math.floor(exponent) and math.fmod(exponent, 2.0) != 0.0
            return -math.inf if math.copysign(1.0, base) < 0 and odd else math.inf
        return math.nan


def integer_pow(base: int, exponent: int, at_least: int) -> Any:
    """base ** exponent for a non-negative exponent: an int32/Int64 when the exact result fits
    (not narrower than `at_least`), else a double. The exact power is only computed when it
    fits in 64 bits, so a large exponent never builds a huge Python int."""
    magnitude = abs(base)
    if magnitude <= 1 or exponent == 0:
        result = 1 if exponent == 0 else (base if exponent % 2 else magnitude)
        return fit_integer(result, at_least)
    if exponent * math.log2(magnitude) <= 64:
        return fit_integer(base**exponent, at_least)
    return float_pow(float(base), float(exponent))


def is_zero(value: Any) -> bool:
    if isinstance(value, Decimal128):
        return value.to_decimal().is_zero()
    return bool(value == 0)


def negate(value: Any) -> Any:
    k = kind(value)
    if k == DECIMAL:
        return make_decimal(-to_decimal(value))
    if k == DOUBLE:
        return -value
    return fit_integer(-int(value), k or INT)


def to_python(value: Any) -> int | float | decimal.Decimal:
    """A plain Python number for comparisons and rounding."""
    if isinstance(value, Decimal128):
        return value.to_decimal()
    if isinstance(value, float):
        return value
    return int(value)

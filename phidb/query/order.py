"""BSON's cross-type comparison order, as MongoDB compares values, and an order-preserving,
prefix-free byte encoding of it (`sort_key`) that sorts, compares and indexes values
(the SQLite engine stores index keys in this encoding)."""

from __future__ import annotations

import calendar
import datetime
import math
import re
import uuid
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from bson.binary import Binary
from bson.code import Code
from bson.datetime_ms import DatetimeMS
from bson.dbref import DBRef
from bson.decimal128 import Decimal128
from bson.max_key import MaxKey
from bson.min_key import MinKey
from bson.objectid import ObjectId
from bson.regex import Regex
from bson.timestamp import Timestamp

# MongoDB's canonical type numbers: values of different types compare by these first.
MINKEY = -1
UNDEFINED = 0  # also what an empty array sorts as
NULL = 5
NUMBER = 10
STRING = 15
OBJECT = 20
ARRAY = 25
BINDATA = 30
OBJECTID = 35
BOOLEAN = 40
DATE = 45
TIMESTAMP = 47
REGEX = 50
CODE = 60
CODE_WITH_SCOPE = 65
MAXKEY = 127

# A key starts with one tag byte per canonical type.  Tags start at 1 so that 0x00 is free
# to end an embedded document or array: a shorter document then sorts first.
_TAG_OFFSET = 2
_END = b"\x00"

# Number bodies start with a class byte, so NaN < -inf < negatives < 0 < positives < +inf.
_NAN, _NEG_INF, _NEG, _ZERO, _POS, _POS_INF = (bytes([c]) for c in range(1, 7))
_EXPONENT_BIAS = 1 << 15  # decimal exponents of Decimal128 stay within +-6200
_INVERT = bytes(range(255, -1, -1))
_PAIRS = {f"{n:02d}": n + 1 for n in range(100)}  # two decimal digits -> one byte (1..100)

# bson spells regex flags in this order.
_REGEX_FLAGS = (
    (re.IGNORECASE, "i"),
    (re.LOCALE, "l"),
    (re.MULTILINE, "m"),
    (re.DOTALL, "s"),
    (re.UNICODE, "u"),
    (re.VERBOSE, "x"),
)


def _tag(canonical: int) -> bytes:
    return bytes([canonical + _TAG_OFFSET])


TAG_NULL = _tag(NULL)
TAG_UNDEFINED = _tag(UNDEFINED)


def canonical_type(value: Any) -> int:
    """MongoDB's canonical type number of a decoded BSON value."""
    # bool before int (bool subclasses int), Code before str (Code subclasses str),
    # Binary before any bytes check.
    if value is None:
        return NULL
    if isinstance(value, bool):
        return BOOLEAN
    if isinstance(value, (int, float, Decimal128)):
        return NUMBER
    if isinstance(value, Code):
        return CODE if value.scope is None else CODE_WITH_SCOPE
    if isinstance(value, str):
        return STRING
    if isinstance(value, (Mapping, DBRef)):
        return OBJECT
    if isinstance(value, (list, tuple)):
        return ARRAY
    if isinstance(value, (bytes, uuid.UUID)):
        return BINDATA
    if isinstance(value, ObjectId):
        return OBJECTID
    if isinstance(value, (datetime.datetime, DatetimeMS)):
        return DATE
    if isinstance(value, Timestamp):
        return TIMESTAMP
    if isinstance(value, (Regex, re.Pattern)) or _is_pattern(value):
        return REGEX
    if isinstance(value, MinKey):
        return MINKEY
    if isinstance(value, MaxKey):
        return MAXKEY
    raise TypeError(f"not a BSON value: {type(value).__name__}")


def _is_pattern(value: Any) -> bool:
    # Patterns of the `regex` module: same shape as re.Pattern, different class.
    return type(value).__name__ == "Pattern" and hasattr(value, "pattern")


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float, Decimal128)) and not isinstance(value, bool)


def is_nan(value: Any) -> bool:
    if isinstance(value, float):
        return math.isnan(value)
    if isinstance(value, Decimal128):
        return value.to_decimal().is_nan()
    return False


def sort_key(value: Any) -> bytes:
    """Bytes that compare (as bytes) the way MongoDB compares the values; no key is a
    prefix of another, and numerically equal numbers of any type share one key."""
    canonical = canonical_type(value)
    return _tag(canonical) + _body(canonical, value)


def compare(a: Any, b: Any) -> int:
    """-1, 0 or 1 as MongoDB orders `a` and `b` (simple binary collation)."""
    ka, kb = sort_key(a), sort_key(b)
    return (ka > kb) - (ka < kb)


def descending_key(key: bytes) -> bytes:
    """Reverse the order of prefix-free keys (for descending index fields)."""
    return key.translate(_INVERT)


def type_bracket(value: Any) -> tuple[bytes, bytes]:
    """Keys (lo, hi) with lo <= sort_key(v) < hi for every v of `value`'s canonical type,
    and no key of another type in between: the range a type-bracketed operator scans."""
    tag = canonical_type(value) + _TAG_OFFSET
    return bytes([tag]), bytes([tag + 1])


def _body(canonical: int, value: Any) -> bytes:
    if canonical == NUMBER:
        return _number_body(value)
    if canonical == STRING or canonical == CODE:
        return _string_body(value)
    if canonical == OBJECT:
        return _object_body(value.as_doc() if isinstance(value, DBRef) else value)
    if canonical == ARRAY:
        return b"".join([sort_key(item) for item in value]) + _END
    if canonical == NULL or canonical == MINKEY or canonical == MAXKEY:
        return b""
    if canonical == BOOLEAN:
        return b"\x01" if value else b"\x00"
    if canonical == OBJECTID:
        return bytes(value.binary)
    if canonical == DATE:
        return _signed64(_datetime_ms(value))
    if canonical == BINDATA:
        return _binary_body(value)
    if canonical == TIMESTAMP:
        time_part: int = value.time
        return time_part.to_bytes(4, "big") + int(value.inc).to_bytes(4, "big")
    if canonical == REGEX:
        pattern, flags = _regex_parts(value)
        return _string_body(pattern) + _string_body(flags)
    # Code with scope: the code, then the scope document.
    return _string_body(value) + _object_body(value.scope)


def _string_body(text: str) -> bytes:
    # Escape NUL as 00 FF and end with 00 00: the string stays prefix-free and "a" < "a\0".
    return text.encode("utf-8", "surrogatepass").replace(b"\x00", b"\x00\xff") + b"\x00\x00"


def _object_body(doc: Mapping[str, Any]) -> bytes:
    # MongoDB compares documents element by element: value type, field name, value.
    parts = []
    for name, item in doc.items():
        canonical = canonical_type(item)
        parts.append(_tag(canonical) + _string_body(name) + _body(canonical, item))
    parts.append(_END)
    return b"".join(parts)


def _number_body(value: Any) -> bytes:
    # A finite non-zero number is sign * 0.DIGITS * 10**exponent with no trailing zero in
    # DIGITS: larger exponent first, then DIGITS compared as a string.  Every type goes
    # through exact integer arithmetic, so 1, Int64(1), 1.0 and Decimal128("1.0") agree.
    if isinstance(value, int):
        if value == 0:
            return _ZERO
        negative = value < 0
        digits = str(-value if negative else value)
        exponent = len(digits)
    elif isinstance(value, float):
        if value != value:
            return _NAN
        if value == 0.0:
            return _ZERO
        if math.isinf(value):
            return _POS_INF if value > 0 else _NEG_INF
        numerator, denominator = value.as_integer_ratio()
        negative = numerator < 0
        twos = denominator.bit_length() - 1  # denominator is 2**twos
        digits = str(abs(numerator) * 5**twos)  # value == digits / 10**twos
        exponent = len(digits) - twos
    else:
        return _decimal_body(value.to_decimal())
    return _finite_body(negative, digits, exponent)


def _decimal_body(number: Decimal) -> bytes:
    if number.is_nan():
        return _NAN
    if number.is_infinite():
        return _NEG_INF if number < 0 else _POS_INF
    if number.is_zero():
        return _ZERO
    sign, digit_tuple, exponent = number.as_tuple()
    assert isinstance(exponent, int)
    digits = "".join(map(str, digit_tuple)).lstrip("0")
    return _finite_body(bool(sign), digits, len(digits) + exponent)


def _finite_body(negative: bool, digits: str, exponent: int) -> bytes:
    digits = digits.rstrip("0")
    if len(digits) % 2:
        digits += "0"  # a real trailing zero was stripped, so padding cannot collide
    pairs = bytes([_PAIRS[digits[i : i + 2]] for i in range(0, len(digits), 2)])
    magnitude = (exponent + _EXPONENT_BIAS).to_bytes(2, "big") + pairs + _END
    if negative:
        return _NEG + magnitude.translate(_INVERT)
    return _POS + magnitude


def _signed64(number: int) -> bytes:
    return ((number + (1 << 63)) & 0xFFFFFFFFFFFFFFFF).to_bytes(8, "big")


def _datetime_ms(value: datetime.datetime | DatetimeMS) -> int:
    if isinstance(value, DatetimeMS):
        return int(value)
    seconds = calendar.timegm(value.utctimetuple())
    return seconds * 1000 + value.microsecond // 1000


def _binary_body(value: bytes | uuid.UUID) -> bytes:
    # MongoDB compares binData by length, then subtype, then bytes.
    if isinstance(value, uuid.UUID):
        data, subtype = value.bytes, 4
    else:
        data, subtype = bytes(value), value.subtype if isinstance(value, Binary) else 0
    return len(data).to_bytes(4, "big") + bytes([subtype]) + data


def _regex_parts(value: Any) -> tuple[str, str]:
    pattern = value.pattern
    if isinstance(pattern, bytes):
        pattern = pattern.decode("utf-8")
    flags = value.flags
    if not isinstance(value, Regex):
        # A compiled Python pattern always carries re.UNICODE for str patterns; bson drops
        # it only when encoding, so strip it the same way here.
        flags = value.flags & ~re.UNICODE
    return pattern, "".join(letter for bit, letter in _REGEX_FLAGS if flags & bit)

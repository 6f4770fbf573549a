"""String expression operators: `$concat`, case, substrings, `$split`, trimming, searching."""

from __future__ import annotations

from typing import Any

from phidb.query import limits, numbers
from phidb.query.expr_core import (
    Scope,
    eval_args,
    evaluate_in,
    fail,
    nullish,
    operator,
    type_name,
)

# The characters `$trim` removes by default: whitespace and the null character.
_WHITESPACE = (
    "\x00 \t\n\x0b\x0c\r\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007"
    "\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)


def string_of(name: str, value: Any) -> str:
    """The coercion `$toLower`, `$toUpper` and `$substr` apply: null is '', numbers print."""
    from phidb.query.expr_types import to_string

    if nullish(value):
        return ""
    if isinstance(value, str):
        return value
    if numbers.is_number(value) or type_name(value) in ("date", "timestamp"):
        result = to_string(value)
        assert isinstance(result, str)
        return result
    raise fail(16007, f"can't convert from BSON type {type_name(value)} to String")


@operator("$concat")
def _concat(args: Any, scope: Scope) -> Any:
    parts = []
    for value in eval_args("$concat", args, scope):
        if nullish(value):
            return None
        if not isinstance(value, str):
            raise fail(16702, f"$concat only supports strings, not {type_name(value)}")
        parts.append(value)
    length = sum(len(part) for part in parts)
    if length > limits.MAX_VALUE_BYTES:
        # Refused before joining: a $reduce that doubles a string would otherwise run to GBs.
        raise limits.too_large(length)
    return "".join(parts)


@operator("$toLower")
def _to_lower(args: Any, scope: Scope) -> Any:
    (value,) = eval_args("$toLower", args, scope, exactly=1)
    # MongoDB changes the case of ASCII letters only.
    return "".join(c.lower() if c.isascii() else c for c in string_of("$toLower", value))


@operator("$toUpper")
def _to_upper(args: Any, scope: Scope) -> Any:
    (value,) = eval_args("$toUpper", args, scope, exactly=1)
    return "".join(c.upper() if c.isascii() else c for c in string_of("$toUpper", value))


def _integer_argument(name: str, which: str, value: Any) -> int:
    if numbers.kind(value) is None:
        raise fail(
            34450 if which == "starting index" else 34451,
            f"{name}: {which} must be a numeric type (is BSON type {type_name(value)})",
        )
    return numbers.clamped_int(value)


@operator("$substr", "$substrBytes")
def _substr_bytes(args: Any, scope: Scope) -> Any:
    value, start, length = eval_args("$substrBytes", args, scope, exactly=3)
    data = string_of("$substrBytes", value).encode()
    if numbers.kind(start) is None:
        raise fail(
            16034,
            f"$substrBytes: starting index must be a numeric type (is BSON type "
            f"{type_name(start)})",
        )
    if numbers.kind(length) is None:
        raise fail(
            16035, f"$substrBytes: length must be a numeric type (is BSON type {type_name(length)})"
        )
    begin = numbers.clamped_int(start)
    count = numbers.clamped_int(length)
    if begin < 0:
        begin = len(data)
    begin = min(begin, len(data))
    end = len(data) if count < 0 else min(begin + count, len(data))
    if _is_continuation(data, begin):
        raise fail(
            28656, "$substrBytes:  Invalid range, starting index is a UTF-8 continuation byte."
        )
    if _is_continuation(data, end):
        raise fail(
            28657,
            "$substrBytes:  Invalid range, ending index is in the middle of a UTF-8 character.",
        )
    return data[begin:end].decode()


def _is_continuation(data: bytes, index: int) -> bool:
    return index < len(data) and (data[index] & 0xC0) == 0x80


@operator("$substrCP")
def _substr_cp(args: Any, scope: Scope) -> Any:
    value, start, length = eval_args("$substrCP", args, scope, exactly=3)
    text = string_of("$substrCP", value)
    if numbers.kind(start) is None:
        raise fail(
            34450,
            f"$substrCP: starting index must be a numeric type (is BSON type {type_name(start)})",
        )
    if numbers.kind(length) is None:
        raise fail(
            34452, f"$substrCP: length must be a numeric type (is BSON type {type_name(length)})"
        )
    begin, count = numbers.integral(start), numbers.integral(length)
    if begin is None:
        raise fail(
            34451, "$substrCP: starting index cannot be represented as a 32-bit integral value"
        )
    if count is None:
        raise fail(34453, "$substrCP: length cannot be represented as a 32-bit integral value")
    if begin < 0:
        raise fail(34455, f"$substrCP: starting index must be non-negative (got: {int(begin)})")
    if count < 0:
        raise fail(34454, "$substrCP: length must be a nonnegative integer.")
    return text[int(begin) : int(begin) + int(count)]


@operator("$strLenCP")
def _str_len_cp(args: Any, scope: Scope) -> Any:
    (value,) = eval_args("$strLenCP", args, scope, exactly=1)
    if not isinstance(value, str):
        raise fail(34471, f"$strLenCP requires a string argument, found: {type_name(value)}")
    return len(value)


@operator("$strLenBytes")
def _str_len_bytes(args: Any, scope: Scope) -> Any:
    (value,) = eval_args("$strLenBytes", args, scope, exactly=1)
    if not isinstance(value, str):
        raise fail(34473, f"$strLenBytes requires a string argument, found: {type_name(value)}")
    return len(value.encode())


@operator("$split")
def _split(args: Any, scope: Scope) -> Any:
    value, delimiter = eval_args("$split", args, scope, exactly=2)
    if nullish(value) or nullish(delimiter):
        return None
    if not isinstance(value, str):
        raise fail(
            40085,
            f"$split requires an expression that evaluates to a string as a first "
            f"argument, found: {type_name(value)}",
        )
    if not isinstance(delimiter, str):
        raise fail(
            40086,
            f"$split requires an expression that evaluates to a string as a second "
            f"argument, found: {type_name(delimiter)}",
        )
    if delimiter == "":
        raise fail(40087, "$split requires a non-empty separator")
    return value.split(delimiter)


def _trim(name: str, left: bool, right: bool, args: Any, scope: Scope) -> Any:
    if not isinstance(args, dict):
        raise fail(
            50696, f"{name} only supports an object as an argument, found: {type_name(args)}"
        )
    for key in args:
        if key not in ("input", "chars"):
            raise fail(50694, f"{name} found an unknown argument: {key}")
    if "input" not in args:
        raise fail(50695, f"{name} requires an 'input' field")
    value = evaluate_in(args["input"], scope)
    chars = evaluate_in(args["chars"], scope) if "chars" in args else _WHITESPACE
    if nullish(value) or nullish(chars):
        return None
    if not isinstance(value, str):
        raise fail(
            50699,
            f"{name} requires its input to be a string, got {value!r} (of type "
            f"{type_name(value)}) instead.",
        )
    if not isinstance(chars, str):
        raise fail(
            50700,
            f"{name} requires 'chars' to be a string, got {chars!r} (of type "
            f"{type_name(chars)}) instead.",
        )
    if left and right:
        return value.strip(chars)
    return value.lstrip(chars) if left else value.rstrip(chars)


@operator("$trim")
def _trim_both(args: Any, scope: Scope) -> Any:
    return _trim("$trim", True, True, args, scope)


@operator("$ltrim")
def _ltrim(args: Any, scope: Scope) -> Any:
    return _trim("$ltrim", True, False, args, scope)


@operator("$rtrim")
def _rtrim(args: Any, scope: Scope) -> Any:
    return _trim("$rtrim", False, True, args, scope)


@operator("$indexOfCP")
def _index_of_cp(args: Any, scope: Scope) -> Any:
    values = eval_args("$indexOfCP", args, scope, at_least=2)
    text, token = values[0], values[1]
    if nullish(text):
        return None
    if not isinstance(text, str):
        raise fail(
            40093, f"$indexOfCP requires a string as the first argument, found: {type_name(text)}"
        )
    if not isinstance(token, str):
        raise fail(
            40094, f"$indexOfCP requires a string as the second argument, found: {type_name(token)}"
        )
    start = numbers.clamped_int(values[2]) if len(values) > 2 else 0
    end = numbers.clamped_int(values[3]) if len(values) > 3 else len(text)
    return text.find(token, start, end)


@operator("$strcasecmp")
def _strcasecmp(args: Any, scope: Scope) -> Any:
    a, b = eval_args("$strcasecmp", args, scope, exactly=2)
    left = string_of("$strcasecmp", a).upper()
    right = string_of("$strcasecmp", b).upper()
    return (left > right) - (left < right)

"""Query filters: `compile_filter(spec)` parses a MongoDB filter once, raising MongoDB's
errors for malformed ones, into a `Matcher` that tells whether a document matches."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import regex
from bson.code import Code
from bson.datetime_ms import DatetimeMS
from bson.dbref import DBRef
from bson.decimal128 import Decimal128
from bson.int64 import Int64
from bson.max_key import MaxKey
from bson.min_key import MinKey
from bson.objectid import ObjectId
from bson.regex import Regex
from bson.timestamp import Timestamp

from phidb.errors import BAD_VALUE, MAX_TIME_MS_EXPIRED, TYPE_MISMATCH, MongoError
from phidb.query.order import (
    MAXKEY,
    MINKEY,
    NUMBER,
    canonical_type,
    compare,
    is_nan,
    is_number,
    sort_key,
)
from phidb.query.paths import MISSING, lookup, split

Predicate = Callable[[Any], bool]

# Without maxTimeMS a single regex match still stops after this long, so one pathological
# pattern cannot pin a worker thread forever.
REGEX_TIMEOUT_SECONDS = 10.0

INVALID_REGEX = 51091
INVALID_REGEX_FLAG = 51108
REGEX_OPTIONS_TWICE = 51075
NOT_IMPLEMENTED = 238

_LOGICAL = ("$and", "$or", "$nor")
_UNSUPPORTED = {
    "$near",
    "$nearSphere",
    "$geoWithin",
    "$geoIntersects",
    "$within",
    "$bitsAllSet",
    "$bitsAllClear",
    "$bitsAnySet",
    "$bitsAnyClear",
    "$jsonSchema",
    "$where",
}

TYPE_ALIASES: dict[str, int] = {
    "double": 1,
    "string": 2,
    "object": 3,
    "array": 4,
    "binData": 5,
    "undefined": 6,
    "objectId": 7,
    "bool": 8,
    "date": 9,
    "null": 10,
    "regex": 11,
    "dbPointer": 12,
    "javascript": 13,
    "symbol": 14,
    "javascriptWithScope": 15,
    "int": 16,
    "timestamp": 17,
    "long": 18,
    "decimal": 19,
    "minKey": -1,
    "maxKey": 127,
}
_NUMBER_TYPES = frozenset({1, 16, 18, 19})
_REGEX_FLAGS = {"i": regex.IGNORECASE, "m": regex.MULTILINE, "s": regex.DOTALL, "x": regex.VERBOSE}


class Deadline(Protocol):
    """What the filter needs of `phidb.storage.engine.Deadline`."""

    def remaining(self) -> float | None: ...

    def check(self) -> None: ...


class Matcher:
    """A compiled filter: `matcher(doc)` is True when `doc` matches."""

    __slots__ = ("_predicate", "spec")

    def __init__(self, spec: Mapping[str, Any], predicate: Predicate) -> None:
        self.spec = spec
        self._predicate = predicate

    def __call__(self, doc: Any) -> bool:
        return self._predicate(doc)


def compile_filter(spec: Mapping[str, Any] | None, deadline: Deadline | None = None) -> Matcher:
    """Parse `spec`; MongoError (BadValue 2 and friends) if MongoDB would reject it."""
    if spec is None:
        spec = {}
    if not isinstance(spec, Mapping):
        raise MongoError(BAD_VALUE, "filter must be an object")
    return Matcher(spec, _Compiler(deadline).document(spec))


def bson_type(value: Any) -> int:
    """The BSON type number `$type` matches a value against."""
    if value is None:
        return 10
    if isinstance(value, bool):
        return 8
    if isinstance(value, Int64):
        return 18
    if isinstance(value, int):
        return 16 if -(2**31) <= value < 2**31 else 18
    if isinstance(value, float):
        return 1
    if isinstance(value, Decimal128):
        return 19
    if isinstance(value, Code):
        return 13 if value.scope is None else 15
    if isinstance(value, str):
        return 2
    if isinstance(value, (Mapping, DBRef)):
        return 3
    if isinstance(value, list):
        return 4
    if isinstance(value, ObjectId):
        return 7
    if isinstance(value, DatetimeMS):
        return 9
    if isinstance(value, Timestamp):
        return 17
    if isinstance(value, MinKey):
        return -1
    if isinstance(value, MaxKey):
        return 127
    return {
        30: 5,  # binData
        45: 9,  # date
        50: 11,  # regex
    }.get(canonical_type(value), 0)


def is_regex(value: Any) -> bool:
    return isinstance(value, (Regex, re.Pattern, regex.Pattern))


class _Op:
    """One operator on a path. `single` tests one value (for `$elemMatch` on elements);
    `matches` tests everything the path reached (MISSING, scalars, arrays)."""

    __slots__ = ("single", "matches")

    def __init__(self, single: Predicate, matches: Callable[[list[Any]], bool]) -> None:
        self.single = single
        self.matches = matches


def _leaf(single: Predicate, expand: bool = True) -> _Op:
    """An operator that matches when any reached value, or (with `expand`) any element of a
    reached array, passes `single`: MongoDB's implicit array matching."""

    def matches(values: list[Any]) -> bool:
        for value in values:
            if single(value):
                return True
            if expand and isinstance(value, list):
                for item in value:
                    if single(item):
                        return True
        return False

    return _Op(single, matches)


def _negate(op: _Op) -> _Op:
    return _Op(lambda v: not op.single(v), lambda values: not op.matches(values))


def _all_of(ops: list[_Op]) -> _Op:
    if len(ops) == 1:
        return ops[0]
    return _Op(
        lambda v: all(op.single(v) for op in ops),
        lambda values: all(op.matches(values) for op in ops),
    )


def _truthy(value: Any) -> bool:
    # $expr's truth: false, null, missing and numeric zero are false; all else is true.
    if value is None or value is False or value is MISSING:
        return False
    if is_number(value):
        return not (value.to_decimal().is_zero() if isinstance(value, Decimal128) else value == 0)
    return True


class _Compiler:
    def __init__(self, deadline: Deadline | None) -> None:
        self.deadline = deadline

    # -- documents and logical operators ---------------------------------------------

    def document(self, spec: Mapping[str, Any]) -> Predicate:
        predicates = [p for name, value in spec.items() if (p := self.element(name, value))]
        if not predicates:
            return lambda doc: True
        if len(predicates) == 1:
            return predicates[0]
        return lambda doc: all(p(doc) for p in predicates)

    def element(self, name: str, value: Any) -> Predicate | None:
        if not name.startswith("$"):
            return self.field(name, value)
        if name in _LOGICAL:
            children = self.logical_children(name, value)
            if name == "$and":
                return lambda doc: all(p(doc) for p in children)
            if name == "$or":
                return lambda doc: any(p(doc) for p in children)
            return lambda doc: not any(p(doc) for p in children)
        if name == "$comment":
            return None
        if name == "$expr":
            return self.expr(value)
        if name == "$alwaysTrue":
            return lambda doc: True
        if name == "$alwaysFalse":
            return lambda doc: False
        if name == "$text":
            raise MongoError(27, "text index required for $text query")
        if name in _UNSUPPORTED:
            raise MongoError(NOT_IMPLEMENTED, f"{name} is not supported")
        raise MongoError(BAD_VALUE, f"unknown top level operator: {name}")

    def logical_children(self, name: str, value: Any) -> list[Predicate]:
        if not isinstance(value, list):
            raise MongoError(BAD_VALUE, f"{name} must be an array")
        if not value:
            raise MongoError(BAD_VALUE, "$and/$or/$nor must be a nonempty array")
        children = []
        for child in value:
            if not isinstance(child, Mapping):
                raise MongoError(BAD_VALUE, "$or/$and/$nor entries need to be full objects")
            children.append(self.document(child))
        return children

    def expr(self, expression: Any) -> Predicate:
        # Imported here: the expression evaluator is a sibling module that imports heavily.
        from phidb.query.expressions import MISSING as EXPR_MISSING
        from phidb.query.expressions import evaluate

        deadline = self.deadline

        def predicate(doc: Any) -> bool:
            value = evaluate(expression, doc, deadline=deadline)
            return value is not EXPR_MISSING and _truthy(value)

        return predicate

    # -- one field ------------------------------------------------------------------

    def field(self, path: str, value: Any) -> Predicate:
        parts = split(path)
        if _is_operator_document(value):
            op = self.operators(value)
        elif is_regex(value):
            op = _leaf(self.regex_test(value, None))
        else:
            op = _leaf(_equals(value))
        matches = op.matches
        return lambda doc: matches(lookup(doc, parts))

    def operators(self, spec: Mapping[str, Any]) -> _Op:
        ops: list[_Op] = []
        if "$options" in spec and "$regex" not in spec:
            raise MongoError(BAD_VALUE, "$options needs a $regex")
        for name, arg in spec.items():
            if name == "$options":
                continue
            if name == "$regex":
                ops.append(_leaf(self.regex_test(arg, spec.get("$options"))))
            else:
                ops.append(self.operator(name, arg))
        return _all_of(ops)

    def operator(self, name: str, arg: Any) -> _Op:
        if name == "$eq":
            return _leaf(_equals(arg))
        if name == "$ne":
            return _negate(_leaf(_equals(arg)))
        if name in _COMPARISONS:
            return _leaf(_comparison(name, arg))
        if name == "$in":
            return _leaf(self.in_test(name, arg))
        if name == "$nin":
            return _negate(_leaf(self.in_test(name, arg)))
        if name == "$exists":
            present = _leaf(lambda v: v is not MISSING, expand=False)
            return present if _truthy(arg) else _negate(present)
        if name == "$type":
            return _leaf(_type_test(arg))
        if name == "$size":
            size = _size_argument(arg)
            return _leaf(lambda v: isinstance(v, list) and len(v) == size, expand=False)
        if name == "$mod":
            return _leaf(_mod_test(arg))
        if name == "$all":
            return self.all(arg)
        if name == "$elemMatch":
            return self.elem_match(arg)
        if name == "$not":
            return self.not_(arg)
        if name in _UNSUPPORTED:
            raise MongoError(NOT_IMPLEMENTED, f"{name} is not supported")
        raise MongoError(BAD_VALUE, f"unknown operator: {name}")

    def in_test(self, name: str, arg: Any) -> Predicate:
        if not isinstance(arg, list):
            raise MongoError(BAD_VALUE, f"{name} needs an array")
        keys: set[bytes] = set()
        regexes: list[Predicate] = []
        for item in arg:
            if is_regex(item):
                regexes.append(self.regex_test(item, None))
            elif _is_operator_document(item):
                raise MongoError(BAD_VALUE, "cannot nest $ under $in")
            else:
                keys.add(sort_key(item))
        null_key = sort_key(None)
        matches_missing = null_key in keys

        def single(value: Any) -> bool:
            if value is MISSING:
                return matches_missing
            if sort_key(value) in keys:
                return True
            return any(test(value) for test in regexes)

        return single

    def all(self, arg: Any) -> _Op:
        if not isinstance(arg, list):
            raise MongoError(BAD_VALUE, "$all needs an array")
        if not arg:
            return _Op(lambda v: False, lambda values: False)
        elem_matches = [_is_elem_match(item) for item in arg]
        if any(elem_matches):
            if not all(elem_matches):
                raise MongoError(BAD_VALUE, "$all/$elemMatch has to be consistent")
            return _all_of([self.elem_match(item["$elemMatch"]) for item in arg])
        ops = []
        for item in arg:
            if _is_operator_document(item):
                raise MongoError(BAD_VALUE, "no $ expressions in $all")
            test = self.regex_test(item, None) if is_regex(item) else _equals(item)
            ops.append(_leaf(test))
        return _all_of(ops)

    def elem_match(self, arg: Any) -> _Op:
        if not isinstance(arg, Mapping):
            raise MongoError(BAD_VALUE, "$elemMatch needs an Object")
        first = next(iter(arg), "")
        if first.startswith("$") and first not in _LOGICAL and first not in ("$expr", "$where"):
            # {$elemMatch: {$gt: 1, $lt: 5}}: the operators apply to each element itself.
            element_test = self.operators(arg).single
        else:
            document = self.document(arg)

            def element_test(item: Any) -> bool:
                if isinstance(item, list):
                    item = {str(i): v for i, v in enumerate(item)}
                return isinstance(item, Mapping) and document(item)

        return _leaf(
            lambda v: isinstance(v, list) and any(element_test(item) for item in v),
            expand=False,
        )

    def not_(self, arg: Any) -> _Op:
        if is_regex(arg):
            return _negate(_leaf(self.regex_test(arg, None)))
        if not isinstance(arg, Mapping):
            raise MongoError(BAD_VALUE, "$not needs a regex or a document")
        if not arg:
            raise MongoError(BAD_VALUE, "$not cannot be empty")
        for name in arg:
            if not name.startswith("$"):
                raise MongoError(BAD_VALUE, f"unknown operator: {name}")
        return _negate(self.operators(arg))

    # -- regular expressions --------------------------------------------------------

    def regex_test(self, pattern: Any, options: Any) -> Predicate:
        compiled = _compile_regex(pattern, options)
        deadline = self.deadline
        pattern_text, flag_letters = _regex_source(pattern, options)

        def single(value: Any) -> bool:
            if type(value) is str:
                return _search(compiled, value, deadline)
            if is_regex(value):
                # A stored regex matches when pattern and flags are the same.
                return _regex_source(value, None) == (pattern_text, flag_letters)
            return False

        return single


def _is_operator_document(value: Any) -> bool:
    if not isinstance(value, Mapping) or not value:
        return False
    first = next(iter(value))
    # {$ref, $id, $db} is a DBRef written out as a document: an ordinary value.
    return isinstance(first, str) and first.startswith("$") and first not in ("$ref", "$id")


def _is_elem_match(value: Any) -> bool:
    return isinstance(value, Mapping) and next(iter(value), None) == "$elemMatch"


# -- equality and comparison --------------------------------------------------------------


def _equals(target: Any) -> Predicate:
    """MongoDB's equality: BSON types compared in canonical order, numbers by value,
    documents field by field in order; null also matches a missing field."""
    if target is None:
        return lambda v: v is None or v is MISSING
    if type(target) is str:
        return lambda v: type(v) is str and v == target
    if type(target) in (int, float, Int64) and not is_nan(target):
        target_key = sort_key(target)

        def number_equals(v: Any) -> bool:
            kind = type(v)
            if kind is int or kind is float or kind is Int64:
                return bool(v == target)
            return kind is Decimal128 and sort_key(v) == target_key

        return number_equals
    key = sort_key(target)
    return lambda v: v is not MISSING and sort_key(v) == key


_COMPARISONS: dict[str, Callable[[int], bool]] = {
    "$lt": lambda c: c < 0,
    "$lte": lambda c: c <= 0,
    "$gt": lambda c: c > 0,
    "$gte": lambda c: c >= 0,
}


def _comparison(name: str, target: Any) -> Predicate:
    """`$lt`/`$lte`/`$gt`/`$gte` are type-bracketed: a value of another canonical type never
    matches, except against MinKey or MaxKey. NaN equals only NaN and orders with nothing."""
    accept = _COMPARISONS[name]
    target_type = canonical_type(target)
    target_key = sort_key(target)
    inclusive = name in ("$lte", "$gte")
    target_nan = is_nan(target)
    if target_type == NUMBER and not target_nan and type(target) in (int, float, Int64):
        # The common case, kept free of key encoding: Python compares int and float exactly.
        fast: Callable[[Any], Any] = {
            "$lt": lambda v: v < target,
            "$lte": lambda v: v <= target,
            "$gt": lambda v: v > target,
            "$gte": lambda v: v >= target,
        }[name]

        def number_test(v: Any) -> bool:
            kind = type(v)
            if kind is int or kind is Int64 or (kind is float and v == v):
                return bool(fast(v))
            if kind is Decimal128:
                return not is_nan(v) and accept(compare(v, target))
            return False

        return number_test

    def single(value: Any) -> bool:
        if value is MISSING:
            value = None
        value_type = canonical_type(value)
        if value_type != target_type:
            if target_type in (MINKEY, MAXKEY):
                return accept(compare(value, target))
            return False
        if value_type == NUMBER and (target_nan or is_nan(value)):
            return inclusive and target_nan and is_nan(value)
        key = sort_key(value)
        return accept((key > target_key) - (key < target_key))

    return single


# -- $type, $size, $mod ---------------------------------------------------------------------


def _type_test(arg: Any) -> Predicate:
    codes: set[int] = set()
    for item in arg if isinstance(arg, list) else [arg]:
        codes |= _type_codes(item)
    if not codes:
        raise MongoError(BAD_VALUE, "$type must match at least one type")
    return lambda v: v is not MISSING and bson_type(v) in codes


def _type_codes(item: Any) -> set[int]:
    if isinstance(item, str):
        if item == "number":
            return set(_NUMBER_TYPES)
        if item not in TYPE_ALIASES:
            raise MongoError(BAD_VALUE, f"Unknown type name alias: {item}")
        return {TYPE_ALIASES[item]}
    if is_number(item):
        code = _whole_number(item)
        if code is None or code not in TYPE_ALIASES.values():
            raise MongoError(BAD_VALUE, f"Invalid numerical type code: {item}")
        return {code}
    raise MongoError(TYPE_MISMATCH, "type must be represented as a number or a string")


def _whole_number(value: Any) -> int | None:
    number = value.to_decimal() if isinstance(value, Decimal128) else value
    if isinstance(number, int):
        return int(number)
    if not math.isfinite(number) or number != int(number):
        return None
    return int(number)


def _size_argument(arg: Any) -> int:
    if not is_number(arg):
        raise MongoError(BAD_VALUE, "$size needs a number")
    size = _whole_number(arg)
    if size is None:
        raise MongoError(BAD_VALUE, "$size must be a whole number")
    if size < 0:
        raise MongoError(BAD_VALUE, "$size may not be negative")
    return size


def _mod_test(arg: Any) -> Predicate:
    if not isinstance(arg, list):
        raise MongoError(BAD_VALUE, "malformed mod, needs to be an array")
    if len(arg) < 2:
        raise MongoError(BAD_VALUE, "malformed mod, not enough elements")
    if len(arg) > 2:
        raise MongoError(BAD_VALUE, "malformed mod, too many elements")
    if not is_number(arg[0]):
        raise MongoError(BAD_VALUE, "malformed mod, divisor not a number")
    if not is_number(arg[1]):
        raise MongoError(BAD_VALUE, "malformed mod, remainder not a number")
    divisor, remainder = _truncate(arg[0]), _truncate(arg[1])
    if divisor is None:
        raise MongoError(BAD_VALUE, "malformed mod, divisor value is invalid")
    if remainder is None:
        raise MongoError(BAD_VALUE, "malformed mod, remainder value is invalid")
    if divisor == 0:
        raise MongoError(BAD_VALUE, "divisor cannot be 0")

    def single(value: Any) -> bool:
        if not is_number(value):
            return False
        dividend = _truncate(value)
        if dividend is None:
            return False
        # C's remainder: the sign follows the dividend.
        result = abs(dividend) % abs(divisor)
        return (result if dividend >= 0 else -result) == remainder

    return single


def _truncate(value: Any) -> int | None:
    """A number truncated toward zero, as MongoDB converts $mod operands; None for NaN/inf."""
    number = value.to_decimal() if isinstance(value, Decimal128) else value
    try:
        return int(number)
    except (ValueError, OverflowError):
        return None


# -- regular expressions --------------------------------------------------------------------


def _regex_source(pattern: Any, options: Any) -> tuple[str, str]:
    """(pattern, sorted option letters) from a string, bson Regex or compiled pattern."""
    if isinstance(pattern, str):
        if options is not None and not isinstance(options, str):
            raise MongoError(BAD_VALUE, "$options has to be a string")
        return pattern, "".join(sorted(options or ""))
    if is_regex(pattern):
        text = pattern.pattern
        if isinstance(text, bytes):
            text = text.decode("utf-8")
        letters = "".join(letter for letter, bit in _REGEX_FLAGS.items() if pattern.flags & bit)
        if options:
            if letters:
                raise MongoError(REGEX_OPTIONS_TWICE, "options set in both $regex and $options")
            if not isinstance(options, str):
                raise MongoError(BAD_VALUE, "$options has to be a string")
            letters = options
        return text, "".join(sorted(letters))
    raise MongoError(BAD_VALUE, "$regex has to be a string")


def _compile_regex(pattern: Any, options: Any) -> Any:
    # Limitation: patterns run on the `regex` module, not PCRE: the common syntax agrees, but
    # `\d`, `\w` and `\s` also match non-ASCII characters, and `\Z` means the very end.
    text, letters = _regex_source(pattern, options)
    flags = regex.V0
    for letter in letters:
        if letter == "u":
            continue  # MongoDB accepts and ignores it: patterns are always Unicode
        if letter not in _REGEX_FLAGS:
            raise MongoError(INVALID_REGEX_FLAG, f"invalid flag in regex options: {letter}")
        flags |= _REGEX_FLAGS[letter]
    if "\x00" in text:
        raise MongoError(INVALID_REGEX, "Regular expression cannot contain an embedded null byte")
    try:
        return regex.compile(text, flags)
    except regex.error as exc:
        raise MongoError(INVALID_REGEX, f"Regular expression is invalid: {exc}") from None


def _search(compiled: Any, text: str, deadline: Deadline | None) -> bool:
    timeout = REGEX_TIMEOUT_SECONDS
    if deadline is not None:
        remaining = deadline.remaining()
        if remaining is not None:
            if remaining <= 0:
                deadline.check()
                raise MongoError(MAX_TIME_MS_EXPIRED, "operation exceeded time limit")
            timeout = remaining
    try:
        # concurrent=True releases the GIL, so a slow match never stalls other connections.
        return compiled.search(text, concurrent=True, timeout=timeout) is not None
    except TimeoutError:
        raise MongoError(MAX_TIME_MS_EXPIRED, "operation exceeded time limit") from None

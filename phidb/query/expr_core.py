"""The aggregation expression evaluator's core: scopes, field paths, variables, operator table.

Operator families live in sibling `expr_*` modules and register themselves here with
`@operator`; `phidb.query.expressions` imports them all and is the public entry point.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable
from typing import Any, Protocol

from bson.binary import Binary
from bson.code import Code
from bson.dbref import DBRef
from bson.decimal128 import Decimal128
from bson.int64 import Int64
from bson.max_key import MaxKey
from bson.min_key import MinKey
from bson.objectid import ObjectId
from bson.regex import Regex
from bson.timestamp import Timestamp

from phidb.errors import MongoError
from phidb.query import numbers


class _Missing:
    """The value of a field that does not exist (and of `$$REMOVE`): not the same as null."""

    _instance: _Missing | None = None

    def __new__(cls) -> _Missing:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False


MISSING: Any = _Missing()

INVALID_PIPELINE_OPERATOR = 168


class Deadline(Protocol):
    """What the evaluator needs of `phidb.storage.engine.Deadline`: `check()` raises code 50."""

    def check(self) -> None: ...


# Loops over arrays ($map, $filter, $reduce, $range) check the operation's deadline this often.
CHECK_EVERY = 1024


class Scope:
    """What an expression sees: the root document, `$$CURRENT`, the user variables, and the
    operation's deadline (None when it has no time limit)."""

    __slots__ = ("root", "current", "variables", "deadline")

    def __init__(
        self,
        root: Any,
        variables: dict[str, Any] | None = None,
        deadline: Deadline | None = None,
    ) -> None:
        self.root = root
        self.deadline = deadline
        self.variables = dict(variables or {})
        self.current = self.variables.pop("CURRENT", root)
        if "ROOT" in self.variables:
            self.root = self.variables.pop("ROOT")

    def bind(self, names: dict[str, Any]) -> Scope:
        child = Scope.__new__(Scope)
        child.root = self.root
        child.current = self.current
        child.variables = {**self.variables, **names}
        child.deadline = self.deadline
        return child

    def tick(self, count: int) -> None:
        """Check the deadline every `CHECK_EVERY` iterations of an operator's loop."""
        if self.deadline is not None and count % CHECK_EVERY == 0:
            self.deadline.check()


Handler = Callable[[Any, Scope], Any]
OPERATORS: dict[str, Handler] = {}


def operator(*names: str) -> Callable[[Handler], Handler]:
    """Register `fn(args, scope)` as the expression operator(s) `names` (with their `$`)."""

    def register(fn: Handler) -> Handler:
        for name in names:
            OPERATORS[name] = fn
        return fn

    return register


def type_name(value: Any) -> str:
    """MongoDB's name for the BSON type of `value`, as `$type` returns it."""
    if value is MISSING:
        return "missing"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, Int64):
        return "long"
    if isinstance(value, int):
        return "int" if numbers.kind(value) == numbers.INT else "long"
    if isinstance(value, float):
        return "double"
    if isinstance(value, Decimal128):
        return "decimal"
    if isinstance(value, str):
        return "string"
    if isinstance(value, dict | DBRef):
        return "object"
    if isinstance(value, list | tuple):
        return "array"
    if isinstance(value, bytes | Binary):
        return "binData"
    if isinstance(value, ObjectId):
        return "objectId"
    if isinstance(value, datetime.datetime):
        return "date"
    if isinstance(value, Regex | re.Pattern):
        return "regex"
    if isinstance(value, Code):
        return "javascriptWithScope" if value.scope is not None else "javascript"
    if isinstance(value, Timestamp):
        return "timestamp"
    if isinstance(value, MinKey):
        return "minKey"
    if isinstance(value, MaxKey):
        return "maxKey"
    return "date" if type(value).__name__ == "DatetimeMS" else "object"


def truthy(value: Any) -> bool:
    """Aggregation truthiness: false, null, missing, undefined and numeric zero are false."""
    if value is MISSING or value is None or value is False:
        return False
    if value is True:
        return True
    if numbers.is_number(value):
        return not numbers.is_zero(value)
    return True


def nullish(value: Any) -> bool:
    return value is None or value is MISSING


def compare(a: Any, b: Any) -> int:
    """BSON cross-type order, with missing below null as the aggregation language has it."""
    if a is MISSING or b is MISSING:
        return (a is not MISSING) - (b is not MISSING)
    from phidb.query.order import compare as bson_compare

    return bson_compare(a, b)


def values_equal(a: Any, b: Any) -> bool:
    return compare(a, b) == 0


def fail(code: int, message: str) -> MongoError:
    return MongoError(code, message)


def arg_list(args: Any) -> list[Any]:
    """An operator's operand list; a single non-array operand is a list of one."""
    return args if isinstance(args, list) else [args]


def eval_args(
    name: str, args: Any, scope: Scope, exactly: int | None = None, at_least: int | None = None
) -> list[Any]:
    operands = arg_list(args)
    if exactly is not None and len(operands) != exactly:
        plural = "argument" if exactly == 1 else "arguments"
        raise fail(
            16020,
            f"Expression {name} takes exactly {exactly} {plural}. {len(operands)} were passed in.",
        )
    if at_least is not None and len(operands) < at_least:
        plural = "argument" if at_least == 1 else "arguments"
        raise fail(
            16020,
            f"Expression {name} takes at least {at_least} {plural}, "
            f"and {len(operands)} were passed in.",
        )
    return [evaluate_in(operand, scope) for operand in operands]


def split_path(path: str) -> list[str]:
    if path == "":
        raise fail(40352, "FieldPath cannot be constructed with empty string")
    parts = path.split(".")
    for part in parts:
        if part == "":
            raise fail(15998, "FieldPath field names may not be empty strings.")
        if part.startswith("$"):
            raise fail(16410, "FieldPath field names may not start with '$'.")
    return parts


def get_path(value: Any, parts: list[str]) -> Any:
    """Walk `parts` from `value` as the aggregation language does: arrays map over elements."""
    for index, part in enumerate(parts):
        if isinstance(value, dict):
            value = value.get(part, MISSING)
            if value is MISSING:
                return MISSING
        elif isinstance(value, list):
            return _array_path(value, parts[index:])
        else:
            return MISSING
    return value


def _array_path(array: list[Any], parts: list[str]) -> list[Any]:
    out: list[Any] = []
    for element in array:
        if isinstance(element, dict):
            found = get_path(element, parts)
            if found is not MISSING:
                out.append(found)
        elif isinstance(element, list):
            out.append(_array_path(element, parts))
    return out


def _variable(reference: str, scope: Scope) -> Any:
    name, _, rest = reference.partition(".")
    if name == "CURRENT":
        base = scope.current
    elif name == "ROOT":
        base = scope.root
    elif name == "REMOVE":
        return MISSING
    elif name == "NOW":
        now = datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
        base = now.replace(microsecond=now.microsecond // 1000 * 1000)
    elif name in scope.variables:
        base = scope.variables[name]
    else:
        if name == "" or not (name[0].isalpha() or name[0] == "_"):
            raise fail(
                16870,
                "variable names must start with a lowercase ASCII letter or a non-ASCII character",
            )
        raise fail(17276, f"Use of undefined variable: {name}")
    if not rest:
        return base
    return get_path(base, split_path(rest))


def evaluate_in(expr: Any, scope: Scope) -> Any:
    """The value of aggregation expression `expr` in `scope`; MISSING when it has none."""
    if isinstance(expr, str):
        if expr.startswith("$$"):
            return _variable(expr[2:], scope)
        if expr.startswith("$"):
            if expr == "$":
                raise fail(16872, "'$' by itself is not a valid FieldPath")
            return get_path(scope.current, split_path(expr[1:]))
        return expr
    if isinstance(expr, list):
        return [None if v is MISSING else v for v in (evaluate_in(e, scope) for e in expr)]
    if isinstance(expr, dict):
        if not expr:
            return {}
        first = next(iter(expr))
        if first.startswith("$"):
            if len(expr) != 1:
                raise fail(
                    15983,
                    "an expression specification must contain exactly one field, the name of "
                    f"the expression. Found {len(expr)} fields in {_brief(expr)}",
                )
            handler = OPERATORS.get(first)
            if handler is None:
                raise fail(INVALID_PIPELINE_OPERATOR, f"Unrecognized expression '{first}'")
            return handler(expr[first], scope)
        return evaluate_object(expr, scope)
    return expr


def evaluate_object(spec: dict[str, Any], scope: Scope) -> dict[str, Any]:
    """An object expression: each field's expression evaluated, missing ones left out."""
    out: dict[str, Any] = {}
    for key, sub in spec.items():
        if key.startswith("$"):
            raise fail(
                16410,
                "FieldPath field names may not start with '$'. Consider using "
                "$getField or $setField.",
            )
        value = evaluate_in(sub, scope)
        if value is not MISSING:
            out[key] = value
    return out


def _brief(value: Any) -> str:
    return "{ " + ", ".join(f"{k}: ..." for k in value) + " }" if isinstance(value, dict) else "?"

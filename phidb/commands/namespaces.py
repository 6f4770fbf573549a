"""Argument parsing shared by the data commands: collection names, typed fields and
MongoDB's wording for a field of the wrong type ("BSON field 'find.limit' is ...")."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from bson.decimal128 import Decimal128

from phidb.errors import (
    BAD_VALUE,
    FAILED_TO_PARSE,
    INVALID_NAMESPACE,
    TYPE_MISMATCH,
    MongoError,
)
from phidb.query.expressions import type_name

Document = dict[str, Any]

UNKNOWN_FIELD = 40415
MISSING_REQUIRED_FIELD = 40414
VALUE_OUT_OF_RANGE = 51024

NUMBER_TYPES = "[long, int, decimal, double]"

# Fields any command may carry that do not change what it does; handlers that
# reject unknown fields accept these.
GENERIC_FIELDS = frozenset(
    {
        "$db", "lsid", "txnNumber", "autocommit", "startTransaction", "$clusterTime",
        "$readPreference", "readConcern", "writeConcern", "comment", "maxTimeMS",
        "apiVersion", "apiStrict", "apiDeprecationErrors", "$audit", "$client",
        "$configServerState", "$gleStats", "$oplogQueryData", "$replData",
        "clientOperationKey", "mayBypassWriteBlocking", "$queryOptions", "databaseVersion",
        "shardVersion", "stmtId", "stmtIds", "coordinator", "$traceCtx",
    }
)  # fmt: skip

_BAD_COLLECTION_CHARS = re.compile(r"[\x00$]")


def bson_type_name(value: Any) -> str:
    """The `$type` alias MongoDB prints for `value` in its error messages."""
    return type_name(value)


def is_number(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, int | float | Decimal128)


def wrong_type(command: str, field: str, value: Any, expected: str) -> MongoError:
    """TypeMismatch (14) in MongoDB's IDL wording. `expected` is e.g. "bool" or
    NUMBER_TYPES (a bracketed list takes the plural "types")."""
    noun = "types" if expected.startswith("[") else "type"
    return MongoError(
        TYPE_MISMATCH,
        f"BSON field '{command}.{field}' is the wrong type '{bson_type_name(value)}',"
        f" expected {noun} '{expected}'",
    )


def reject_unknown_fields(cmd: Document, command: str, allowed: Iterable[str]) -> None:
    """Error 40415 for a top-level field that is neither allowed nor generic."""
    known = set(allowed)
    for key in cmd:
        if key != command and key not in known and key not in GENERIC_FIELDS:
            raise MongoError(UNKNOWN_FIELD, f"BSON field '{command}.{key}' is an unknown field.")


def validate_collection_name(db: str, name: str) -> None:
    """InvalidNamespace (73) for names MongoDB refuses."""
    if not name or name.startswith(".") or _BAD_COLLECTION_CHARS.search(name):
        raise MongoError(INVALID_NAMESPACE, f"Invalid namespace specified '{db}.{name}'")
    if len(db) + 1 + len(name) > 255:
        raise MongoError(
            INVALID_NAMESPACE, f"Fully qualified namespace is too long. Namespace: {db}.{name}"
        )


def collection_argument(cmd: Document, command: str, db: str) -> str:
    """The collection named by the command's first field, validated."""
    name = cmd.get(command)
    if not isinstance(name, str):
        raise MongoError(
            INVALID_NAMESPACE,
            f"collection name has invalid type {bson_type_name(name)}",
        )
    validate_collection_name(db, name)
    return name


def writable_collection(cmd: Document, command: str, db: str) -> str:
    """A collection a client may write to: `system.*` collections are the server's."""
    name = collection_argument(cmd, command, db)
    if name.startswith("system."):
        raise MongoError(INVALID_NAMESPACE, f"cannot write to '{db}.{name}'")
    return name


def split_namespace(ns: Any, command: str, field: str) -> tuple[str, str]:
    """`"db.coll"` -> ("db", "coll"); InvalidNamespace (73) when malformed."""
    if not isinstance(ns, str):
        raise wrong_type(command, field, ns, "string")
    db, dot, coll = ns.partition(".")
    if not db or not dot or not coll:
        raise MongoError(INVALID_NAMESPACE, f"Invalid namespace specified '{ns}'")
    validate_collection_name(db, coll)
    return db, coll


def get_document(
    cmd: Document, command: str, field: str, default: Document | None = None
) -> Document | None:
    value = cmd.get(field)
    if value is None:
        return default
    if not isinstance(value, dict):
        raise wrong_type(command, field, value, "object")
    return value


def get_array(cmd: Document, command: str, field: str) -> list[Any] | None:
    value = cmd.get(field)
    if value is None:
        return None
    if not isinstance(value, list):
        raise wrong_type(command, field, value, "array")
    return value


def get_bool(cmd: Document, command: str, field: str, default: bool = False) -> bool:
    """MongoDB's "safeBool": a bool, or a number read as true when non-zero."""
    value = cmd.get(field)
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    if is_number(value):
        return float(str(value)) != 0.0
    raise wrong_type(command, field, value, "bool")


def get_string(cmd: Document, command: str, field: str) -> str | None:
    value = cmd.get(field)
    if value is None:
        return None
    if not isinstance(value, str):
        raise wrong_type(command, field, value, "string")
    return value


def get_int(cmd: Document, command: str, field: str, *, minimum: int | None = None) -> int | None:
    """A whole number given as int, long, double or decimal; None when absent."""
    value = cmd.get(field)
    if value is None:
        return None
    if not is_number(value):
        raise wrong_type(command, field, value, NUMBER_TYPES)
    number = float(str(value)) if isinstance(value, Decimal128) else float(value)
    if number != number or number in (float("inf"), float("-inf")):
        raise MongoError(BAD_VALUE, f"BSON field '{field}' value must be a finite number")
    if number != int(number):
        raise MongoError(FAILED_TO_PARSE, f"BSON field '{field}' value must be an integer")
    result = int(number)
    if minimum is not None and result < minimum:
        raise MongoError(
            VALUE_OUT_OF_RANGE,
            f"BSON field '{field}' value must be >= {minimum}, actual value '{result}'",
        )
    return result


def require(cmd: Document, command: str, field: str) -> Any:
    """The value of a required field; error 40414 when missing."""
    if field not in cmd:
        raise MongoError(
            MISSING_REQUIRED_FIELD,
            f"BSON field '{command}.{field}' is missing but a required field",
        )
    return cmd[field]

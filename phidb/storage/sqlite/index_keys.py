"""Index specs and index keys: which entries a document puts in an index, following
MongoDB's multikey rules, encoded with `phidb.query.order` so SQLite can compare them.

A compound key is the concatenation of its fields' keys (each prefix-free, inverted for
descending fields), so byte order is the index order, field by field.
"""

from __future__ import annotations

import calendar
import itertools
from dataclasses import dataclass, field
from typing import Any

from bson.int64 import Int64

from phidb.errors import BAD_VALUE, CANNOT_CREATE_INDEX, DUPLICATE_KEY, MongoError
from phidb.query.order import TAG_NULL, TAG_UNDEFINED, descending_key, sort_key
from phidb.storage.engine import Document

CANNOT_INDEX_PARALLEL_ARRAYS = 171  # CannotIndexParallelArrays
ID_INDEX_NAME = "_id_"
ID_KEY_PATTERN: Document = {"_id": 1}

_MISSING = object()  # a path that leads nowhere: indexed as null
_EMPTY_ARRAY = object()  # an empty array: indexed as undefined, as MongoDB does


@dataclass
class IndexInfo:
    """One index of a collection as the engine keeps it."""

    name: str
    key: Document  # the key pattern, in its field order
    table: str | None  # None for `_id_`, which lives in the collection table itself
    unique: bool = False
    sparse: bool = False
    multikey: bool = False
    spec: Document = field(default_factory=dict)  # as listIndexes reports it
    paths: list[list[str]] = field(default_factory=list)
    descending: list[bool] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.paths = [path.split(".") for path in self.key]
        self.descending = [_direction(value) < 0 for value in self.key.values()]


def _direction(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, Int64)):
        raise MongoError(
            CANNOT_CREATE_INDEX,
            f"Values in the index key pattern can only be numbers; phidb does not "
            f"support index type {value!r}",
        )
    if value == 0 or value != value:
        raise MongoError(CANNOT_CREATE_INDEX, "Values in the index key pattern cannot be 0 or NaN")
    return float(value)


def default_index_name(key: Document) -> str:
    """MongoDB's default name: `field_1_other_-1`."""
    parts = []
    for path, value in key.items():
        number = float(value) if isinstance(value, (int, float)) else value
        text = str(int(number)) if isinstance(number, float) and number.is_integer() else str(value)
        parts.append(f"{path}_{text}")
    return "_".join(parts)


def index_from_spec(spec: Document, table: str | None) -> IndexInfo:
    """Check an index spec from `createIndexes` and build the index it describes."""
    key = spec.get("key")
    if not isinstance(key, dict) or not key:
        raise MongoError(BAD_VALUE, "The 'key' field of an index spec must be a non-empty object")
    for path, value in key.items():
        if not path or path.startswith("$") or ".." in path or path.endswith("."):
            raise MongoError(CANNOT_CREATE_INDEX, f"bad index key pattern {key}: bad path")
        _direction(value)
    name = spec.get("name")
    if name is None:
        name = default_index_name(key)
    if not isinstance(name, str) or not name:
        raise MongoError(BAD_VALUE, "The 'name' field of an index spec must be a non-empty string")
    unique = bool(spec.get("unique", False))
    sparse = bool(spec.get("sparse", False))
    stored: Document = {"v": 2, "key": dict(key), "name": name}
    if unique:
        stored["unique"] = True
    if sparse:
        stored["sparse"] = True
    # Limitation: a TTL is stored and listed (the command layer checks its value), but
    # nothing removes expired documents yet.
    if "expireAfterSeconds" in spec:
        stored["expireAfterSeconds"] = spec["expireAfterSeconds"]
    if name == ID_INDEX_NAME:
        unique = True
    return IndexInfo(name, dict(key), table, unique, sparse, False, stored)


def id_index() -> IndexInfo:
    return IndexInfo(
        ID_INDEX_NAME,
        dict(ID_KEY_PATTERN),
        None,
        True,
        False,
        False,
        {"v": 2, "key": dict(ID_KEY_PATTERN), "name": ID_INDEX_NAME},
    )


def _collect(value: Any, parts: list[str], i: int, out: list[Any], arrays: list[str]) -> None:
    # Walk one dotted path; an array met on the way fans out over its elements (the
    # array's path is recorded to detect parallel arrays), a terminal array gives one key
    # per element, and a numeric component on an array picks that position.
    if i == len(parts):
        if isinstance(value, list):
            arrays.append(".".join(parts[:i]))
            if value:
                out.extend(value)
            else:
                out.append(_EMPTY_ARRAY)
        else:
            out.append(value)
        return
    if isinstance(value, dict):
        if parts[i] in value:
            _collect(value[parts[i]], parts, i + 1, out, arrays)
        else:
            out.append(_MISSING)
        return
    if isinstance(value, list):
        part = parts[i]
        if part.isdigit() and int(part) < len(value):
            # Limitation: a numeric component on an array is positional only; MongoDB
            # also tries it as a field name of documents inside the array.
            _collect(value[int(part)], parts, i + 1, out, arrays)
            return
        arrays.append(".".join(parts[:i]))
        before = len(out)
        for element in value:
            if isinstance(element, dict):
                _collect(element, parts, i, out, arrays)
        if len(out) == before:
            out.append(_MISSING)
        return
    out.append(_MISSING)


def _encode(value: Any) -> bytes:
    if value is _MISSING:
        return TAG_NULL
    if value is _EMPTY_ARRAY:
        return TAG_UNDEFINED
    return sort_key(value)


def _plain(value: Any) -> Any:
    if value is _MISSING:
        return None
    if value is _EMPTY_ARRAY:
        return []
    return value


def index_entries(index: IndexInfo, doc: Document) -> tuple[dict[bytes, tuple[Any, ...]], bool]:
    """The distinct keys `doc` puts in `index` (key bytes -> the field values, for error
    messages) and whether it made the index multikey. Empty for a sparse index when the
    document has none of the indexed fields. CannotIndexParallelArrays (171) when more
    than one indexed field is an array."""
    per_field: list[list[tuple[bytes, Any]]] = []
    array_fields: list[str] = []
    present = False
    for parts, descending in zip(index.paths, index.descending, strict=True):
        values: list[Any] = []
        arrays: list[str] = []
        _collect(doc, parts, 0, values, arrays)
        if arrays:
            array_fields.append(arrays[0])
        seen: dict[bytes, Any] = {}
        for value in values:
            if value is not _MISSING:
                present = True
            encoded = _encode(value)
            if descending:
                encoded = descending_key(encoded)
            seen.setdefault(encoded, _plain(value))
        per_field.append(list(seen.items()))
    if index.sparse and not present:
        return {}, False
    if len(array_fields) > 1:
        names = " ".join(f"[{path.rsplit('.', 1)[-1]}]" for path in array_fields[:2])
        raise MongoError(CANNOT_INDEX_PARALLEL_ARRAYS, f"cannot index parallel arrays {names}")
    if len(per_field) == 1:
        return {key: (value,) for key, value in per_field[0]}, bool(array_fields)
    entries: dict[bytes, tuple[Any, ...]] = {}
    for combination in itertools.product(*per_field):
        entries.setdefault(
            b"".join(key for key, _ in combination), tuple(value for _, value in combination)
        )
    return entries, bool(array_fields)


def format_value(value: Any) -> str:
    """A value the way MongoDB prints it in a duplicate key message."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        escaped = value.replace("\\", "\\\\").replace('"', '\\"')
        return f'"{escaped}"'
    if isinstance(value, dict):
        inner = ", ".join(f"{k}: {format_value(v)}" for k, v in value.items())
        return "{ " + inner + " }" if inner else "{}"
    if isinstance(value, list):
        return "[ " + ", ".join(format_value(v) for v in value) + " ]" if value else "[]"
    cls = type(value).__name__
    if cls == "ObjectId":
        return f"ObjectId('{value}')"
    if cls == "datetime":
        return (
            f"new Date({calendar.timegm(value.utctimetuple()) * 1000 + value.microsecond // 1000})"
        )
    return str(value)


def duplicate_key_error(ns: str, index: IndexInfo, values: tuple[Any, ...]) -> MongoError:
    """DuplicateKey (11000) as MongoDB reports it, with `keyPattern` and `keyValue`."""
    key_value = dict(zip(index.key, values, strict=True))
    shown = ", ".join(f"{path}: {format_value(v)}" for path, v in key_value.items())
    return MongoError(
        DUPLICATE_KEY,
        f"E11000 duplicate key error collection: {ns} index: {index.name} dup key: {{ {shown} }}",
        keyPattern=dict(index.key),
        keyValue=key_value,
    )

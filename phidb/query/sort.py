"""Sort specifications: `compile_sort(spec)` turns `{field: 1 | -1, ...}` into a key function
for `sorted()`, ordering documents the way MongoDB's sort does (arrays by their smallest
element ascending and largest descending; missing fields as null)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from bson.decimal128 import Decimal128

from phidb.errors import BAD_VALUE, MongoError
from phidb.query.order import TAG_NULL, TAG_UNDEFINED, descending_key, is_number, sort_key
from phidb.query.paths import MISSING, lookup, split

SortKey = Callable[[Mapping[str, Any]], bytes]

SORT_NOT_NUMBER = 15974
SORT_NOT_ONE = 15975
DOLLAR_FIELD = 16410


def compile_sort(spec: Mapping[str, Any] | None) -> SortKey:
    """A key function: documents sort ascending by it as `spec` orders them. Ties keep
    their input order (Python's sort is stable). MongoError with MongoDB's codes for a
    malformed specification."""
    fields = parse_sort(spec)
    if not fields:
        return lambda doc: b""
    if len(fields) == 1:
        parts, ascending = fields[0]
        return lambda doc: _field_key(doc, parts, ascending)

    def key(doc: Mapping[str, Any]) -> bytes:
        # Each field's key is prefix-free, so the concatenation orders like a tuple.
        return b"".join([_field_key(doc, parts, ascending) for parts, ascending in fields])

    return key


def parse_sort(spec: Mapping[str, Any] | None) -> list[tuple[list[str], bool]]:
    """[(path components, ascending)] in spec order; `$natural` is left out (see
    `natural_direction`)."""
    if spec is None:
        return []
    if not isinstance(spec, Mapping):
        raise MongoError(BAD_VALUE, "sort must be an object")
    fields = []
    for path, direction in spec.items():
        ascending = _direction(direction)
        if path == "$natural":
            continue
        if not path or any(not part or part.startswith("$") for part in split(path)):
            if path.startswith("$"):
                raise MongoError(DOLLAR_FIELD, "FieldPath field names may not start with '$'.")
            raise MongoError(BAD_VALUE, f"Invalid sort field name: '{path}'")
        fields.append((split(path), ascending))
    return fields


def natural_direction(spec: Mapping[str, Any] | None) -> int | None:
    """1 or -1 when `spec` asks for `$natural` (storage) order, else None."""
    if spec is None or "$natural" not in spec:
        return None
    return 1 if _direction(spec["$natural"]) else -1


def _direction(direction: Any) -> bool:
    if isinstance(direction, Mapping):
        if "$meta" in direction:
            raise MongoError(BAD_VALUE, f"$meta sort by {direction['$meta']!r} is not supported")
        raise MongoError(
            SORT_NOT_NUMBER,
            "$sort key ordering must be specified using a number or {$meta: 'textScore'}",
        )
    if not is_number(direction):
        raise MongoError(
            SORT_NOT_NUMBER,
            "$sort key ordering must be specified using a number or {$meta: 'textScore'}",
        )
    value = direction.to_decimal() if isinstance(direction, Decimal128) else direction
    if value == 1:
        return True
    if value == -1:
        return False
    raise MongoError(
        SORT_NOT_ONE, "$sort key ordering must be 1 (for ascending) or -1 (for descending)"
    )


def _field_key(doc: Mapping[str, Any], parts: list[str], ascending: bool) -> bytes:
    candidates: list[bytes] = []
    for value in lookup(doc, parts):
        if value is MISSING:
            candidates.append(TAG_NULL)
        elif isinstance(value, list):
            # An empty array sorts before null and missing.
            candidates.extend([sort_key(item) for item in value] or [TAG_UNDEFINED])
        else:
            candidates.append(sort_key(value))
    if not candidates:
        candidates.append(TAG_NULL)
    if ascending:
        return min(candidates)
    return descending_key(max(candidates))

"""Dotted paths (`name.family`, `a.0.b`) resolved through embedded documents and arrays the
way MongoDB's matcher, projection, sort and multikey indexes resolve them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from phidb.query.order import sort_key


class _Missing:
    """What a path reaches where a document has no such field (distinct from null)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False


MISSING: Final[Any] = _Missing()


def split(path: str) -> list[str]:
    return path.split(".")


def array_index(component: str) -> int | None:
    """The array position a path component names (`"0"`, `"12"`), or None for a field name."""
    if component.isdigit() and component.isascii():
        return int(component)
    return None


def lookup(doc: Any, path: str | list[str]) -> list[Any]:
    """Every value `path` reaches in `doc`, without expanding arrays found at the end.

    Through an array, a field name is looked up in each embedded document of the array
    (nested arrays and scalars are skipped); a numeric component also selects that array
    position. MISSING marks a place where the path stops: a document without the field,
    or a scalar where a document was needed.
    """
    parts = split(path) if isinstance(path, str) else path
    found: list[Any] = []
    _walk(doc, parts, 0, found)
    return found


def _walk(value: Any, parts: list[str], i: int, found: list[Any]) -> None:
    if i == len(parts):
        found.append(value)
        return
    if isinstance(value, Mapping):
        child = value.get(parts[i], MISSING)
        if child is MISSING:
            found.append(MISSING)
        else:
            _walk(child, parts, i + 1, found)
        return
    if not isinstance(value, list):
        found.append(MISSING)
        return

    index = array_index(parts[i])
    if index is not None:
        if index < len(value):
            _walk(value[index], parts, i + 1, found)
        else:
            found.append(MISSING)
        # Embedded documents may also have a field literally named "0".
        for item in value:
            if isinstance(item, Mapping) and parts[i] in item:
                _walk(item[parts[i]], parts, i + 1, found)
        return
    for item in value:
        if isinstance(item, Mapping):
            _walk(item, parts, i, found)


def get_values(doc: Any, path: str | list[str]) -> list[Any]:
    """The values a query predicate on `path` considers: each reached value, and for a
    reached array its elements followed by the array itself. Missing places are left out."""
    values: list[Any] = []
    for value in lookup(doc, path):
        if value is MISSING:
            continue
        if isinstance(value, list):
            values.extend(value)
        values.append(value)
    return values


def exists(doc: Any, path: str | list[str]) -> bool:
    return any(value is not MISSING for value in lookup(doc, path))


def index_keys(doc: Any, path: str | list[str]) -> list[Any]:
    """The distinct key values a multikey index on `path` stores for `doc`.

    A reached array contributes its elements (not the array itself, so an index scan for
    an array value must look up its first element); an empty array contributes `[]`; a
    missing field contributes null. Keys are distinct by BSON equality, in first-seen order.
    """
    keys: list[Any] = []
    seen: set[bytes] = set()
    for value in lookup(doc, path):
        if value is MISSING:
            candidates: list[Any] = [None]
        elif isinstance(value, list):
            candidates = value if value else [[]]
        else:
            candidates = [value]
        for candidate in candidates:
            key = sort_key(candidate)
            if key not in seen:
                seen.add(key)
                keys.append(candidate)
    if not keys:
        keys.append(None)  # e.g. `a.b` over an array with no embedded documents
    return keys


def reaches_array(doc: Any, path: str | list[str]) -> bool:
    """True when resolving `path` passes through or ends at an array (a multikey path)."""
    parts = split(path) if isinstance(path, str) else path
    return _reaches_array(doc, parts, 0)


def _reaches_array(value: Any, parts: list[str], i: int) -> bool:
    if isinstance(value, list):
        return True
    if i == len(parts) or not isinstance(value, Mapping):
        return False
    child = value.get(parts[i], MISSING)
    return child is not MISSING and _reaches_array(child, parts, i + 1)

"""Field paths as update operators walk them: creating parents, numeric array components,
and the positional forms `$`, `$[]` and `$[<identifier>]` resolved against one document.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bson.decimal128 import Decimal128
from bson.int64 import Int64

from phidb.errors import BAD_VALUE, MongoError

PATH_NOT_VIABLE = 28
EMPTY_FIELD_NAME = 56

# An element matcher for one `$[<identifier>]`, built from its array filter.
ElementMatcher = Callable[[Any], bool]


class _Absent:
    def __repr__(self) -> str:
        return "ABSENT"


ABSENT: Any = _Absent()


def copy_value(value: Any) -> Any:
    """A copy of the containers in `value`; leaf BSON values are immutable and shared."""
    if isinstance(value, dict):
        return {k: copy_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [copy_value(v) for v in value]
    return value


def same_value(a: Any, b: Any) -> bool:
    """Binary-equal BSON values: same types, same field order (1 and 1.0 differ)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(same_value(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same_value(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and a != a:
        return bool(b != b)
    return bool(a == b)


def brief(value: Any) -> str:
    """A short, shell-like rendering of a value for error messages."""
    if isinstance(value, dict):
        inner = ", ".join(f"{k}: {brief(v)}" for k, v in value.items())
        return "{" + inner + "}" if inner else "{}"
    if isinstance(value, list):
        return "[ " + ", ".join(brief(v) for v in value) + " ]" if value else "[]"
    if isinstance(value, str):
        return f'"{value}"'
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Int64):
        return str(int(value))
    if isinstance(value, Decimal128):
        return f'NumberDecimal("{value}")'
    return str(value)


def split_update_path(path: str) -> list[str]:
    if path == "":
        raise MongoError(EMPTY_FIELD_NAME, "An empty update path is not valid.")
    parts = path.split(".")
    if any(part == "" for part in parts):
        raise MongoError(
            EMPTY_FIELD_NAME,
            f"The update path '{path}' contains an empty field name, which is not allowed.",
        )
    return parts


def array_index(part: str) -> int | None:
    return int(part) if part.isdigit() and (part == "0" or not part.startswith("0")) else None


def is_positional(part: str) -> bool:
    return part == "$" or (part.startswith("$[") and part.endswith("]"))


def get_at(doc: Any, parts: list[str]) -> Any:
    """The value at a concrete path (numeric components index arrays), or ABSENT."""
    value = doc
    for part in parts:
        if isinstance(value, dict):
            if part not in value:
                return ABSENT
            value = value[part]
        elif isinstance(value, list):
            index = array_index(part)
            if index is None or index >= len(value):
                return ABSENT
            value = value[index]
        else:
            return ABSENT
    return value


def _not_viable(part: str, parent_name: str, parent: Any) -> MongoError:
    return MongoError(
        PATH_NOT_VIABLE,
        f"Cannot create field '{part}' in element {{{parent_name}: {brief(parent)}}}",
    )


def set_at(doc: dict[str, Any], parts: list[str], value: Any) -> None:
    """Store `value` at a concrete path, creating missing documents (and padding arrays)."""
    container: Any = doc
    name = ""
    for depth, part in enumerate(parts):
        last = depth == len(parts) - 1
        if isinstance(container, dict):
            if last:
                container[part] = value
                return
            child = container.get(part, ABSENT)
            if child is ABSENT:
                child = container[part] = {}
            elif not isinstance(child, dict | list):
                raise _not_viable(parts[depth + 1], part, child)
        elif isinstance(container, list):
            index = array_index(part)
            if index is None:
                raise _not_viable(part, name, container)
            while len(container) <= index:
                container.append(None)
            if last:
                container[index] = value
                return
            child = container[index]
            if child is None:
                child = container[index] = {}
            elif not isinstance(child, dict | list):
                raise _not_viable(parts[depth + 1], part, child)
        container, name = child, part


def unset_at(doc: dict[str, Any], parts: list[str]) -> None:
    """Remove the field at a concrete path; an array element becomes null, as MongoDB does."""
    parent = get_at(doc, parts[:-1])
    last = parts[-1]
    if isinstance(parent, dict):
        parent.pop(last, None)
    elif isinstance(parent, list):
        index = array_index(last)
        if index is not None and index < len(parent):
            parent[index] = None


def expand(
    doc: dict[str, Any],
    parts: list[str],
    positional_index: int | None,
    filters: dict[str, ElementMatcher],
    original_path: str,
) -> list[list[str]]:
    """The concrete paths one update path names in `doc`, resolving positional components."""
    paths: list[list[str]] = [[]]
    for part in parts:
        if not is_positional(part):
            for path in paths:
                path.append(part)
            continue
        if part == "$":
            if positional_index is None:
                raise MongoError(
                    BAD_VALUE,
                    "The positional operator did not find the match needed from the query.",
                )
            for path in paths:
                path.append(str(positional_index))
            continue
        identifier = part[2:-1]
        matcher = filters.get(identifier) if identifier else None
        if identifier and matcher is None:
            raise MongoError(
                BAD_VALUE,
                f"No array filter found for identifier '{identifier}' in path '{original_path}'",
            )
        widened: list[list[str]] = []
        for path in paths:
            array = get_at(doc, path)
            if array is ABSENT:
                if widened or len(paths) == 1:
                    raise MongoError(
                        BAD_VALUE,
                        f"The path '{'.'.join(path)}' must exist in the document in order to "
                        "apply array updates.",
                    )
                continue
            if not isinstance(array, list):
                raise MongoError(
                    BAD_VALUE,
                    f"Cannot apply array updates to non-array element {path[-1]}: {brief(array)}",
                )
            for index, element in enumerate(array):
                if matcher is None or matcher(element):
                    widened.append([*path, str(index)])
        paths = widened
    return paths

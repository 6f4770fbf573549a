"""Size limits on values the aggregation language builds: no value past 16 MiB, no `$push` or
`$addToSet` group past 100 MB, each measured without encoding the value."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from phidb.errors import BSON_OBJECT_TOO_LARGE, MongoError

# MongoDB's maximum BSON document size; a value inside a document cannot be larger.
MAX_VALUE_BYTES = 16 * 1024 * 1024
# MongoDB's internalQueryMaxPushBytes and internalQueryMaxAddToSetBytes.
MAX_GROUP_ARRAY_BYTES = 100 * 1024 * 1024
EXCEEDED_MEMORY_LIMIT = 146

# The BSON size of scalar values by type (type byte and name are counted by the container).
_FIXED = {bool: 1, int: 4, float: 8, type(None): 0}


def too_large(size: int) -> MongoError:
    return MongoError(
        BSON_OBJECT_TOO_LARGE,
        f"BSONObj size: {size} (0x{size:X}) is invalid. Size must be between 0 and "
        f"{MAX_VALUE_BYTES}(16MB)",
    )


def value_size(value: Any, limit: int = MAX_VALUE_BYTES) -> int:
    """About how many bytes `value` takes encoded as BSON; MongoError 10334 past `limit`.

    Containers are measured once each, however often they occur: expressions such as
    `[$$value, $$value]` in a `$reduce` share one list many times, so a value can stand for
    exabytes of BSON while taking kilobytes of memory, and walking it naively never ends.
    """
    if not isinstance(value, list | tuple | Mapping):
        return _scalar_size(value)
    sizes: dict[int, int] = {}
    stack: list[tuple[Any, bool]] = [(value, False)]
    while stack:
        node, children_done = stack.pop()
        if id(node) in sizes:
            continue
        children = list(node.values()) if isinstance(node, Mapping) else node
        if not children_done:
            stack.append((node, True))
            stack.extend((child, False) for child in children if _is_container(child))
            continue
        total = 5 + _names_size(node)
        for child in children:
            fixed = _FIXED.get(type(child))
            if fixed is not None:
                total += fixed
            elif _is_container(child):
                total += sizes[id(child)]
            else:
                total += _scalar_size(child)
            if total > limit:
                raise too_large(total)
        sizes[id(node)] = total
    return sizes[id(value)]


def _names_size(node: Any) -> int:
    """The bytes of the element names and type bytes of a document or array."""
    if isinstance(node, Mapping):
        return sum(2 + len(str(name)) for name in node)
    # An array element's name is its index in decimal: count the digits arithmetically.
    count, total, digits, first = len(node), 0, 1, 0
    while first < count:
        last = min(count, first * 10 if first else 10)
        total += (last - first) * (digits + 2)
        first, digits = last, digits + 1
    return total


def check_value(value: Any) -> Any:
    """`value` itself, after making sure it fits in a document (MongoError 10334 if not)."""
    if isinstance(value, list | tuple | Mapping):
        value_size(value)
    elif isinstance(value, str | bytes) and len(value) > MAX_VALUE_BYTES:
        raise too_large(len(value))
    return value


def _is_container(value: Any) -> bool:
    return isinstance(value, list | tuple | Mapping)


def _scalar_size(value: Any) -> int:
    fixed = _FIXED.get(type(value))
    if fixed is not None:
        return fixed
    if isinstance(value, str):
        return 5 + (len(value) if value.isascii() else len(value.encode("utf-8", "replace")))
    if isinstance(value, bytes):
        return 5 + len(value)
    return 16

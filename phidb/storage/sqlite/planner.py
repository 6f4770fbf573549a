"""Query planning: which index (if any) can find the candidates of a filter, and the
ranges of encoded keys to scan in it.

Bounds come from equality, `$in` of scalars and type-bracketed ranges on an index's
leading field, at the top level, inside a top-level `$and` or inside an `$elemMatch`.
They only narrow the candidates: every candidate is still checked against the whole filter.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from bson.max_key import MaxKey
from bson.min_key import MinKey
from bson.regex import Regex

from phidb.errors import BAD_VALUE, MongoError
from phidb.query.order import descending_key, sort_key, type_bracket
from phidb.storage.engine import Document, QueryPlan
from phidb.storage.sqlite.dbfile import CollectionMeta
from phidb.storage.sqlite.index_keys import IndexInfo, format_value

_RANGE_OPS = ("$gt", "$gte", "$lt", "$lte")


@dataclass(frozen=True)
class Interval:
    """Keys k with lo <= k < hi (hi None: no upper end); `point` when the interval is
    exactly one full key of a single-field index, which SQLite can look up with `=`."""

    lo: bytes
    hi: bytes | None
    point: bytes | None = None


@dataclass
class Plan:
    index: IndexInfo | None
    intervals: list[Interval]
    bounds: Document
    # True when the leading field is bound to one value: the keys scanned then share
    # it, and are ordered by the index's remaining fields.
    leading_point: bool = False

    def query_plan(self) -> QueryPlan:
        if self.index is None:
            return QueryPlan("COLLSCAN")
        return QueryPlan(
            "IXSCAN", self.index.name, dict(self.index.key), self.bounds, self.index.multikey
        )


def successor(key: bytes) -> bytes | None:
    """The smallest byte string greater than every string that starts with `key`."""
    stripped = key.rstrip(b"\xff")
    if not stripped:
        return None
    return stripped[:-1] + bytes([stripped[-1] + 1])


# An ascending-space range: lo <= first field's key < hi, a label for explain, and
# whether it is a single value.
_Range = tuple[bytes, bytes | None, str, bool]


def _unusable(value: Any) -> bool:
    return (
        isinstance(value, (list, Regex, re.Pattern, MinKey, MaxKey))
        or type(value).__name__ == "Pattern"
    )


def _point(value: Any) -> _Range:
    key = sort_key(value)
    shown = format_value(value)
    return key, successor(key), f"[{shown}, {shown}]", True


def _range(op: str, value: Any) -> _Range | None:
    if value is None or _unusable(value):
        return None
    key = sort_key(value)
    lo_bracket, hi_bracket = type_bracket(value)
    shown = format_value(value)
    if op == "$gt":
        return successor(key) or hi_bracket, hi_bracket, f"({shown}, MaxKey of type]", False
    if op == "$gte":
        return key, hi_bracket, f"[{shown}, MaxKey of type]", False
    if op == "$lt":
        return lo_bracket, key, f"[MinKey of type, {shown})", False
    return lo_bracket, successor(key), f"[MinKey of type, {shown}]", False


def _predicate_ranges(condition: Any) -> list[list[_Range]]:
    """Each usable predicate of one field's condition, as a union of ranges."""
    if isinstance(condition, dict) and condition and next(iter(condition)).startswith("$"):
        found: list[list[_Range]] = []
        for op, value in condition.items():
            if op == "$eq":
                if not _unusable(value):
                    found.append([_point(value)])
            elif op == "$in":
                if isinstance(value, list) and not any(_unusable(v) for v in value):
                    found.append([_point(v) for v in value])
            elif op in _RANGE_OPS:
                rng = _range(op, value)
                if rng is not None:
                    found.append([rng])
        return found
    if _unusable(condition):
        return []
    return [[_point(condition)]]


def _conditions(filter: Document, path: str) -> list[Any]:
    found = []
    for name, value in filter.items():
        if name == path:
            found.append(value)
        elif name == "$and" and isinstance(value, list):
            for clause in value:
                if isinstance(clause, dict):
                    found.extend(_conditions(clause, path))
        elif path.startswith(name + ".") and isinstance(value, dict):
            # {a: {$elemMatch: {b: v}}} matches only documents with an element whose b
            # matches v, so the bounds of v on the index over a.b hold every match.
            inner = value.get("$elemMatch")
            if isinstance(inner, dict):
                found.extend(_conditions(inner, path[len(name) + 1 :]))
    return found


def _intersect(a: list[_Range], b: list[_Range]) -> list[_Range]:
    out = []
    for lo1, hi1, label1, point1 in a:
        for lo2, hi2, label2, point2 in b:
            lo = max(lo1, lo2)
            his = [h for h in (hi1, hi2) if h is not None]
            hi = min(his) if his else None
            if hi is None or lo < hi:
                if (lo, hi) == (lo1, hi1):
                    out.append((lo, hi, label1, point1))
                else:
                    out.append((lo, hi, label2, point2))
    return out


def _normalize(ranges: list[_Range]) -> list[_Range]:
    # Sorted and without duplicates, so a multikey document is not fetched twice per range.
    unique = {(r[0], r[1]): r for r in ranges}
    return sorted(unique.values(), key=lambda r: (r[0], r[1] is None, r[1] or b""))


def field_ranges(filter: Document, index: IndexInfo) -> list[_Range] | None:
    """The ranges of the index's leading field that contain every match, or None when
    the filter does not constrain that field usably."""
    predicates: list[list[_Range]] = []
    for condition in _conditions(filter, ".".join(index.paths[0])):
        predicates.extend(_predicate_ranges(condition))
    if not predicates:
        return None
    if index.multikey:
        # Across array elements two predicates may be met by different elements, so
        # their bounds cannot be intersected: use the narrowest one alone.
        ranges = min(predicates, key=lambda p: (not all(r[3] for r in p), len(p)))
    else:
        ranges = predicates[0]
        for other in predicates[1:]:
            ranges = _intersect(ranges, other)
    null = sort_key(None)
    if index.sparse and any(r[0] <= null and (r[1] is None or null < r[1]) for r in ranges):
        return None  # a sparse index lacks the documents a null bound must find
    return _normalize(ranges)


def _to_intervals(index: IndexInfo, ranges: list[_Range]) -> list[Interval]:
    single = len(index.paths) == 1
    intervals = []
    for lo, hi, _, _ in ranges:
        if index.descending[0]:
            # k >= lo  <=>  inv(k) < successor(inv(lo)), for prefix-free keys k.
            new_lo = b"" if hi is None else successor(descending_key(hi)) or b"\xff"
            new_hi = successor(descending_key(lo)) if lo else None
            lo, hi = new_lo, new_hi
        point = lo if single and hi is not None and hi == successor(lo) and lo else None
        intervals.append(Interval(lo, hi, point))
    return intervals


def _bounds(index: IndexInfo, ranges: list[_Range] | None) -> Document:
    bounds: Document = {}
    for i, path in enumerate(index.key):
        if i == 0 and ranges is not None:
            bounds[path] = [r[2] for r in ranges]
        else:
            bounds[path] = ["[MaxKey, MinKey]" if index.descending[i] else "[MinKey, MaxKey]"]
    return bounds


def full_plan(index: IndexInfo) -> Plan:
    return Plan(index, [Interval(b"", None)], _bounds(index, None))


def _index_plan(index: IndexInfo, ranges: list[_Range]) -> Plan:
    point = len(ranges) == 1 and ranges[0][3]
    return Plan(index, _to_intervals(index, ranges), _bounds(index, ranges), point)


def sort_direction(plan: Plan, sort: list[tuple[str, int]]) -> int | None:
    """1 (scan the keys forward) or -1 (backward) when the plan's index returns
    documents already in `sort` order, else None.

    That holds when the sort fields are the index's fields in order, starting at the
    first one, or at the second one when the first is bound to a single value; with
    every direction as in the index (forward) or every one reversed (backward). A
    multikey index never qualifies: a document has several keys there, and MongoDB
    sorts it by its smallest (or largest) element.
    """
    index = plan.index
    if index is None or index.multikey or index.sparse or len(plan.intervals) != 1 or not sort:
        return None
    fields = list(index.key)
    for start in (0, 1) if plan.leading_point else (0,):
        wanted = fields[start : start + len(sort)]
        if [path for path, _ in sort] != wanted:
            continue
        forward = [1 if not desc else -1 for desc in index.descending[start:]]
        signs = {d * f for (_, d), f in zip(sort, forward, strict=False)}
        if len(signs) == 1:
            return signs.pop()
    return None


def _score(index: IndexInfo, ranges: list[_Range]) -> tuple[int, int, int, int]:
    points = all(r[3] for r in ranges)
    return (0 if points else 1, 0 if index.unique else 1, len(ranges), len(index.key))


def find_hinted(meta: CollectionMeta, hint: Any, ns: str) -> IndexInfo | None:
    """The index a hint names (by name or key pattern); None for `{$natural: ...}`."""
    if isinstance(hint, dict) and len(hint) == 1 and "$natural" in hint:
        return None
    for index in meta.indexes:
        if isinstance(hint, str) and index.name == hint:
            return index
        if isinstance(hint, dict) and list(hint.items()) == list(index.key.items()):
            return index
    raise MongoError(
        BAD_VALUE,
        f"error processing query: ns={ns} planner returned error :: caused by :: "
        "hint provided does not correspond to an existing index",
    )


def plan_query(meta: CollectionMeta, filter: Document, hint: Any, ns: str) -> Plan:
    """The plan `find` runs: a hinted index, else the best usable index, else a scan."""
    if hint is not None and hint != {}:
        index = find_hinted(meta, hint, ns)
        if index is None:
            return Plan(None, [], {})
        ranges = field_ranges(filter, index)
        return full_plan(index) if ranges is None else _index_plan(index, ranges)
    best: tuple[tuple[int, int, int, int], IndexInfo, list[_Range]] | None = None
    for index in meta.indexes:
        ranges = field_ranges(filter, index)
        if ranges is None:
            continue
        score = _score(index, ranges)
        if best is None or score < best[0]:
            best = (score, index, ranges)
    if best is None:
        return Plan(None, [], {})
    return _index_plan(best[1], best[2])

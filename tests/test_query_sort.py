"""Sort specifications: compound, dotted, arrays by min/max, missing as null, errors."""

from __future__ import annotations

from typing import Any

import pytest
from bson.decimal128 import Decimal128
from bson.int64 import Int64
from hypothesis import given, settings
from hypothesis import strategies as st

from phidb.errors import MongoError
from phidb.query.order import compare
from phidb.query.sort import compile_sort, natural_direction


def order(spec: dict[str, Any], docs: list[dict[str, Any]]) -> list[Any]:
    return [doc["_id"] for doc in sorted(docs, key=compile_sort(spec))]


DOCS = [
    {"_id": 1, "a": 3, "b": "x"},
    {"_id": 2, "a": "str", "b": "y"},
    {"_id": 3, "b": "z"},
    {"_id": 4, "a": None, "b": "x"},
    {"_id": 5, "a": Int64(1), "b": "y"},
    {"_id": 6, "a": 2.5, "b": "x"},
]


def test_ascending_and_descending_across_types_with_missing_as_null() -> None:
    assert order({"a": 1}, DOCS) == [3, 4, 5, 6, 1, 2]
    assert order({"a": -1}, DOCS) == [2, 1, 6, 5, 3, 4]


def test_compound_sort_breaks_ties_with_later_fields() -> None:
    assert order({"b": 1, "a": -1}, DOCS) == [1, 6, 4, 2, 5, 3]


def test_arrays_sort_by_min_ascending_and_max_descending() -> None:
    docs = [{"_id": 1, "a": [5, 1]}, {"_id": 2, "a": [2, 3]}, {"_id": 3, "a": []}, {"_id": 4}]
    assert order({"a": 1}, docs) == [3, 4, 1, 2]
    assert order({"a": -1}, docs) == [1, 2, 4, 3]


def test_dotted_sort_through_arrays_of_documents() -> None:
    docs = [
        {"_id": 1, "name": [{"family": "Zed"}, {"family": "Adams"}]},
        {"_id": 2, "name": [{"family": "Baker"}]},
        {"_id": 3, "name": {"family": "Cole"}},
    ]
    assert order({"name.family": 1}, docs) == [1, 2, 3]
    assert order({"name.family": -1}, docs) == [1, 3, 2]


def test_ties_keep_input_order_and_empty_sort_keeps_natural_order() -> None:
    docs = [{"_id": i, "k": 1} for i in range(5)]
    assert order({"k": -1}, docs) == [0, 1, 2, 3, 4]
    assert order({}, DOCS) == [1, 2, 3, 4, 5, 6]


def test_directions_accept_numbers_equal_to_one() -> None:
    assert (
        order({"a": 1.0}, DOCS)
        == order({"a": Int64(1)}, DOCS)
        == order({"a": Decimal128("1")}, DOCS)
    )
    assert natural_direction({"$natural": -1}) == -1
    assert natural_direction({"a": 1}) is None


@pytest.mark.parametrize(
    ("spec", "code"),
    [
        ({"a": 2}, 15975),
        ({"a": 0}, 15975),
        ({"a": "x"}, 15974),
        ({"a": True}, 15974),
        ({"a": {"$meta": "textScore"}}, 2),
        ({"$a": 1}, 16410),
        ({"a..b": 1}, 2),
    ],
)
def test_bad_sort_specifications_raise(spec: dict[str, Any], code: int) -> None:
    with pytest.raises(MongoError) as info:
        compile_sort(spec)
    assert info.value.code == code


scalars = st.one_of(
    st.integers(-3, 3), st.floats(-3, 3, allow_nan=False), st.text(max_size=2), st.none()
)


@settings(max_examples=150)
@given(st.lists(st.one_of(scalars, st.lists(scalars, max_size=3)), max_size=6))
def test_sort_agrees_with_minimum_and_maximum_by_bson_order(values: list[Any]) -> None:
    docs = [{"_id": i, "a": v} for i, v in enumerate(values)]

    def extreme(v: Any, pick: Any) -> Any:
        if not isinstance(v, list) or not v:
            return v
        best = v[0]
        for item in v[1:]:
            if pick(compare(item, best)):
                best = item
        return best

    ascending = sorted(docs, key=compile_sort({"a": 1}))
    for left, right in zip(ascending, ascending[1:], strict=False):
        lo, hi = extreme(left["a"], lambda c: c < 0), extreme(right["a"], lambda c: c < 0)
        if lo != [] and hi != []:
            assert compare(lo, hi) <= 0
    descending = sorted(docs, key=compile_sort({"a": -1}))
    for left, right in zip(descending, descending[1:], strict=False):
        hi, lo = extreme(left["a"], lambda c: c > 0), extreme(right["a"], lambda c: c > 0)
        if lo != [] and hi != []:
            assert compare(hi, lo) >= 0

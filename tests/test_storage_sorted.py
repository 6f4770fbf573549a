"""Sorted reads straight from an index return exactly what sorting the matches
would, for every index shape and sort that qualifies (and decline the rest)."""

from __future__ import annotations

import os
from pathlib import Path

import bson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from phidb.query.sort import compile_sort
from phidb.storage.sqlite import SQLiteEngine

values = st.one_of(
    st.none(),
    st.integers(-3, 3),
    st.sampled_from([1.5, -0.5, "x", "y", "", True, False]),
)
docs_strategy = st.lists(
    st.fixed_dictionaries({}, optional={"a": values, "b": values, "c": values}),
    max_size=25,
)
INDEXES = [
    {"a": 1, "b": 1},
    {"a": 1, "b": -1},
    {"a": -1, "b": 1},
    {"b": 1},
    {"b": -1, "c": 1},
]
SORTS = [
    [("b", 1)],
    [("b", -1)],
    [("a", 1), ("b", 1)],
    [("a", -1), ("b", -1)],
    [("a", 1), ("b", -1)],
    [("b", 1), ("c", -1)],
    [("b", -1), ("c", 1)],
]


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory):
    eng = SQLiteEngine(str(tmp_path_factory.mktemp("sorted")), os.urandom(32))
    yield eng
    eng.close()


counter = iter(range(10**9))


@settings(max_examples=200)
@given(
    docs=docs_strategy,
    index=st.sampled_from(INDEXES),
    sort=st.sampled_from(SORTS),
    filter_value=values,
    filter_kind=st.sampled_from(["none", "eq", "gte", "lt"]),
    raw=st.booleans(),
)
def test_index_order_equals_sorting_the_matches(
    engine: SQLiteEngine, docs, index, sort, filter_value, filter_kind, raw
):
    name = f"c{next(counter)}"
    engine.create_indexes("t", name, [{"key": index, "name": "ix"}])
    engine.insert("t", name, [{"_id": i, **d} for i, d in enumerate(docs)], ordered=True)
    lead = next(iter(index))
    filter_ = {
        "none": {},
        "eq": {lead: filter_value},
        "gte": {lead: {"$gte": filter_value}},
        "lt": {lead: {"$lt": filter_value}},
    }[filter_kind]
    spec = dict(sort)
    key = compile_sort(spec)
    expected = sorted((doc for _, doc in engine.find("t", name, filter_)), key=key)
    ordered = engine.find_sorted("t", name, filter_, sort, hint="ix", raw=raw)
    if ordered is None:
        return
    # Undecoded results (raw=True, when the index alone proves the match) must decode to
    # exactly the documents a decoded read returns.
    got = [doc if isinstance(doc, dict) else bson.decode(doc.raw) for _, doc in ordered]
    assert [key(d) for d in got] == [key(d) for d in expected]
    assert sorted(d["_id"] for d in got) == sorted(d["_id"] for d in expected)


def test_a_multikey_index_does_not_provide_order(tmp_path: Path):
    eng = SQLiteEngine(str(tmp_path), None)
    eng.create_indexes("t", "c", [{"key": {"a": 1}, "name": "a_1"}])
    eng.insert("t", "c", [{"_id": 1, "a": [3, 1]}, {"_id": 2, "a": 2}], ordered=True)
    assert eng.find_sorted("t", "c", {}, [("a", 1)], hint="a_1") is None
    eng.close()


def test_an_exact_index_match_is_served_undecoded(tmp_path: Path):
    eng = SQLiteEngine(str(tmp_path), None)
    eng.create_indexes("t", "obs", [{"key": {"p": 1, "when": -1}, "name": "p_when"}])
    eng.insert("t", "obs", [{"_id": 1, "p": "A", "when": 2}, {"_id": 2, "p": 1.0, "when": 1}], True)
    raw = eng.find_sorted("t", "obs", {"p": "A"}, [("when", -1)], raw=True)
    assert raw is not None
    [(_, doc)] = list(raw)
    assert not isinstance(doc, dict) and bson.decode(doc.raw) == {"_id": 1, "p": "A", "when": 2}
    # Numeric equality across types is what the index key compares, as MongoDB's.
    numeric = eng.find_sorted("t", "obs", {"p": 1}, [("when", -1)], raw=True)
    assert numeric is not None and [d["_id"] for _, d in numeric] == [2]
    # A filter the index cannot decide alone is checked document by document.
    checked = eng.find_sorted("t", "obs", {"p": "A", "when": 3}, [("when", -1)], raw=True)
    assert checked is not None and list(checked) == []
    eng.close()


def test_equality_then_sort_on_the_next_field_is_served_in_order(tmp_path: Path):
    eng = SQLiteEngine(str(tmp_path), None)
    eng.create_indexes("t", "obs", [{"key": {"p": 1, "when": -1}, "name": "p_when"}])
    rows = [
        {"_id": i, "p": "Patient/" + str(i % 3), "when": f"2020-01-{i:02d}"} for i in range(1, 29)
    ]
    eng.insert("t", "obs", rows, ordered=True)
    ordered = eng.find_sorted("t", "obs", {"p": "Patient/1"}, [("when", -1)])
    assert ordered is not None
    got = [doc["when"] for _, doc in ordered]
    assert got == sorted((r["when"] for r in rows if r["p"] == "Patient/1"), reverse=True)
    ascending = eng.find_sorted("t", "obs", {"p": "Patient/1"}, [("when", 1)])
    assert ascending is not None
    assert [doc["when"] for _, doc in ascending] == sorted(got)
    eng.close()

"""The planner: IXSCAN when an index's leading field is constrained, COLLSCAN otherwise,
hints, and (property test) exactly the results a full scan gives."""

from __future__ import annotations

import os
import shutil
import tempfile

import pytest
from bson import Int64
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from phidb.errors import MongoError
from phidb.query.filter import compile_filter
from phidb.storage.engine import Deadline
from phidb.storage.sqlite import SQLiteEngine


@pytest.fixture
def engine(tmp_path):
    eng = SQLiteEngine(str(tmp_path / "db"), os.urandom(32))
    yield eng
    eng.close()


@pytest.fixture
def indexed(engine):
    engine.insert(
        "test", "c", [{"_id": i, "a": i % 5, "b": {"c": i}, "s": str(i)} for i in range(50)], True
    )
    engine.create_indexes("test", "c", [{"key": {"a": 1}}, {"key": {"b.c": -1, "a": 1}}])
    return engine


@pytest.mark.parametrize(
    "filter, index_name",
    [
        ({"_id": 3}, "_id_"),
        ({"_id": {"$in": [1, 2]}}, "_id_"),
        ({"a": 1}, "a_1"),
        ({"a": {"$gte": 3}}, "a_1"),
        ({"$and": [{"a": {"$lt": 2}}, {"s": "1"}]}, "a_1"),
        ({"b.c": {"$gt": 40}}, "b.c_-1_a_1"),
        ({"a": 1, "_id": 6}, "_id_"),
    ],
)
def test_indexed_filters_use_ixscan(indexed, filter, index_name):
    plan = indexed.plan("test", "c", filter)
    assert (plan.stage, plan.index_name) == ("IXSCAN", index_name)


@pytest.mark.parametrize(
    "filter",
    [
        {},
        {"s": "1"},
        {"a": {"$ne": 1}},
        {"$or": [{"a": 1}, {"a": 2}]},
        {"a": {"$exists": True}},
        {"a": [1]},
        {"a": {"$gt": None}},
    ],
)
def test_other_filters_use_collscan(indexed, filter):
    assert indexed.plan("test", "c", filter).stage == "COLLSCAN"


def test_index_bounds_reported_for_explain(indexed):
    plan = indexed.plan("test", "c", {"a": {"$gte": 3}})
    assert plan.key_pattern == {"a": 1}
    assert plan.index_bounds == {"a": ["[3, MaxKey of type]"]}
    winning = plan.winning_plan()
    assert winning["stage"] == "FETCH"
    assert winning["inputStage"]["indexName"] == "a_1"


def test_hint_by_name_and_key_pattern_forces_index(indexed):
    assert indexed.plan("test", "c", {"s": "1"}, hint="a_1").index_name == "a_1"
    assert indexed.plan("test", "c", {}, hint={"b.c": -1, "a": 1}).index_name == "b.c_-1_a_1"
    assert indexed.plan("test", "c", {"a": 1}, hint={"$natural": 1}).stage == "COLLSCAN"
    hinted = sorted(d["_id"] for _, d in indexed.find("test", "c", {"s": "7"}, hint="a_1"))
    assert hinted == [7]


def test_unknown_hint_is_bad_value(indexed):
    with pytest.raises(MongoError) as info:
        indexed.plan("test", "c", {}, hint="nope_1")
    assert info.value.code == 2
    assert info.value.message.endswith(
        "planner returned error :: caused by :: "
        "hint provided does not correspond to an existing index"
    )
    with pytest.raises(MongoError):
        indexed.find("test", "c", {}, hint={"zz": 1})


def test_find_results_come_in_natural_order(indexed):
    rids = [rid for rid, _ in indexed.find("test", "c", {"a": {"$in": [4, 0]}})]
    assert rids == sorted(rids)
    assert len(rids) == 20


def test_expired_deadline_stops_a_scan(indexed):
    deadline = Deadline(1)
    deadline.expires_at = 0.0
    with pytest.raises(MongoError) as info:
        list(indexed.find("test", "c", {"s": "1"}, deadline=deadline))
    assert info.value.code == 50


# -- property: the planner never changes the results ---------------------------

_scalars = st.one_of(
    st.integers(-3, 3),
    st.sampled_from([1.5, -0.5, Int64(2), "a", "b", "", None, True, False]),
)
_values = st.one_of(
    _scalars,
    st.lists(_scalars, max_size=3),
    st.fixed_dictionaries({}, optional={"c": _scalars, "d": _scalars}),
    st.lists(st.fixed_dictionaries({}, optional={"c": _scalars}), max_size=2),
)
_docs = st.lists(st.fixed_dictionaries({}, optional={"a": _values, "b": _values}), max_size=12)
_fields = st.sampled_from(["a", "b", "a.c", "b.c"])


def _condition(value_strategy):
    ops = st.sampled_from(["$eq", "$gt", "$gte", "$lt", "$lte"])
    return st.one_of(
        value_strategy,
        st.dictionaries(ops, value_strategy, min_size=1, max_size=2),
        st.builds(lambda vs: {"$in": vs}, st.lists(value_strategy, max_size=3)),
    )


_filters = st.one_of(
    st.dictionaries(_fields, _condition(_scalars), max_size=2),
    st.builds(
        lambda clauses: {"$and": clauses},
        st.lists(
            st.dictionaries(_fields, _condition(_scalars), min_size=1, max_size=1),
            min_size=1,
            max_size=3,
        ),
    ),
)
_index_sets = st.lists(
    st.sampled_from(
        [
            {"key": {"a": 1}},
            {"key": {"a": -1}},
            {"key": {"a.c": 1}},
            {"key": {"b.c": -1}},
            {"key": {"a": 1, "b": -1}},
            {"key": {"b": 1}, "sparse": True},
        ]
    ),
    max_size=3,
    unique_by=lambda spec: str(spec["key"]),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(docs=_docs, filters=st.lists(_filters, min_size=1, max_size=4), specs=_index_sets)
def test_indexed_find_returns_exactly_what_a_scan_matches(docs, filters, specs):
    path = tempfile.mkdtemp()
    engine = SQLiteEngine(path, None)
    try:
        docs = [{"_id": i, **doc} for i, doc in enumerate(docs)]
        engine.insert("test", "c", docs, ordered=False)
        for spec in specs:
            try:
                engine.create_indexes("test", "c", [spec])
            except MongoError as exc:
                assert exc.code == 171  # parallel arrays under a compound index
        stored = [d for _, d in engine.find("test", "c", {})]
        for filter in filters:
            expected = [d["_id"] for d in stored if compile_filter(filter)(d)]
            got = [d["_id"] for _, d in engine.find("test", "c", filter)]
            assert got == expected, (filter, engine.plan("test", "c", filter))
    finally:
        engine.close()
        shutil.rmtree(path)

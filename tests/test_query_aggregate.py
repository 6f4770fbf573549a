"""Aggregation pipelines give MongoDB's results, stage errors and codes."""

from __future__ import annotations

from typing import Any

import pytest
from bson.int64 import Int64
from hypothesis import given
from hypothesis import strategies as st

from phidb.errors import MongoError
from phidb.query.aggregate import run_pipeline, split_leading_match

PEOPLE = [
    {"_id": 1, "name": "ann", "age": 30, "city": "oslo", "tags": ["a", "b"]},
    {"_id": 2, "name": "bob", "age": 25, "city": "rome", "tags": []},
    {"_id": 3, "name": "cy", "age": 35, "city": "oslo"},
    {"_id": 4, "name": "di", "age": 25, "city": "rome", "tags": "x"},
]


def run(pipeline: list[Any], docs: list[dict[str, Any]] | None = None, **others: Any) -> list[Any]:
    collections = {name: list(value) for name, value in others.items()}
    return list(
        run_pipeline(pipeline, PEOPLE if docs is None else docs, lookup=collections.__getitem__)
    )


def code(pipeline: list[Any], docs: list[dict[str, Any]] | None = None) -> int:
    with pytest.raises(MongoError) as info:
        run(pipeline, docs)
    return info.value.code


def test_count_documents_pipeline_counts_matches() -> None:
    pipeline = [
        {"$match": {"city": "rome"}},
        {"$skip": 0},
        {"$limit": 10},
        {"$group": {"_id": 1, "n": {"$sum": 1}}},
    ]
    assert run(pipeline) == [{"_id": 1, "n": 2}]
    assert run([{"$match": {"city": "x"}}, {"$group": {"_id": 1, "n": {"$sum": 1}}}]) == []


def test_match_with_expr() -> None:
    result = run([{"$match": {"$expr": {"$gt": ["$age", 28]}}}, {"$project": {"_id": 1}}])
    assert result == [{"_id": 1}, {"_id": 3}]


def test_project_inclusion_exclusion_and_computed_fields() -> None:
    assert run([{"$project": {"name": 1, "_id": 0}}, {"$limit": 1}]) == [{"name": "ann"}]
    assert run([{"$project": {"age": 1, "older": {"$add": ["$age", 1]}}}, {"$limit": 1}]) == [
        {"_id": 1, "age": 30, "older": 31}
    ]
    assert run([{"$project": {"tags": 0, "city": 0, "age": 0}}, {"$limit": 1}]) == [
        {"_id": 1, "name": "ann"}
    ]
    nested = [{"_id": 1, "a": {"b": 1, "c": 2}, "l": [{"b": 1, "c": 2}, 5]}]
    assert run([{"$project": {"a.b": 1, "l.c": 1}}], nested) == [
        {"_id": 1, "a": {"b": 1}, "l": [{"c": 2}]}
    ]
    assert code([{"$project": {"a": 1, "b": 0}}]) == 31254
    assert code([{"$project": {}}]) == 51272


def test_add_fields_set_and_unset() -> None:
    docs = [{"_id": 1, "a": {"x": 1}, "n": 2}]
    assert run([{"$addFields": {"a.y": 2, "m": {"$multiply": ["$n", 10]}}}], docs) == [
        {"_id": 1, "a": {"x": 1, "y": 2}, "n": 2, "m": 20}
    ]
    assert run([{"$set": {"n": "$$REMOVE"}}], docs) == [{"_id": 1, "a": {"x": 1}}]
    assert run([{"$unset": ["a.x", "n"]}], docs) == [{"_id": 1, "a": {}}]


def test_group_with_accumulators() -> None:
    pipeline = [
        {
            "$group": {
                "_id": "$city",
                "total": {"$sum": "$age"},
                "avg": {"$avg": "$age"},
                "min": {"$min": "$age"},
                "max": {"$max": "$age"},
                "first": {"$first": "$name"},
                "last": {"$last": "$name"},
                "names": {"$push": "$name"},
                "ages": {"$addToSet": "$age"},
                "n": {"$count": {}},
            }
        },
        {"$sort": {"_id": 1}},
    ]
    assert run(pipeline) == [
        {
            "_id": "oslo",
            "total": 65,
            "avg": 32.5,
            "min": 30,
            "max": 35,
            "first": "ann",
            "last": "cy",
            "names": ["ann", "cy"],
            "ages": [30, 35],
            "n": 2,
        },
        {
            "_id": "rome",
            "total": 50,
            "avg": 25.0,
            "min": 25,
            "max": 25,
            "first": "bob",
            "last": "di",
            "names": ["bob", "di"],
            "ages": [25],
            "n": 2,
        },
    ]


def test_group_compound_and_null_ids() -> None:
    docs = [{"a": 1, "b": 2}, {"a": 1, "b": 2.0}, {"b": 3}]
    result = run([{"$group": {"_id": {"a": "$a", "b": "$b"}, "c": {"$sum": 1}}}], docs)
    assert result == [{"_id": {"a": 1, "b": 2}, "c": 2}, {"_id": {"b": 3}, "c": 1}]
    assert run([{"$group": {"_id": "$nope", "c": {"$sum": 1}}}], docs) == [{"_id": None, "c": 3}]


def test_group_errors() -> None:
    assert code([{"$group": {"n": {"$sum": 1}}}]) == 15955
    assert code([{"$group": {"_id": 1, "n": {"$foo": 1}}}]) == 15952
    assert code([{"$group": {"_id": 1, "a.b": {"$sum": 1}}}]) == 40235
    assert code([{"$group": {"_id": 1, "n": 1}}]) == 40238


def test_sort_skip_limit() -> None:
    result = run([{"$sort": {"age": -1, "name": 1}}, {"$skip": 1}, {"$limit": 2}])
    assert [d["_id"] for d in result] == [1, 2]
    assert code([{"$limit": 0}]) == 15958
    assert code([{"$limit": "x"}]) == 15957
    assert code([{"$skip": -1}]) == 15956
    assert code([{"$sort": {"a": 2}}]) == 15975


def test_sort_arrays_by_smallest_ascending_and_largest_descending() -> None:
    docs = [{"_id": 1, "v": [1, 9]}, {"_id": 2, "v": 5}]
    assert [d["_id"] for d in run([{"$sort": {"v": 1}}], docs)] == [1, 2]
    assert [d["_id"] for d in run([{"$sort": {"v": -1}}], docs)] == [1, 2]
    assert [d["_id"] for d in run([{"$sort": {"v": -1}}], [docs[1], docs[0]])] == [1, 2]


def test_unwind_forms() -> None:
    assert run([{"$unwind": "$tags"}, {"$project": {"tags": 1}}]) == [
        {"_id": 1, "tags": "a"},
        {"_id": 1, "tags": "b"},
        {"_id": 4, "tags": "x"},
    ]
    preserved = run(
        [
            {
                "$unwind": {
                    "path": "$tags",
                    "includeArrayIndex": "i",
                    "preserveNullAndEmptyArrays": True,
                }
            },
            {"$project": {"tags": 1, "i": 1}},
        ]
    )
    assert preserved == [
        {"_id": 1, "tags": "a", "i": Int64(0)},
        {"_id": 1, "tags": "b", "i": Int64(1)},
        {"_id": 2, "i": None},
        {"_id": 3, "i": None},
        {"_id": 4, "tags": "x", "i": None},
    ]
    assert code([{"$unwind": "tags"}]) == 28818
    assert code([{"$unwind": {"path": "$a", "bad": 1}}]) == 28811


def test_count_stage() -> None:
    assert run([{"$count": "n"}]) == [{"n": 4}]
    assert run([{"$match": {"x": 1}}, {"$count": "n"}]) == []
    assert code([{"$count": "$n"}]) == 40158


def test_lookup_equality_with_arrays_on_either_side() -> None:
    orders = [{"_id": 10, "item": "a", "q": 1}, {"_id": 11, "item": ["b", "c"]}, {"_id": 12}]
    items = [{"_id": 1, "sku": "a"}, {"_id": 2, "sku": ["b", "x"]}, {"_id": 3}]
    result = run(
        [
            {"$lookup": {"from": "items", "localField": "item", "foreignField": "sku", "as": "m"}},
            {"$project": {"m._id": 1}},
        ],
        orders,
        items=items,
    )
    assert result == [
        {"_id": 10, "m": [{"_id": 1}]},
        {"_id": 11, "m": [{"_id": 2}]},
        {"_id": 12, "m": [{"_id": 3}]},  # missing matches missing, as null
    ]


def test_replace_root_and_replace_with() -> None:
    docs = [{"_id": 1, "inner": {"a": 1}}]
    assert run([{"$replaceRoot": {"newRoot": "$inner"}}], docs) == [{"a": 1}]
    assert run([{"$replaceWith": {"x": "$_id"}}], docs) == [{"x": 1}]
    assert code([{"$replaceWith": "$nope"}], docs) == 40228


def test_facet_and_sort_by_count() -> None:
    result = run(
        [
            {
                "$facet": {
                    "n": [{"$count": "n"}],
                    "cities": [{"$sortByCount": "$city"}, {"$sort": {"_id": 1}}],
                }
            }
        ]
    )
    assert result == [
        {
            "n": [{"n": 4}],
            "cities": [{"_id": "oslo", "count": 2}, {"_id": "rome", "count": 2}],
        }
    ]
    assert run([{"$sortByCount": {"$type": "$tags"}}, {"$limit": 1}]) == [
        {"_id": "array", "count": 2}
    ]


def test_stage_errors() -> None:
    e = pytest.raises(MongoError, run, [{"$foo": {}}]).value
    assert (e.code, e.message) == (40324, "Unrecognized pipeline stage name: '$foo'")
    assert code([{"$match": {}, "$limit": 1}]) == 40323
    assert code(["x"]) == 14


def test_deadline_is_checked_while_streaming() -> None:
    class Expired:
        def remaining(self) -> float | None:
            return 0.0

        def check(self) -> None:
            raise MongoError(50, "operation exceeded time limit")

    with pytest.raises(MongoError) as info:
        list(run_pipeline([{"$limit": 5}], PEOPLE, lookup=lambda _: [], deadline=Expired()))
    assert info.value.code == 50


def test_split_leading_match() -> None:
    pipeline = [{"$match": {"a": 1}}, {"$match": {"b": 2}}, {"$limit": 1}]
    assert split_leading_match(pipeline) == ({"$and": [{"a": 1}, {"b": 2}]}, [{"$limit": 1}])
    assert split_leading_match([{"$limit": 1}]) == (None, [{"$limit": 1}])


@given(st.lists(st.integers(min_value=-(2**31), max_value=2**31 - 1), max_size=30))
def test_group_sum_equals_python_sum(values: list[int]) -> None:
    docs = [{"v": v} for v in values]
    result = run([{"$group": {"_id": None, "s": {"$sum": "$v"}}}], docs)
    assert result == ([{"_id": None, "s": sum(values)}] if values else [])


def test_out_and_merge_before_the_last_stage_fail_with_40601() -> None:
    with pytest.raises(MongoError) as info:
        run([{"$out": "x"}, {"$match": {}}])
    assert info.value.code == 40601
    assert info.value.message == "$out can only be the final stage in the pipeline"
    with pytest.raises(MongoError) as merged:
        run([{"$merge": {"into": "x"}}, {"$limit": 1}])
    assert merged.value.code == 40601
    assert merged.value.message == "$merge can only be the final stage in the pipeline"
    assert code([{"$match": {}}, {"$merge": {"into": "x"}}]) == 40324


def test_push_past_100_mb_fails_with_exceeded_memory_limit() -> None:
    from phidb.query import accumulators

    push = accumulators.make("$push")
    chunk = "x" * (1024 * 1024)
    with pytest.raises(MongoError) as info:
        for _ in range(101):
            push.add(chunk)
    assert info.value.code == 146
    assert info.value.message == (
        "$push used too much memory and cannot spill to disk. Memory limit: 104857600 bytes"
    )

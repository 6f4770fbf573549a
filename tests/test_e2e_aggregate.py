"""aggregate through pymongo: pipelines with the leading $match on an index, $group,
$lookup across collections, $out, and the command's own argument errors."""

from __future__ import annotations

from typing import Any

import pytest
from pymongo import MongoClient
from pymongo.errors import OperationFailure

DB = "e2e_aggregate"


@pytest.fixture
def orders(admin: MongoClient[Any], request: pytest.FixtureRequest):
    collection = admin[DB][request.node.name]
    collection.drop()
    collection.insert_many(
        [
            {"_id": 1, "item": "a", "qty": 2, "customer": "c1"},
            {"_id": 2, "item": "b", "qty": 1, "customer": "c2"},
            {"_id": 3, "item": "a", "qty": 5, "customer": "c1"},
            {"_id": 4, "item": "c", "qty": 4, "customer": "c3"},
        ]
    )
    return collection


def test_match_group_sort(orders):
    result = list(
        orders.aggregate(
            [
                {"$match": {"qty": {"$gte": 2}}},
                {"$group": {"_id": "$item", "total": {"$sum": "$qty"}}},
                {"$sort": {"total": -1}},
            ]
        )
    )
    assert result == [{"_id": "a", "total": 7}, {"_id": "c", "total": 4}]


def test_leading_match_uses_an_index(orders):
    orders.create_index("item")
    assert [d["_id"] for d in orders.aggregate([{"$match": {"item": "a"}}])] == [1, 3]
    plan = orders.database.command(
        "aggregate", orders.name, pipeline=[{"$match": {"item": "a"}}], explain=True
    )
    text = repr(plan)
    assert "IXSCAN" in text and "item_1" in text


def test_lookup_reads_another_collection(orders):
    customers = orders.database[orders.name + "_customers"]
    customers.drop()
    customers.insert_many([{"_id": "c1", "name": "Ada"}, {"_id": "c2", "name": "Grace"}])
    result = list(
        orders.aggregate(
            [
                {"$match": {"_id": {"$in": [1, 2]}}},
                {
                    "$lookup": {
                        "from": customers.name,
                        "localField": "customer",
                        "foreignField": "_id",
                        "as": "who",
                    }
                },
                {"$project": {"_id": 1, "name": {"$first": "$who.name"}}},
            ]
        )
    )
    assert result == [{"_id": 1, "name": "Ada"}, {"_id": 2, "name": "Grace"}]


def test_batches_of_an_aggregate_cursor(orders):
    docs = list(orders.aggregate([{"$sort": {"_id": 1}}], batchSize=1))
    assert [d["_id"] for d in docs] == [1, 2, 3, 4]


def test_count_documents_uses_aggregate(orders):
    assert orders.count_documents({"item": "a"}) == 2


def test_out_replaces_the_target_collection(orders):
    target = orders.database[orders.name + "_out"]
    target.drop()
    target.insert_one({"_id": "stale"})
    list(orders.aggregate([{"$match": {"item": "a"}}, {"$out": target.name}]))
    assert [d["_id"] for d in target.find()] == [1, 3]


def test_cursor_option_is_required(orders):
    with pytest.raises(OperationFailure) as info:
        orders.database.command("aggregate", orders.name, pipeline=[])
    assert info.value.code == 9
    assert "The 'cursor' option is required" in str(info.value)


def test_unknown_stage_is_40324(orders):
    with pytest.raises(OperationFailure) as info:
        list(orders.aggregate([{"$nosuchstage": {}}]))
    assert info.value.code == 40324


def test_collectionless_documents_stage(admin):
    result = admin[DB].aggregate([{"$documents": [{"x": 1}, {"x": 2}]}, {"$match": {"x": 2}}])
    assert list(result) == [{"x": 2}]

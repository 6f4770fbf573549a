"""find's options as pymongo sends them: filter, sort, skip, limit, projection, hint,
and MongoDB's errors for malformed arguments."""

from __future__ import annotations

from typing import Any

import pytest
from pymongo import ASCENDING, DESCENDING, MongoClient
from pymongo.errors import OperationFailure

DB = "e2e_query"

PEOPLE = [
    {"_id": 1, "name": "Ada", "age": 36, "city": "London", "tags": ["math", "code"]},
    {"_id": 2, "name": "Grace", "age": 85, "city": "New York", "tags": ["navy", "code"]},
    {"_id": 3, "name": "Alan", "age": 41, "city": "London", "tags": ["math"]},
    {"_id": 4, "name": "Edsger", "age": 72, "city": "Austin", "tags": []},
    {"_id": 5, "name": "Barbara", "age": 41, "city": "Boston"},
]


@pytest.fixture
def people(admin: MongoClient[Any], request: pytest.FixtureRequest):
    collection = admin[DB][request.node.name]
    collection.drop()
    collection.insert_many([dict(p) for p in PEOPLE])
    return collection


def ids(docs) -> list[int]:
    return [d["_id"] for d in docs]


def test_filter_with_operators(people):
    assert ids(people.find({"age": {"$gt": 40, "$lt": 80}})) == [3, 4, 5]
    assert ids(people.find({"city": {"$in": ["Boston", "Austin"]}})) == [4, 5]
    assert ids(people.find({"tags": "code"})) == [1, 2]
    assert ids(people.find({"$or": [{"age": 36}, {"name": "Edsger"}]})) == [1, 4]
    assert ids(people.find({"tags": {"$exists": False}})) == [5]


def test_sort_on_several_keys_is_stable(people):
    docs = people.find({}, sort=[("age", DESCENDING), ("name", ASCENDING)])
    assert ids(docs) == [2, 4, 3, 5, 1]
    assert ids(people.find().sort("city", ASCENDING)) == [4, 5, 1, 3, 2]


def test_skip_and_limit_apply_after_sort(people):
    assert ids(people.find().sort("age", ASCENDING).skip(1).limit(2)) == [3, 5]


def test_inclusion_and_exclusion_projections(people):
    assert people.find_one({"_id": 1}, {"name": 1}) == {"_id": 1, "name": "Ada"}
    assert people.find_one({"_id": 1}, {"name": 1, "_id": 0}) == {"name": "Ada"}
    assert people.find_one({"_id": 5}, {"name": 0, "city": 0}) == {"_id": 5, "age": 41}


def test_natural_sort_descending_reverses_storage_order(people):
    assert ids(people.find().sort("$natural", DESCENDING)) == [5, 4, 3, 2, 1]


def test_find_on_a_missing_collection_returns_nothing(admin):
    reply = admin[DB].command("find", "never_created")
    assert reply["cursor"]["firstBatch"] == [] and reply["cursor"]["id"] == 0


def test_limit_of_the_wrong_type_is_type_mismatch(people):
    with pytest.raises(OperationFailure) as info:
        people.database.command("find", people.name, limit="3")
    assert info.value.code == 14
    assert "BSON field 'find.limit' is the wrong type 'string'" in str(info.value)


def test_unknown_find_field_is_40415(people):
    with pytest.raises(OperationFailure) as info:
        people.database.command("find", people.name, foo=1)
    assert info.value.code == 40415
    assert "BSON field 'find.foo' is an unknown field." in str(info.value)


def test_malformed_filter_is_bad_value(people):
    with pytest.raises(OperationFailure) as info:
        list(people.find({"$nosuch": 1}))
    assert info.value.code == 2


def test_negative_skip_is_rejected(people):
    with pytest.raises(OperationFailure) as info:
        people.database.command("find", people.name, skip=-1)
    assert info.value.code == 51024


def test_generic_fields_are_accepted(people):
    reply = people.database.command(
        "find", people.name, filter={"_id": 1}, comment="audit", allowDiskUse=True, maxTimeMS=5000
    )
    assert ids(reply["cursor"]["firstBatch"]) == [1]

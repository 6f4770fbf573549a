"""insert, find, delete, count and distinct through pymongo against a real server:
generated `_id`s, write errors as BulkWriteError shows them, BSON types round-tripping."""

from __future__ import annotations

import datetime
import uuid
from typing import Any

import pytest
from bson import Binary, Decimal128, Int64, ObjectId, Regex
from pymongo import MongoClient
from pymongo.errors import BulkWriteError, DuplicateKeyError, OperationFailure, WriteError

DB = "e2e_crud"


@pytest.fixture
def coll(admin: MongoClient[Any], request: pytest.FixtureRequest):
    collection = admin[DB][request.node.name]
    collection.drop()
    return collection


def test_insert_one_generates_an_objectid_placed_first(coll):
    result = coll.insert_one({"name": "Ada", "age": 36})
    assert isinstance(result.inserted_id, ObjectId)
    stored = coll.find_one({"name": "Ada"})
    assert list(stored) == ["_id", "name", "age"]
    assert stored == {"_id": result.inserted_id, "name": "Ada", "age": 36}


def test_given_id_is_moved_first(coll):
    coll.database.command("insert", coll.name, documents=[{"a": 1, "_id": 7}])
    assert list(coll.find_one({"_id": 7})) == ["_id", "a"]


def test_ordered_insert_many_stops_at_the_first_duplicate(coll):
    with pytest.raises(BulkWriteError) as info:
        coll.insert_many([{"_id": 1}, {"_id": 1}, {"_id": 2}])
    details = info.value.details
    assert details["nInserted"] == 1
    assert len(details["writeErrors"]) == 1
    error = details["writeErrors"][0]
    assert (error["index"], error["code"]) == (1, 11000)
    assert error["keyPattern"] == {"_id": 1}
    assert error["keyValue"] == {"_id": 1}
    assert sorted(d["_id"] for d in coll.find()) == [1]


def test_unordered_insert_many_inserts_everything_else(coll):
    with pytest.raises(BulkWriteError) as info:
        coll.insert_many(
            [{"_id": 1}, {"_id": 1}, {"_id": 2}, {"_id": 2}, {"_id": 3}], ordered=False
        )
    details = info.value.details
    assert details["nInserted"] == 3
    assert [(e["index"], e["code"]) for e in details["writeErrors"]] == [(1, 11000), (3, 11000)]
    assert sorted(d["_id"] for d in coll.find()) == [1, 2, 3]


def test_duplicate_key_error_names_the_key(coll):
    coll.insert_one({"_id": "x"})
    with pytest.raises(DuplicateKeyError) as info:
        coll.insert_one({"_id": "x"})
    assert info.value.code == 11000
    assert info.value.details["keyPattern"] == {"_id": 1}
    assert info.value.details["keyValue"] == {"_id": "x"}


def test_array_id_is_invalid_id_field(coll):
    with pytest.raises(WriteError) as info:
        coll.insert_one({"_id": [1, 2]})
    assert info.value.code == 53
    assert coll.count_documents({}) == 0


def test_dollar_prefixed_top_level_fields_are_allowed_in_inserts(coll):
    coll.insert_one({"_id": 1, "$price": 50})
    assert coll.find_one({"_id": 1}) == {"_id": 1, "$price": 50}


def test_bson_types_round_trip(coll):
    when = datetime.datetime(2024, 5, 17, 8, 30, 15, 123000)
    doc = {
        "_id": ObjectId(),
        "when": when,
        "amount": Decimal128("1234.5678"),
        "big": Int64(2**40),
        "small": 7,
        "ratio": 0.25,
        "blob": b"\x00\x01\xff",  # pymongo decodes subtype 0 as bytes
        "uuid": Binary(uuid.UUID("12345678-1234-5678-1234-567812345678").bytes, 4),
        "nested": [[1, [2, 3]], {"a": [{"b": None}]}],
        "flag": True,
        "pattern": Regex("^a", "i"),
    }
    coll.insert_one(doc)
    back = coll.find_one({"_id": doc["_id"]})
    assert back == doc
    assert isinstance(back["big"], Int64)
    assert isinstance(back["amount"], Decimal128)


def test_find_one_and_filters_by_type_sensitive_values(coll):
    coll.insert_many([{"_id": i, "v": i % 3} for i in range(9)])
    assert coll.find_one({"v": 2}, sort=[("_id", -1)]) == {"_id": 8, "v": 2}
    assert coll.find_one({"v": 5}) is None


def test_delete_one_and_delete_many_report_counts(coll):
    coll.insert_many([{"_id": i, "even": i % 2 == 0} for i in range(6)])
    assert coll.delete_one({"even": True}).deleted_count == 1
    assert coll.delete_many({"even": True}).deleted_count == 2
    assert coll.delete_many({"nothing": 1}).deleted_count == 0
    assert sorted(d["_id"] for d in coll.find()) == [1, 3, 5]


def test_delete_limit_other_than_0_or_1_fails_to_parse(coll):
    with pytest.raises(OperationFailure) as info:
        coll.database.command("delete", coll.name, deletes=[{"q": {}, "limit": 2}])
    assert info.value.code == 9


def test_count_documents_and_estimated_count(coll):
    coll.insert_many([{"_id": i, "g": i % 2} for i in range(7)])
    assert coll.count_documents({}) == 7
    assert coll.count_documents({"g": 1}) == 3
    assert coll.count_documents({"g": 0}, skip=1, limit=2) == 2
    assert coll.estimated_document_count() == 7
    assert coll.database.command("count", coll.name, query={"g": 0})["n"] == 4
    assert coll.database.command("count", "missing_collection")["n"] == 0


def test_distinct_unwinds_arrays_and_dedups_numbers(coll):
    coll.insert_many(
        [
            {"tags": ["a", "b"], "n": 1},
            {"tags": "c", "n": 1.0},
            {"tags": ["a", ["x"]], "n": Int64(2)},
            {"other": 1},
        ]
    )
    assert coll.distinct("tags") == ["a", "b", "c", ["x"]]
    assert coll.distinct("n") == [1, 2]
    assert coll.distinct("tags", {"n": 1}) == ["a", "b", "c"]


def test_distinct_through_arrays_of_documents(coll):
    coll.insert_one({"items": [{"sku": "p1"}, {"sku": "p2"}, {"sku": "p1"}]})
    assert coll.distinct("items.sku") == ["p1", "p2"]


def test_point_reads_by_id_return_exact_types_and_match_numerically(admin):
    coll = admin.crud_point.c
    coll.drop()
    doc = {
        "_id": 7,
        "when": datetime.datetime(2024, 5, 1, 12, 30, 15, 123000),
        "n": Int64(2**40),
        "d": Decimal128("1.10"),
        "nested": {"a": [1, {"b": None}]},
    }
    coll.insert_one(doc)
    coll.insert_one({"_id": "seven"})
    assert coll.find_one({"_id": 7}) == doc
    assert type(coll.find_one({"_id": 7})["n"]) is Int64
    # Numeric _id equality ignores the numeric type, as MongoDB's does.
    assert coll.find_one({"_id": 7.0}) == doc
    assert coll.find_one({"_id": Int64(7)}) == doc
    assert coll.find_one({"_id": 8}) is None
    assert coll.find_one({"_id": "seven"}) == {"_id": "seven"}
    assert list(coll.find({"_id": 7}).skip(1)) == []
    assert coll.find_one({"_id": 7}, {"n": 1}) == {"_id": 7, "n": Int64(2**40)}
    reply = coll.database.command("find", "c", filter={"_id": 7}, batchSize=0)
    more = coll.database.command("getMore", reply["cursor"]["id"], collection="c")
    assert more["cursor"]["nextBatch"] == [doc]

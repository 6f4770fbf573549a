"""update and findAndModify through pymongo: every update operator, upserts, replacement,
arrayFilters, and MongoDB's errors for changing `_id` or multi replacements."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from pymongo import MongoClient, ReturnDocument
from pymongo.errors import BulkWriteError, OperationFailure, WriteError
from pymongo.operations import InsertOne, UpdateOne

DB = "e2e_update"


@pytest.fixture
def coll(admin: MongoClient[Any], request: pytest.FixtureRequest):
    collection = admin[DB][request.node.name]
    collection.drop()
    return collection


def test_field_operators(coll):
    coll.insert_one({"_id": 1, "a": 1, "b": 2, "c": 3, "lo": 5, "hi": 5, "old": "x", "m": 2})
    result = coll.update_one(
        {"_id": 1},
        {
            "$set": {"a": 10, "nested.deep": True},
            "$unset": {"b": ""},
            "$inc": {"c": 2},
            "$min": {"lo": 1},
            "$max": {"hi": 9},
            "$rename": {"old": "new"},
            "$mul": {"m": 3},
        },
    )
    assert (result.matched_count, result.modified_count) == (1, 1)
    assert coll.find_one({"_id": 1}) == {
        "_id": 1, "a": 10, "c": 5, "lo": 1, "hi": 9, "m": 6, "nested": {"deep": True}, "new": "x",
    }  # fmt: skip


def test_array_operators(coll):
    coll.insert_one({"_id": 1, "list": [1, 2, 3, 2], "set": ["a"], "q": [1, 2, 3]})
    coll.update_one({"_id": 1}, {"$push": {"list": {"$each": [4, 5], "$slice": -5}}})
    coll.update_one({"_id": 1}, {"$addToSet": {"set": {"$each": ["a", "b"]}}})
    coll.update_one({"_id": 1}, {"$pull": {"list": 2}, "$pop": {"q": -1}})
    assert coll.find_one({"_id": 1}) == {
        "_id": 1,
        "list": [3, 4, 5],
        "set": ["a", "b"],
        "q": [2, 3],
    }


def test_current_date_sets_a_datetime(coll):
    coll.insert_one({"_id": 1})
    coll.update_one({"_id": 1}, {"$currentDate": {"seen": True}})
    assert isinstance(coll.find_one({"_id": 1})["seen"], datetime.datetime)


def test_positional_and_array_filters(coll):
    coll.insert_one({"_id": 1, "grades": [80, 95, 70], "items": [{"q": 1}, {"q": 5}]})
    coll.update_one({"_id": 1, "grades": 95}, {"$set": {"grades.$": 96}})
    coll.update_one(
        {"_id": 1}, {"$inc": {"items.$[big].q": 10}}, array_filters=[{"big.q": {"$gt": 2}}]
    )
    assert coll.find_one({"_id": 1}) == {
        "_id": 1, "grades": [80, 96, 70], "items": [{"q": 1}, {"q": 15}],
    }  # fmt: skip


def test_update_many_counts_matched_and_modified(coll):
    coll.insert_many([{"_id": i, "v": 1 if i < 3 else 2} for i in range(5)])
    result = coll.update_many({}, {"$set": {"v": 1}})
    assert (result.matched_count, result.modified_count) == (5, 2)


def test_upsert_reports_the_upserted_id_and_seeds_from_the_filter(coll):
    result = coll.update_one(
        {"name": "Ada", "age": {"$gt": 1}},
        {"$set": {"x": 1}, "$setOnInsert": {"new": True}},
        upsert=True,
    )
    assert result.matched_count == 0 and result.modified_count == 0
    doc = coll.find_one({"_id": result.upserted_id})
    assert doc == {"_id": result.upserted_id, "name": "Ada", "x": 1, "new": True}
    again = coll.update_one(
        {"name": "Ada"}, {"$set": {"x": 2}, "$setOnInsert": {"new": 0}}, upsert=True
    )
    assert again.upserted_id is None and again.modified_count == 1
    assert coll.find_one({"name": "Ada"})["new"] is True


def test_raw_update_reply_has_upserted_entries(coll):
    reply = coll.database.command(
        "update",
        coll.name,
        updates=[
            {"q": {"_id": 1}, "u": {"$set": {"a": 1}}, "upsert": True},
            {"q": {"_id": 99}, "u": {"$set": {"a": 1}}},
            {"q": {"_id": 2}, "u": {"b": 1}, "upsert": True},
        ],
    )
    assert reply["n"] == 2 and reply["nModified"] == 0
    assert reply["upserted"] == [{"index": 0, "_id": 1}, {"index": 2, "_id": 2}]
    assert coll.find_one({"_id": 2}) == {"_id": 2, "b": 1}


def test_replace_one_keeps_the_id(coll):
    coll.insert_one({"_id": 1, "a": 1, "b": 2})
    assert coll.replace_one({"_id": 1}, {"c": 3}).modified_count == 1
    assert coll.find_one({"_id": 1}) == {"_id": 1, "c": 3}


def test_changing_id_is_immutable_field(coll):
    coll.insert_one({"_id": 1, "a": 1})
    with pytest.raises(WriteError) as info:
        coll.update_one({"_id": 1}, {"$set": {"_id": 2}})
    assert info.value.code == 66
    with pytest.raises(WriteError) as info:
        coll.replace_one({"_id": 1}, {"_id": 3, "a": 2})
    assert info.value.code == 66
    assert coll.find_one({"_id": 1}) == {"_id": 1, "a": 1}


def test_multi_replacement_fails_to_parse(coll):
    reply = coll.database.command(
        "update", coll.name, updates=[{"q": {}, "u": {"a": 1}, "multi": True}]
    )
    assert reply["writeErrors"][0]["code"] == 9
    assert reply["n"] == 0


def test_unknown_update_operator_is_a_write_error(coll):
    coll.insert_one({"_id": 1})
    with pytest.raises(WriteError) as info:
        coll.update_one({"_id": 1}, {"$bogus": {"a": 1}})
    assert info.value.code == 9


def test_bulk_write_mixes_inserts_and_updates(coll):
    with pytest.raises(BulkWriteError) as info:
        coll.bulk_write(
            [
                InsertOne({"_id": 1}),
                UpdateOne({"_id": 1}, {"$set": {"_id": 5}}),
                InsertOne({"_id": 2}),
            ]
        )
    details = info.value.details
    assert details["nInserted"] == 1
    assert details["writeErrors"][0]["code"] == 66
    assert details["writeErrors"][0]["index"] == 1


def test_pipeline_update(coll):
    coll.insert_one({"_id": 1, "a": 2, "b": 3})
    coll.update_one({"_id": 1}, [{"$set": {"sum": {"$add": ["$a", "$b"]}}}, {"$unset": "b"}])
    assert coll.find_one({"_id": 1}) == {"_id": 1, "a": 2, "sum": 5}


def test_find_one_and_update_returns_before_or_after(coll):
    coll.insert_many([{"_id": 1, "n": 5}, {"_id": 2, "n": 1}])
    before = coll.find_one_and_update({}, {"$inc": {"n": 1}}, sort=[("n", 1)])
    assert before == {"_id": 2, "n": 1}
    after = coll.find_one_and_update(
        {"_id": 1}, {"$inc": {"n": 1}}, return_document=ReturnDocument.AFTER, projection={"_id": 0}
    )
    assert after == {"n": 6}


def test_find_one_and_update_upsert(coll):
    doc = coll.find_one_and_update(
        {"_id": "k"}, {"$set": {"v": 1}}, upsert=True, return_document=ReturnDocument.AFTER
    )
    assert doc == {"_id": "k", "v": 1}
    raw = coll.database.command(
        "findAndModify", coll.name, query={"_id": "j"}, update={"$set": {"v": 2}}, upsert=True
    )
    assert raw["lastErrorObject"] == {"n": 1, "updatedExisting": False, "upserted": "j"}
    assert raw["value"] is None


def test_find_one_and_delete_and_replace(coll):
    coll.insert_many([{"_id": 1, "a": 1}, {"_id": 2, "a": 2}])
    assert coll.find_one_and_delete({"a": 2}) == {"_id": 2, "a": 2}
    assert coll.find_one_and_delete({"a": 2}) is None
    assert coll.find_one_and_replace({"_id": 1}, {"b": 1}) == {"_id": 1, "a": 1}
    assert coll.find_one({"_id": 1}) == {"_id": 1, "b": 1}


def test_find_and_modify_with_both_remove_and_update_fails(coll):
    with pytest.raises(OperationFailure) as info:
        coll.database.command("findAndModify", coll.name, remove=True, update={"$set": {"a": 1}})
    assert info.value.code == 9

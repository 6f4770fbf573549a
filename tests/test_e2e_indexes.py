"""Indexes through pymongo: create, list, drop, unique violations, and explain's
IXSCAN for an indexed equality against COLLSCAN otherwise."""

from __future__ import annotations

from typing import Any

import pytest
from pymongo import ASCENDING, DESCENDING, MongoClient
from pymongo.errors import DuplicateKeyError, OperationFailure

DB = "e2e_indexes"


@pytest.fixture
def coll(admin: MongoClient[Any], request: pytest.FixtureRequest):
    collection = admin[DB][request.node.name]
    collection.drop()
    return collection


def test_create_index_default_name_and_reply(coll):
    reply = coll.database.command(
        "createIndexes", coll.name, indexes=[{"key": {"a": 1, "b": -1}, "name": "a_1_b_-1"}]
    )
    assert reply["numIndexesBefore"] == 1 and reply["numIndexesAfter"] == 2
    assert reply["createdCollectionAutomatically"] is True
    assert coll.create_index([("a", ASCENDING), ("b", DESCENDING)]) == "a_1_b_-1"
    again = coll.database.command(
        "createIndexes", coll.name, indexes=[{"key": {"a": 1, "b": -1}, "name": "a_1_b_-1"}]
    )
    assert again["note"] == "all indexes already exist"
    assert again["numIndexesBefore"] == again["numIndexesAfter"] == 2


def test_list_indexes(coll):
    coll.create_index("email", unique=True)
    indexes = list(coll.list_indexes())
    assert [ix["name"] for ix in indexes] == ["_id_", "email_1"]
    assert indexes[0]["key"] == {"_id": 1}
    assert indexes[1]["key"] == {"email": 1} and indexes[1]["unique"] is True
    assert coll.index_information()["email_1"]["key"] == [("email", 1)]


def test_unique_index_rejects_duplicates_with_key_pattern(coll):
    coll.create_index("email", unique=True)
    coll.insert_one({"email": "a@example.org"})
    with pytest.raises(DuplicateKeyError) as info:
        coll.insert_one({"email": "a@example.org"})
    assert info.value.details["keyPattern"] == {"email": 1}
    assert info.value.details["keyValue"] == {"email": "a@example.org"}


def test_drop_index_by_name_and_key_and_missing(coll):
    coll.create_index("a")
    coll.create_index("b")
    assert coll.database.command("dropIndexes", coll.name, index="a_1")["nIndexesWas"] == 3
    coll.drop_index([("b", 1)])
    assert [ix["name"] for ix in coll.list_indexes()] == ["_id_"]
    with pytest.raises(OperationFailure) as info:
        coll.drop_index("nope_1")
    assert info.value.code == 27


def test_drop_all_indexes_keeps_id(coll):
    coll.create_index("a")
    coll.create_index("b")
    coll.drop_indexes()
    assert [ix["name"] for ix in coll.list_indexes()] == ["_id_"]


def test_id_index_cannot_be_dropped(coll):
    coll.insert_one({})
    with pytest.raises(OperationFailure) as info:
        coll.drop_index("_id_")
    assert info.value.code == 72


def test_bad_key_values_cannot_create_index(coll):
    for key in ({"a": 0}, {"a": True}, {"a": "nosuchplugin"}, {}):
        with pytest.raises(OperationFailure) as info:
            coll.database.command("createIndexes", coll.name, indexes=[{"key": key, "name": "x"}])
        assert info.value.code == 67, key


def test_list_indexes_of_a_missing_collection(coll):
    with pytest.raises(OperationFailure) as info:
        coll.database.command("listIndexes", "does_not_exist")
    assert info.value.code == 26


def test_explain_shows_ixscan_for_an_indexed_equality(coll):
    coll.insert_many([{"_id": i, "mrn": f"M{i}", "x": i} for i in range(10)])
    coll.create_index("mrn")
    plan = coll.find({"mrn": "M3"}).explain()
    winning = plan["queryPlanner"]["winningPlan"]
    assert winning["stage"] == "FETCH"
    assert winning["inputStage"]["stage"] == "IXSCAN"
    assert winning["inputStage"]["indexName"] == "mrn_1"
    assert plan["queryPlanner"]["namespace"] == f"{DB}.{coll.name}"
    assert plan["executionStats"]["nReturned"] == 1


def test_explain_shows_collscan_without_an_index(coll):
    coll.insert_many([{"_id": i, "x": i} for i in range(10)])
    plan = coll.database.command(
        "explain", {"find": coll.name, "filter": {"x": 3}}, verbosity="executionStats"
    )
    assert plan["queryPlanner"]["winningPlan"]["stage"] == "COLLSCAN"
    stats = plan["executionStats"]
    assert stats["nReturned"] == 1 and stats["totalDocsExamined"] == 10
    assert plan["command"]["find"] == coll.name


def test_explain_of_a_sorted_limited_find(coll):
    coll.insert_many([{"_id": i} for i in range(3)])
    plan = coll.find({}).sort("_id", -1).limit(2).explain()["queryPlanner"]["winningPlan"]
    assert plan["stage"] == "LIMIT" and plan["limitAmount"] == 2
    assert plan["inputStage"]["stage"] == "SORT"


def test_explain_of_an_update_does_not_write(coll):
    coll.insert_one({"_id": 1, "a": 1})
    plan = coll.database.command(
        "explain", {"update": coll.name, "updates": [{"q": {"_id": 1}, "u": {"$set": {"a": 2}}}]}
    )
    assert plan["queryPlanner"]["winningPlan"]["stage"] == "UPDATE"
    assert coll.find_one({"_id": 1}) == {"_id": 1, "a": 1}


def test_updates_move_index_entries_with_the_document(coll):
    coll.create_index("tags")
    coll.create_index("code", unique=True)
    coll.insert_many([{"_id": 1, "tags": ["a", "b"], "code": "x"}, {"_id": 2, "code": "y"}])
    coll.update_one({"_id": 1}, {"$set": {"tags": ["b", "c"], "code": "z"}})
    coll.find_one_and_update({"_id": 2}, {"$push": {"tags": "a"}})
    hinted = {"hint": "tags_1"}
    assert [d["_id"] for d in coll.find({"tags": "a"}, **hinted)] == [2]
    assert [d["_id"] for d in coll.find({"tags": "c"}, **hinted)] == [1]
    assert [d["_id"] for d in coll.find({"tags": "b"}, **hinted)] == [1]
    assert list(coll.find({"code": "x"}, hint="code_1")) == []
    # The old unique key is free again; the new one is taken.
    coll.insert_one({"_id": 3, "code": "x"})
    with pytest.raises(DuplicateKeyError) as info:
        coll.insert_one({"_id": 4, "code": "z"})
    assert info.value.details["keyValue"] == {"code": "z"}


def test_a_compound_index_serves_equality_then_sort(coll):
    coll.create_index([("patient", ASCENDING), ("when", DESCENDING)])
    coll.insert_many(
        [{"_id": i, "patient": f"P{i % 4}", "when": f"2021-03-{i:02d}"} for i in range(1, 30)]
    )
    query = coll.find({"patient": "P2"}).sort("when", DESCENDING).limit(3)
    assert [d["_id"] for d in query] == [26, 22, 18]
    assert [d["_id"] for d in coll.find({"patient": "P2"}).sort("when", ASCENDING).limit(2)] == [
        2,
        6,
    ]
    plan = coll.find({"patient": "P2"}).sort("when", DESCENDING).limit(3).explain()
    stages = str(plan["queryPlanner"]["winningPlan"])
    assert "IXSCAN" in stages and "'SORT'" not in stages
    # A sort the index cannot give still sorts in memory, with a SORT stage.
    plan = coll.find({"patient": "P2"}).sort("_id", DESCENDING).explain()
    assert "'SORT'" in str(plan["queryPlanner"]["winningPlan"])
    assert [d["_id"] for d in coll.find({"patient": "P2"}).sort("_id", DESCENDING).limit(2)] == [
        26,
        22,
    ]


def test_ttl_option_is_listed(coll):
    coll.create_index("at", expireAfterSeconds=3600)
    listed = {i["name"]: i for i in coll.list_indexes()}
    assert listed["at_1"]["expireAfterSeconds"] == 3600

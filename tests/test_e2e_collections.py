"""Collections and databases through pymongo: create, list, drop, rename, and the
statistics commands with MongoDB's field names."""

from __future__ import annotations

from typing import Any

import pytest
from pymongo import MongoClient
from pymongo.errors import CollectionInvalid, OperationFailure

DB = "e2e_collections"


@pytest.fixture
def db(admin: MongoClient[Any], request: pytest.FixtureRequest):
    name = f"{DB}_{request.node.name[5:25]}"
    admin.drop_database(name)
    return admin[name]


def test_create_and_list_collections(db):
    db.create_collection("patients")
    db["visits"].insert_one({"a": 1})
    assert sorted(db.list_collection_names()) == ["patients", "visits"]
    entry = next(c for c in db.list_collections() if c["name"] == "patients")
    assert entry["type"] == "collection"
    assert entry["info"]["readOnly"] is False
    assert entry["info"]["uuid"].subtype == 4
    assert entry["idIndex"] == {"v": 2, "key": {"_id": 1}, "name": "_id_"}
    assert [c["name"] for c in db.list_collections(filter={"name": "visits"})] == ["visits"]


def test_creating_an_existing_collection_is_namespace_exists(db):
    db.create_collection("c", capped=True, size=4096)
    with pytest.raises(CollectionInvalid):
        db.create_collection("c")
    with pytest.raises(OperationFailure) as info:
        db.command("create", "c")
    assert info.value.code == 48


def test_drop_collection_and_missing_collection(db):
    db["gone"].insert_one({})
    reply = db.command("drop", "gone")
    assert reply["ns"] == f"{db.name}.gone" and reply["nIndexesWas"] == 1
    assert "gone" not in db.list_collection_names()
    assert db.command("drop", "never_existed")["ok"] == 1.0


def test_rename_collection(db):
    db["old"].insert_many([{"_id": 1}, {"_id": 2}])
    db["old"].rename("new")
    assert db.list_collection_names() == ["new"]
    assert db["new"].count_documents({}) == 2
    db["other"].insert_one({})
    with pytest.raises(OperationFailure) as info:
        db["new"].rename("other")
    assert info.value.code == 48
    db["new"].rename("other", dropTarget=True)
    assert db["other"].count_documents({}) == 2
    with pytest.raises(OperationFailure) as info:
        db["missing"].rename("whatever")
    assert info.value.code == 26


def test_rename_must_run_on_admin(db):
    db["x"].insert_one({})
    with pytest.raises(OperationFailure) as info:
        db.command("renameCollection", f"{db.name}.x", to=f"{db.name}.y")
    assert info.value.code == 13


def test_list_databases_and_drop_database(db, admin):
    db["c"].insert_one({"a": 1})
    listing = admin.admin.command("listDatabases")
    entry = next(d for d in listing["databases"] if d["name"] == db.name)
    assert entry["empty"] is False and entry["sizeOnDisk"] > 0
    assert listing["totalSize"] >= entry["sizeOnDisk"]
    assert db.name in admin.list_database_names()
    only = admin.admin.command("listDatabases", nameOnly=True, filter={"name": db.name})
    assert only["databases"] == [{"name": db.name}]
    admin.drop_database(db.name)
    assert db.name not in admin.list_database_names()


def test_coll_stats_and_db_stats(db):
    db["s"].insert_many([{"_id": i, "pad": "x" * 100} for i in range(10)])
    db["s"].create_index("pad")
    stats = db.command("collStats", "s")
    assert stats["ns"] == f"{db.name}.s" and stats["count"] == 10
    assert stats["nindexes"] == 2 and set(stats["indexSizes"]) == {"_id_", "pad_1"}
    assert stats["size"] > 1000 and stats["avgObjSize"] == stats["size"] // 10
    dbstats = db.command("dbStats")
    assert dbstats["db"] == db.name and dbstats["collections"] == 1
    assert dbstats["objects"] == 10 and dbstats["indexes"] == 2
    missing = db.command("collStats", "nothing_here")
    assert missing["count"] == 0 and missing["nindexes"] == 0

"""Cursors as pymongo drives them: batches across getMore, killCursors, CursorNotFound,
and the asyncio client."""

from __future__ import annotations

import time
from typing import Any

import pytest
from bson import Int64
from pymongo import AsyncMongoClient, MongoClient
from pymongo.errors import OperationFailure

from harness import PhidbServer

DB = "e2e_cursors"


@pytest.fixture
def coll(admin: MongoClient[Any], request: pytest.FixtureRequest):
    collection = admin[DB][request.node.name]
    collection.drop()
    collection.insert_many([{"_id": i} for i in range(5)])
    return collection


def test_batch_size_two_over_five_documents_takes_three_batches(coll):
    db = coll.database
    first = db.command("find", coll.name, batchSize=2)
    cursor = first["cursor"]
    assert [d["_id"] for d in cursor["firstBatch"]] == [0, 1]
    assert cursor["ns"] == f"{DB}.{coll.name}"
    assert isinstance(cursor["id"], Int64) and cursor["id"] != 0
    second = db.command("getMore", cursor["id"], collection=coll.name, batchSize=2)["cursor"]
    assert [d["_id"] for d in second["nextBatch"]] == [2, 3]
    assert second["id"] == cursor["id"]
    third = db.command("getMore", cursor["id"], collection=coll.name, batchSize=2)["cursor"]
    assert [d["_id"] for d in third["nextBatch"]] == [4]
    assert third["id"] == 0


def test_pymongo_cursor_with_batch_size_reads_everything(coll):
    assert [d["_id"] for d in coll.find().batch_size(2)] == [0, 1, 2, 3, 4]


def test_killed_cursor_is_not_found_afterwards(coll):
    db = coll.database
    cursor_id = db.command("find", coll.name, batchSize=1)["cursor"]["id"]
    reply = db.command("killCursors", coll.name, cursors=[cursor_id, Int64(12345)])
    assert reply["cursorsKilled"] == [cursor_id]
    assert reply["cursorsNotFound"] == [Int64(12345)]
    assert reply["cursorsAlive"] == [] and reply["cursorsUnknown"] == []
    with pytest.raises(OperationFailure) as info:
        db.command("getMore", cursor_id, collection=coll.name)
    assert info.value.code == 43


def test_limit_caps_the_total_across_batches(coll):
    assert [d["_id"] for d in coll.find().batch_size(2).limit(3)] == [0, 1, 2]


def test_negative_limit_is_a_single_batch(coll):
    # pymongo sends limit(-2) as limit: 2 with singleBatch: true.
    assert [d["_id"] for d in coll.find().limit(-2)] == [0, 1]
    with pytest.raises(OperationFailure) as info:
        coll.database.command("find", coll.name, limit=-2)
    assert info.value.code == 51024


def test_single_batch_closes_the_cursor(coll):
    cursor = coll.database.command("find", coll.name, batchSize=2, singleBatch=True)["cursor"]
    assert len(cursor["firstBatch"]) == 2
    assert cursor["id"] == 0


def test_get_more_on_another_namespace_is_refused(coll):
    db = coll.database
    cursor_id = db.command("find", coll.name, batchSize=1)["cursor"]["id"]
    with pytest.raises(OperationFailure) as info:
        db.command("getMore", cursor_id, collection="elsewhere")
    assert info.value.code == 13


def test_get_more_id_must_be_a_long(coll):
    with pytest.raises(OperationFailure) as info:
        coll.database.command("getMore", 5, collection=coll.name)
    assert info.value.code == 14


async def test_async_client_inserts_and_iterates_batches(server: PhidbServer):
    client: AsyncMongoClient[Any] = AsyncMongoClient(
        server.uri(server.admin_user, server.admin_password),
        serverSelectionTimeoutMS=5000,
        **server.tls_options(),
    )
    try:
        coll = client[DB]["async_batches"]
        await coll.drop()
        await coll.insert_many([{"_id": i, "v": i * i} for i in range(7)])
        docs = [d async for d in coll.find({"v": {"$gte": 4}}).sort("_id", -1).batch_size(2)]
        assert [d["_id"] for d in docs] == [6, 5, 4, 3, 2]
        assert await coll.count_documents({}) == 7
        updated = await coll.update_many({"v": {"$lt": 5}}, {"$inc": {"v": 100}})
        assert (updated.matched_count, updated.modified_count) == (3, 3)
        assert await coll.find_one({"_id": 2}) == {"_id": 2, "v": 104}
    finally:
        await client.close()


def test_batch_size_zero_returns_an_empty_first_batch_and_an_open_cursor(coll):
    reply = coll.database.command("find", coll.name, batchSize=0)
    assert reply["cursor"]["firstBatch"] == []
    assert reply["cursor"]["id"] != 0
    more = coll.database.command("getMore", reply["cursor"]["id"], collection=coll.name)
    assert len(more["cursor"]["nextBatch"]) == 5
    assert more["cursor"]["id"] == 0


def test_dropping_a_collection_closes_its_cursors(admin):
    coll = admin.cursors_drop.c
    coll.insert_many([{"i": i} for i in range(10)])
    reply = coll.database.command("find", "c", batchSize=2)
    coll.drop()
    with pytest.raises(OperationFailure) as info:
        coll.database.command("getMore", reply["cursor"]["id"], collection="c")
    assert info.value.code == 43


def test_max_time_ms_is_a_budget_for_the_whole_cursor(admin):
    coll = admin.cursors_budget.c
    coll.insert_many([{"_id": i, "k": "cheap"} for i in range(3)])
    coll.insert_one({"_id": 3, "k": "slow", "s": "a" * 5000 + "!"})
    query = {"$or": [{"k": "cheap"}, {"s": {"$regex": "(a+)+$"}}]}
    reply = coll.database.command("find", "c", filter=query, batchSize=1, maxTimeMS=800)
    cursor_id = reply["cursor"]["id"]
    assert [d["_id"] for d in reply["cursor"]["firstBatch"]] == [0]
    time.sleep(1.0)  # time between batches does not count against the budget
    more = coll.database.command("getMore", cursor_id, collection="c", batchSize=1)
    assert [d["_id"] for d in more["cursor"]["nextBatch"]] == [1]
    # Reaching the slow document exhausts the budget: MaxTimeMSExpired, and the
    # cursor is gone afterwards.
    with pytest.raises(OperationFailure) as info:
        coll.database.command("getMore", cursor_id, collection="c", batchSize=5)
    assert info.value.code == 50
    with pytest.raises(OperationFailure) as info:
        coll.database.command("getMore", cursor_id, collection="c")
    assert info.value.code == 43

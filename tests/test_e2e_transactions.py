"""A standalone phidb has no transactions: a write inside one is refused, as MongoDB
refuses it, so an application never believes an aborted transaction rolled back."""

from __future__ import annotations

import pytest
from bson.int64 import Int64
from pymongo import MongoClient
from pymongo.errors import OperationFailure


def test_write_in_a_transaction_is_refused_and_nothing_is_written(admin: MongoClient):
    coll = admin.txn.c
    with admin.start_session() as session:
        session.start_transaction()
        with pytest.raises(OperationFailure) as info:
            coll.insert_one({"_id": 1}, session=session)
        assert info.value.code == 20
        assert "replica set member or mongos" in info.value.details["errmsg"]
        session.abort_transaction()
    assert coll.count_documents({}) == 0


def test_txn_number_is_refused(admin: MongoClient):
    with pytest.raises(OperationFailure) as info:
        admin.txn.command(
            {"insert": "c", "documents": [{"_id": 2}], "txnNumber": Int64(1), "lsid": {"id": 1}}
        )
    assert info.value.code == 20
    assert info.value.details["codeName"] == "IllegalOperation"
    assert admin.txn.c.count_documents({}) == 0


def test_sessions_without_transactions_work(admin: MongoClient):
    with admin.start_session() as session:
        admin.txn.plain.insert_one({"_id": 1}, session=session)
        assert admin.txn.plain.find_one({"_id": 1}, session=session) == {"_id": 1}

"""Acknowledged writes survive kill -9: a client writes while the server is killed, and
after a restart on the same dbpath every acknowledged insert, update and delete is
there, and the unique index still refuses duplicates."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

import pytest
from pymongo import MongoClient
from pymongo.errors import DuplicateKeyError, PyMongoError

from harness import PhidbServer


@dataclass
class Acknowledged:
    """What the server acknowledged, and the one write in flight when it died."""

    inserted: set[int] = field(default_factory=set)
    updated: set[int] = field(default_factory=set)
    deleted: set[int] = field(default_factory=set)
    in_flight: set[int] = field(default_factory=set)
    error: BaseException | None = None


def doc(i: int) -> dict[str, Any]:
    return {"_id": i, "mrn": f"MRN-{i:06d}", "ssn": f"999-{i % 100:02d}-{i:04d}", "v": 0}


def write_until_refused(client: MongoClient[Any], acked: Acknowledged) -> None:
    coll = client["clinic"]["patients"]
    i = 0
    try:
        while True:
            if i % 10 == 9:
                batch = [i, i + 1, i + 2]
                acked.in_flight = set(batch)
                coll.insert_many([doc(n) for n in batch])
                acked.inserted.update(batch)
                i += 3
            else:
                acked.in_flight = {i}
                coll.insert_one(doc(i))
                acked.inserted.add(i)
                i += 1
            if i % 4 == 0:
                target = i - 2
                acked.in_flight = {target}
                if coll.update_one({"_id": target}, {"$set": {"v": 1}}).modified_count == 1:
                    acked.updated.add(target)
            if i % 7 == 0:
                target = i - 5
                acked.in_flight = {target}
                if coll.delete_one({"_id": target}).deleted_count == 1:
                    acked.deleted.add(target)
            acked.in_flight = set()
    except PyMongoError as exc:
        acked.error = exc


def test_every_acknowledged_write_survives_kill_9(make_phidb: Any) -> None:
    srv: PhidbServer = make_phidb()
    srv.create_admin()
    admin = srv.admin_client()
    admin["clinic"]["patients"].create_index("mrn", unique=True, name="mrn_unique")
    writer = srv.admin_client(retryWrites=False, serverSelectionTimeoutMS=500)
    writer.admin.command("ping")
    acked = Acknowledged()

    thread = threading.Thread(target=write_until_refused, args=(writer, acked))
    thread.start()
    time.sleep(1.0)
    srv.kill()
    thread.join(30)
    assert not thread.is_alive()
    assert acked.error is not None, "the writer should have seen the server die"
    assert len(acked.inserted) > 20, "too few writes to prove anything"
    assert acked.updated and acked.deleted

    print(
        f"acknowledged before kill -9: {len(acked.inserted)} inserts, "
        f"{len(acked.updated)} updates, {len(acked.deleted)} deletes"
    )
    srv.start()
    coll = srv.admin_client()["clinic"]["patients"]
    stored = {d["_id"]: d for d in coll.find()}

    uncertain = acked.in_flight
    must_exist = acked.inserted - acked.deleted - uncertain
    assert must_exist <= set(stored), f"lost acknowledged inserts: {must_exist - set(stored)}"
    assert not (acked.deleted & set(stored)), "an acknowledged delete came back"
    assert set(stored) <= acked.inserted | uncertain
    for i in must_exist:
        expected = {**doc(i), "v": 1 if i in acked.updated else 0}
        assert stored[i] == expected

    indexes = {ix["name"]: ix for ix in coll.list_indexes()}
    assert indexes["mrn_unique"]["unique"] is True
    survivor = min(must_exist)
    with pytest.raises(DuplicateKeyError) as duplicate:
        coll.insert_one({"_id": -1, "mrn": f"MRN-{survivor:06d}"})
    assert duplicate.value.code == 11000
    assert coll.count_documents({"_id": -1}) == 0

"""The SQLite engine's documents, collections and namespaces, used directly (no server)."""

from __future__ import annotations

import datetime
import os
import threading

import bson
import pytest
from bson import Binary, Code, Decimal128, Int64, MaxKey, MinKey, ObjectId, Regex, Timestamp

from phidb.errors import MongoError
from phidb.storage.sqlite import SQLiteEngine


@pytest.fixture
def engine(tmp_path):
    eng = SQLiteEngine(str(tmp_path / "db"), os.urandom(32))
    yield eng
    eng.close()


def _all(engine, db="test", coll="c", filter=None):
    return [doc for _, doc in engine.find(db, coll, filter or {})]


def test_every_bson_type_round_trips_exactly(engine):
    doc = {
        "_id": ObjectId(),
        "double": 1.5,
        "string": "héllo\x00world",
        "doc": {"nested": {"deeper": [1, {"x": None}]}},
        "array": [1, [2, [3, []]], {"a": "b"}],
        "binary": Binary(b"\x00\x01\xff", 0),
        "uuid": Binary(os.urandom(16), 4),
        "bool": True,
        "date": datetime.datetime(2024, 2, 29, 12, 30, 15, 123000),
        "null": None,
        "regex": Regex("^a.*b$", "im"),
        "code": Code("function () { return 1; }"),
        "code_scope": Code("x", {"y": 1}),
        "int32": 42,
        "timestamp": Timestamp(1700000000, 7),
        "int64": Int64(1 << 40),
        "decimal": Decimal128("1234.5678900"),
        "minkey": MinKey(),
        "maxkey": MaxKey(),
    }
    engine.insert("test", "c", [doc], ordered=True)
    [(_, back)] = list(engine.find("test", "c", {}))
    # Byte-identical BSON: every type, value and field order survived.
    assert bson.encode(back) == bson.encode(doc)
    assert back["binary"] == b"\x00\x01\xff"  # pymongo decodes subtype 0 as bytes
    assert type(back["int64"]) is Int64
    assert type(back["int32"]) is int
    assert type(back["decimal"]) is Decimal128 and str(back["decimal"]) == "1234.5678900"
    assert back["uuid"].subtype == 4


def test_insert_creates_collection_and_database(engine):
    assert engine.list_databases() == []
    result = engine.insert("clinic", "patients", [{"_id": 1}, {"_id": 2}], ordered=True)
    assert (result.inserted, result.errors) == (2, [])
    assert engine.list_databases() == ["clinic"]
    assert [c.name for c in engine.list_collections("clinic")] == ["patients"]
    assert engine.count("clinic", "patients") == 2


def test_duplicate_id_ordered_stops_unordered_continues(engine):
    docs = [{"_id": 1}, {"_id": 1}, {"_id": 2}]
    ordered = engine.insert("test", "o", docs, ordered=True)
    assert ordered.inserted == 1
    assert [(i, e.code) for i, e in ordered.errors] == [(1, 11000)]
    assert engine.count("test", "o") == 1
    unordered = engine.insert("test", "u", docs, ordered=False)
    assert unordered.inserted == 2
    assert [(i, e.code) for i, e in unordered.errors] == [(1, 11000)]
    err = unordered.errors[0][1]
    assert err.message == (
        "E11000 duplicate key error collection: test.u index: _id_ dup key: { _id: 1 }"
    )
    assert err.extra == {"keyPattern": {"_id": 1}, "keyValue": {"_id": 1}}


def test_numerically_equal_ids_collide_across_types(engine):
    engine.insert("test", "c", [{"_id": 1}], ordered=True)
    for other in (1.0, Int64(1), Decimal128("1.00")):
        result = engine.insert("test", "c", [{"_id": other}], ordered=True)
        assert [e.code for _, e in result.errors] == [11000]


def test_array_id_is_refused(engine):
    result = engine.insert("test", "c", [{"_id": [1, 2]}], ordered=True)
    assert [e.code for _, e in result.errors] == [53]


def test_replace_and_delete_by_record_id(engine):
    engine.insert("test", "c", [{"_id": 1, "v": 1}, {"_id": 2, "v": 2}], ordered=True)
    rids = {doc["_id"]: rid for rid, doc in engine.find("test", "c", {})}
    engine.replace("test", "c", rids[1], {"_id": 1, "v": 10})
    engine.delete("test", "c", rids[2])
    assert _all(engine) == [{"_id": 1, "v": 10}]


def test_replace_to_existing_id_is_duplicate_key_and_keeps_old(engine):
    engine.insert("test", "c", [{"_id": 1}, {"_id": 2}], ordered=True)
    rid = next(rid for rid, doc in engine.find("test", "c", {"_id": 2}))
    with pytest.raises(MongoError) as info:
        engine.replace("test", "c", rid, {"_id": 1, "x": 1})
    assert info.value.code == 11000
    assert _all(engine) == [{"_id": 1}, {"_id": 2}]


def test_batch_groups_writes_and_reads_see_them(engine):
    engine.insert("test", "c", [{"_id": i, "n": i} for i in range(5)], ordered=True)
    rows = list(engine.find("test", "c", {}))
    seen_inside = []
    other_thread_saw = []
    with engine.batch("test"):
        for rid, doc in rows:
            engine.replace("test", "c", rid, {**doc, "n": doc["n"] + 100})
        seen_inside.extend(d["n"] for d in _all(engine))
        t = threading.Thread(target=lambda: other_thread_saw.extend(d["n"] for d in _all(engine)))
        t.start()
        t.join()
    assert seen_inside == [100, 101, 102, 103, 104]
    assert other_thread_saw == [0, 1, 2, 3, 4]  # uncommitted writes are not visible
    assert [d["n"] for d in _all(engine)] == [100, 101, 102, 103, 104]


def test_batch_keeps_successful_writes_when_a_mongo_error_escapes(engine):
    engine.insert("test", "c", [{"_id": 1}, {"_id": 2}], ordered=True)
    with pytest.raises(MongoError), engine.batch("test"):
        engine.insert("test", "c", [{"_id": 3}], ordered=True)
        rid = next(r for r, d in engine.find("test", "c", {"_id": 2}))
        engine.replace("test", "c", rid, {"_id": 1})  # duplicate key
    assert _all(engine) == [{"_id": 1}, {"_id": 2}, {"_id": 3}]


def test_batch_rolls_back_on_an_unexpected_exception(engine):
    engine.insert("test", "c", [{"_id": 1}], ordered=True)
    with pytest.raises(RuntimeError), engine.batch("test"):
        engine.insert("test", "c", [{"_id": 2}], ordered=True)
        raise RuntimeError("boom")
    assert _all(engine) == [{"_id": 1}]


def test_create_collection_twice_is_namespace_exists(engine):
    engine.create_collection("test", "c", {"capped": False})
    with pytest.raises(MongoError) as info:
        engine.create_collection("test", "c", {})
    assert info.value.code == 48
    [coll] = engine.list_collections("test")
    assert coll.options == {"capped": False}
    assert coll.uuid.subtype == 4


def test_drop_collection_and_database(engine):
    engine.insert("test", "a", [{"_id": 1}], ordered=True)
    engine.insert("test", "b", [{"_id": 1}], ordered=True)
    assert engine.drop_collection("test", "a") is True
    assert engine.drop_collection("test", "a") is False
    assert [c.name for c in engine.list_collections("test")] == ["b"]
    assert engine.drop_database("test") is True
    assert engine.drop_database("test") is False
    assert engine.list_databases() == []
    assert engine.count("test", "b") == 0


def test_dropped_database_file_and_key_are_removed_at_restart(tmp_path):
    path, key = str(tmp_path / "db"), os.urandom(32)
    eng = SQLiteEngine(path, key)
    eng.insert("gone", "c", [{"_id": 1}], ordered=True)
    eng.drop_database("gone")
    eng.close()
    SQLiteEngine(path, key).close()
    assert sorted(os.listdir(path)) == ["phidb.keystore"]


def test_rename_within_and_across_databases_keeps_indexes(engine):
    engine.insert("test", "a", [{"_id": 1, "x": 5}], ordered=True)
    engine.create_indexes("test", "a", [{"key": {"x": 1}, "name": "x_1"}])
    uuid_before = engine.list_collections("test")[0].uuid
    engine.rename_collection("test", "a", "test", "b", drop_target=False)
    assert [c.name for c in engine.list_collections("test")] == ["b"]
    assert engine.list_collections("test")[0].uuid == uuid_before
    assert engine.plan("test", "b", {"x": 5}).index_name == "x_1"
    engine.rename_collection("test", "b", "other", "c", drop_target=False)
    assert engine.list_collections("test") == []
    assert _all(engine, "other", "c", {"x": 5}) == [{"_id": 1, "x": 5}]
    assert [i["name"] for i in engine.list_indexes("other", "c")] == ["_id_", "x_1"]


def test_rename_errors(engine):
    engine.insert("test", "a", [{"_id": 1}], ordered=True)
    engine.insert("test", "b", [{"_id": 2}], ordered=True)
    with pytest.raises(MongoError) as info:
        engine.rename_collection("test", "missing", "test", "z", drop_target=False)
    assert info.value.code == 26
    with pytest.raises(MongoError) as info:
        engine.rename_collection("test", "a", "test", "b", drop_target=False)
    assert info.value.code == 48
    engine.rename_collection("test", "a", "test", "b", drop_target=True)
    assert _all(engine, "test", "b") == [{"_id": 1}]


@pytest.mark.parametrize(
    "db, coll",
    [
        ("", "c"),
        ("a.b", "c"),
        ("a b", "c"),
        ("a$b", "c"),
        ("a/b", "c"),
        ("a\\b", "c"),
        ("a*", "c"),
        ("a<", "c"),
        ("a>", "c"),
        ("a:", "c"),
        ("a|", "c"),
        ("a?", "c"),
        ('a"', "c"),
        ("a\x00", "c"),
        ("x" * 64, "c"),
        ("test", ""),
        ("test", "a$b"),
        ("test", "a\x00b"),
        ("test", "system.foo"),
    ],
)
def test_invalid_namespaces_are_refused(engine, db, coll):
    with pytest.raises(MongoError) as info:
        engine.insert(db, coll, [{"_id": 1}], ordered=True)
    assert info.value.code == 73


def test_system_users_is_allowed_for_the_user_store(engine):
    engine.insert("admin", "system.users", [{"_id": "admin.root"}], ordered=True)
    assert _all(engine, "admin", "system.users") == [{"_id": "admin.root"}]


def test_database_names_differing_in_case_get_distinct_files(engine):
    engine.insert("Clinic", "c", [{"_id": "upper"}], ordered=True)
    engine.insert("clinic", "c", [{"_id": "lower"}], ordered=True)
    assert engine.list_databases() == ["Clinic", "clinic"]
    assert _all(engine, "Clinic") == [{"_id": "upper"}]
    files = sorted(os.listdir(engine.dbpath))
    assert len({f.lower() for f in files}) == len(files)


def test_stats_count_real_bytes(engine):
    docs = [{"_id": i, "pad": "x" * 100} for i in range(10)]
    engine.insert("test", "c", docs, ordered=True)
    stats = engine.collection_stats("test", "c")

    assert stats.count == 10
    assert stats.size == sum(len(bson.encode(d)) for d in docs)
    assert set(stats.index_sizes) == {"_id_"} and stats.index_sizes["_id_"] > 0
    db_stats = engine.database_stats("test")
    assert (db_stats.collections, db_stats.objects, db_stats.indexes) == (1, 10, 1)
    assert db_stats.data_size == stats.size
    assert db_stats.size_on_disk >= 4096
    assert engine.collection_stats("test", "missing") is None


def test_engine_reopens_with_same_data(tmp_path):
    path, key = str(tmp_path / "db"), os.urandom(32)
    eng = SQLiteEngine(path, key)
    eng.insert("test", "c", [{"_id": 1, "v": "x"}], ordered=True)
    eng.create_indexes("test", "c", [{"key": {"v": 1}, "name": "v_1", "unique": True}])
    eng.close()
    eng = SQLiteEngine(path, key)
    assert _all(eng, filter={"v": "x"}) == [{"_id": 1, "v": "x"}]
    assert eng.list_indexes("test", "c")[1] == {
        "v": 2,
        "key": {"v": 1},
        "name": "v_1",
        "unique": True,
    }
    assert [e.code for _, e in eng.insert("test", "c", [{"_id": 2, "v": "x"}], True).errors] == [
        11000
    ]
    eng.close()


def test_plain_mode_writes_plain_sqlite_and_refuses_encrypted_dbpath(tmp_path):
    plain = str(tmp_path / "plain")
    eng = SQLiteEngine(plain, None)
    eng.insert("test", "c", [{"_id": 1, "name": "visible"}], ordered=True)
    eng.close()
    assert open(os.path.join(plain, "test.phidb"), "rb").read(16) == b"SQLite format 3\x00"
    with pytest.raises(Exception, match="without encryption"):
        SQLiteEngine(plain, os.urandom(32))
    secret = str(tmp_path / "secret")
    SQLiteEngine(secret, os.urandom(32)).close()
    with pytest.raises(Exception, match="is encrypted"):
        SQLiteEngine(secret, None)

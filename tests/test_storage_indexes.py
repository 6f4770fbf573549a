"""Secondary indexes of the SQLite engine: unique, multikey, compound, descending, dotted,
sparse, and createIndexes/dropIndex semantics."""

from __future__ import annotations

import os

import pytest
from bson import Int64

from phidb.errors import MongoError
from phidb.storage.sqlite import SQLiteEngine


@pytest.fixture
def engine(tmp_path):
    eng = SQLiteEngine(str(tmp_path / "db"), os.urandom(32))
    yield eng
    eng.close()


def _ids(engine, filter, coll="c", hint=None):
    return sorted(doc["_id"] for _, doc in engine.find("test", coll, filter, hint=hint))


def _index_keys(engine, coll, name):
    """Rows of the index's table, to see exactly which entries a document made."""
    dbf = engine._files["test"]
    meta = dbf.catalog[coll]
    table = meta.index(name).table
    return dbf.conn().execute(f"SELECT key, rid FROM {table} ORDER BY key").fetchall()


def test_unique_violation_reports_key_pattern_and_value(engine):
    engine.create_indexes("test", "c", [{"key": {"name": 1}, "name": "name_1", "unique": True}])
    engine.insert("test", "c", [{"_id": 1, "name": "x"}], ordered=True)
    result = engine.insert("test", "c", [{"_id": 2, "name": "x"}], ordered=True)
    [(index, error)] = result.errors
    assert (index, error.code) == (0, 11000)
    assert error.message == (
        'E11000 duplicate key error collection: test.c index: name_1 dup key: { name: "x" }'
    )
    assert error.extra == {"keyPattern": {"name": 1}, "keyValue": {"name": "x"}}
    assert _ids(engine, {}) == [1]
    # The failed insert left no index entry behind.
    assert len(_index_keys(engine, "c", "name_1")) == 1


def test_unique_compound_violation_message(engine):
    engine.create_indexes(
        "test", "c", [{"key": {"a": 1, "b": -1}, "name": "a_1_b_-1", "unique": True}]
    )
    engine.insert("test", "c", [{"_id": 1, "a": 1, "b": "q"}], ordered=True)
    engine.insert("test", "c", [{"_id": 2, "a": 1, "b": "r"}], ordered=True)
    [(_, error)] = engine.insert("test", "c", [{"_id": 3, "a": 1, "b": "q"}], True).errors
    assert error.message.endswith('index: a_1_b_-1 dup key: { a: 1, b: "q" }')
    assert error.extra["keyValue"] == {"a": 1, "b": "q"}


def test_unique_index_treats_missing_fields_as_null(engine):
    engine.create_indexes("test", "c", [{"key": {"u": 1}, "unique": True}])
    engine.insert("test", "c", [{"_id": 1}], ordered=True)
    [(_, error)] = engine.insert("test", "c", [{"_id": 2}], ordered=True).errors
    assert error.extra["keyValue"] == {"u": None}
    assert error.message.endswith("dup key: { u: null }")


def test_unique_sparse_index_allows_many_missing(engine):
    engine.create_indexes("test", "c", [{"key": {"u": 1}, "unique": True, "sparse": True}])
    result = engine.insert("test", "c", [{"_id": 1}, {"_id": 2}, {"_id": 3, "u": 1}], True)
    assert result.errors == []
    assert [e.code for _, e in engine.insert("test", "c", [{"_id": 4, "u": 1}], True).errors] == [
        11000
    ]


def test_unique_index_on_one_documents_repeated_array_values(engine):
    engine.create_indexes("test", "c", [{"key": {"tags": 1}, "unique": True}])
    assert engine.insert("test", "c", [{"_id": 1, "tags": ["a", "a", "b"]}], True).errors == []
    [(_, error)] = engine.insert("test", "c", [{"_id": 2, "tags": ["c", "b"]}], True).errors
    assert error.extra["keyValue"] == {"tags": "b"}


def test_building_unique_index_over_duplicates_fails_and_leaves_no_index(engine):
    engine.insert("test", "c", [{"_id": 1, "v": 7}, {"_id": 2, "v": 7.0}], ordered=True)
    with pytest.raises(MongoError) as info:
        engine.create_indexes("test", "c", [{"key": {"v": 1}, "unique": True}])
    assert info.value.code == 11000
    assert info.value.extra["keyPattern"] == {"v": 1}
    assert [i["name"] for i in engine.list_indexes("test", "c")] == ["_id_"]


def test_multikey_index_has_one_entry_per_element_and_finds_each(engine):
    engine.create_indexes("test", "c", [{"key": {"tags": 1}, "name": "tags_1"}])
    engine.insert(
        "test",
        "c",
        [{"_id": 1, "tags": ["a", "b"]}, {"_id": 2, "tags": "b"}, {"_id": 3, "tags": []}],
        ordered=True,
    )
    assert len(_index_keys(engine, "c", "tags_1")) == 4  # a, b, b, undefined
    assert engine.plan("test", "c", {"tags": "b"}).index_name == "tags_1"
    assert _ids(engine, {"tags": "b"}) == [1, 2]
    assert _ids(engine, {"tags": {"$in": ["a", "zz"]}}) == [1]
    assert engine._files["test"].catalog["c"].index("tags_1").multikey is True


def test_multikey_range_is_not_intersected(engine):
    # [0, 10] matches {$gt: 1, $lt: 5} though no single element lies between 1 and 5.
    engine.create_indexes("test", "c", [{"key": {"a": 1}}])
    engine.insert("test", "c", [{"_id": 1, "a": [0, 10]}, {"_id": 2, "a": 3}], ordered=True)
    assert _ids(engine, {"a": {"$gt": 1, "$lt": 5}}) == [1, 2]
    assert _ids(engine, {"$and": [{"a": 0}, {"a": 10}]}) == [1]


def test_dotted_path_through_array_of_documents(engine):
    engine.create_indexes("test", "c", [{"key": {"identifier.value": 1}}])
    engine.insert(
        "test",
        "c",
        [
            {
                "_id": 1,
                "identifier": [
                    {"system": "ssn", "value": "123-45-6789"},
                    {"system": "mrn", "value": "M1"},
                ],
            },
            {"_id": 2, "identifier": {"value": "M1"}},
            {"_id": 3, "identifier": [{"system": "x"}]},
            {"_id": 4},
        ],
        ordered=True,
    )
    plan = engine.plan("test", "c", {"identifier.value": "M1"})
    assert (plan.stage, plan.index_name) == ("IXSCAN", "identifier.value_1")
    assert _ids(engine, {"identifier.value": "M1"}) == [1, 2]
    assert _ids(engine, {"identifier.value": "123-45-6789"}) == [1]
    assert _ids(engine, {"identifier.value": None}) == [3, 4]


def test_compound_index_with_parallel_arrays_is_refused(engine):
    engine.create_indexes("test", "c", [{"key": {"a": 1, "b": 1}}])
    engine.insert("test", "c", [{"_id": 1, "a": [1, 2], "b": 1}], ordered=True)
    [(_, error)] = engine.insert("test", "c", [{"_id": 2, "a": [1], "b": [2]}], True).errors
    assert (error.code, error.message) == (171, "cannot index parallel arrays [a] [b]")
    assert _ids(engine, {}) == [1]


def test_building_compound_index_over_parallel_arrays_fails(engine):
    engine.insert("test", "c", [{"_id": 1, "a": [1], "b": [2]}], ordered=True)
    with pytest.raises(MongoError) as info:
        engine.create_indexes("test", "c", [{"key": {"a": 1, "b": 1}}])
    assert info.value.code == 171


def test_descending_index_ranges(engine):
    engine.create_indexes("test", "c", [{"key": {"n": -1}, "name": "n_-1"}])
    docs = [{"_id": i, "n": v} for i, v in enumerate([-5, -1.5, 0, 1, Int64(2), 3.5, 10, "s"])]
    engine.insert("test", "c", docs, ordered=True)
    assert engine.plan("test", "c", {"n": {"$gte": 1}}).index_name == "n_-1"
    assert _ids(engine, {"n": {"$gte": 1}}) == [3, 4, 5, 6]
    assert _ids(engine, {"n": {"$gt": 1, "$lte": 3.5}}) == [4, 5]
    assert _ids(engine, {"n": {"$lt": 0}}) == [0, 1]
    assert _ids(engine, {"n": -1.5}) == [1]
    assert _ids(engine, {"n": {"$in": [2, "s", 99]}}) == [4, 7]


def test_compound_index_leading_field_equality(engine):
    engine.create_indexes("test", "c", [{"key": {"family": 1, "given": -1}}])
    engine.insert(
        "test",
        "c",
        [
            {"_id": 1, "family": "Smith", "given": "Ann"},
            {"_id": 2, "family": "Smith"},
            {"_id": 3, "family": "Smithson", "given": "Bo"},
        ],
        ordered=True,
    )
    plan = engine.plan("test", "c", {"family": "Smith"})
    assert (plan.index_name, plan.key_pattern) == ("family_1_given_-1", {"family": 1, "given": -1})
    assert plan.index_bounds == {"family": ['["Smith", "Smith"]'], "given": ["[MaxKey, MinKey]"]}
    assert _ids(engine, {"family": "Smith"}) == [1, 2]


def test_index_is_maintained_on_replace_and_delete(engine):
    engine.create_indexes("test", "c", [{"key": {"v": 1}, "name": "v_1"}])
    engine.insert("test", "c", [{"_id": 1, "v": [1, 2]}, {"_id": 2, "v": 3}], ordered=True)
    rid = next(r for r, d in engine.find("test", "c", {"_id": 1}))
    engine.replace("test", "c", rid, {"_id": 1, "v": [2, 4]})
    assert _ids(engine, {"v": 1}) == []
    assert _ids(engine, {"v": 4}) == [1]
    engine.delete("test", "c", rid)
    assert _ids(engine, {"v": 2}) == []
    assert len(_index_keys(engine, "c", "v_1")) == 1


def test_create_indexes_semantics(engine):
    assert engine.create_indexes("test", "c", [{"key": {"a": 1}, "name": "a_1"}]) == (1, 2)
    assert engine.create_indexes("test", "c", [{"key": {"a": 1}, "name": "a_1"}]) == (2, 2)
    assert engine.create_indexes("test", "c", [{"key": {"a": 1}}]) == (2, 2)
    with pytest.raises(MongoError) as info:
        engine.create_indexes("test", "c", [{"key": {"a": 1}, "name": "other"}])
    assert info.value.code == 85
    assert info.value.message == "Index already exists with a different name: a_1"
    with pytest.raises(MongoError) as info:
        engine.create_indexes("test", "c", [{"key": {"b": 1}, "name": "a_1"}])
    assert info.value.code == 86
    assert engine.create_indexes("test", "c", [{"key": {"b": -1, "c.d": 1}}]) == (2, 3)
    assert [i["name"] for i in engine.list_indexes("test", "c")] == ["_id_", "a_1", "b_-1_c.d_1"]


def test_drop_index(engine):
    engine.create_indexes("test", "c", [{"key": {"a": 1}}])
    with pytest.raises(MongoError) as info:
        engine.drop_index("test", "c", "_id_")
    assert info.value.code == 72
    with pytest.raises(MongoError) as info:
        engine.drop_index("test", "c", "nope")
    assert info.value.code == 27
    engine.drop_index("test", "c", "a_1")
    assert [i["name"] for i in engine.list_indexes("test", "c")] == ["_id_"]
    assert engine.plan("test", "c", {"a": 1}).stage == "COLLSCAN"
    assert engine.list_indexes("test", "missing") is None

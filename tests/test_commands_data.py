"""The data commands in process (real dispatcher, encrypted SQLite engine and audit log
file, no network): the privileges each declares, the audit events they record, and
replies' exact shapes."""

from __future__ import annotations

from pathlib import Path

import pytest
from bson import Int64
from cmdkit import Node

from phidb.commands.context import Context
from phidb.commands.registry import lookup
from phidb.security.authz.privileges import on_cluster, on_database, on_namespace


@pytest.fixture
def node(tmp_path: Path):
    n = Node(tmp_path)
    yield n
    n.close()


def privileges(node: Node, cmd: dict, db: str = "test") -> list:
    spec = lookup(next(iter(cmd)))
    assert spec is not None
    return spec.privileges(Context(node.server, node.conn, db), cmd)


def test_write_commands_declare_mongodb_actions(node):
    assert privileges(node, {"insert": "c"}) == [on_namespace("test", "c", "insert")]
    assert privileges(node, {"update": "c", "updates": [{"q": {}, "u": {}}]}) == [
        on_namespace("test", "c", "update")
    ]
    upsert = {"update": "c", "updates": [{"q": {}, "u": {}, "upsert": True}]}
    assert privileges(node, upsert) == [on_namespace("test", "c", "update", "insert")]
    assert privileges(node, {"delete": "c"}) == [on_namespace("test", "c", "remove")]
    fam = {"findAndModify": "c", "remove": True}
    assert privileges(node, fam) == [on_namespace("test", "c", "find", "remove")]


def test_read_and_admin_commands_declare_mongodb_actions(node):
    assert privileges(node, {"find": "c"}) == [on_namespace("test", "c", "find")]
    assert privileges(node, {"getMore": Int64(1), "collection": "c"}) == [
        on_namespace("test", "c", "find")
    ]
    assert privileges(node, {"getMore": Int64(1), "collection": "$cmd.listIndexes.c"}) == [
        on_namespace("test", "c", "listIndexes")
    ]
    assert privileges(node, {"listCollections": 1}) == [on_database("test", "listCollections")]
    assert privileges(node, {"listDatabases": 1}, "admin") == [on_cluster("listDatabases")]
    assert privileges(node, {"dropDatabase": 1}) == [on_database("test", "dropDatabase")]
    assert privileges(node, {"createIndexes": "c"}) == [on_namespace("test", "c", "createIndex")]
    same_db = {"renameCollection": "test.a", "to": "test.b"}
    assert privileges(node, same_db, "admin") == [on_database("test", "renameCollectionSameDB")]
    other_db = {"renameCollection": "test.a", "to": "other.b"}
    assert privileges(node, other_db, "admin") == [
        on_namespace("test", "a", "find", "dropCollection"),
        on_namespace("other", "b", "insert", "createIndex"),
    ]


def test_aggregate_needs_find_on_every_collection_it_reads(node):
    cmd = {
        "aggregate": "orders",
        "pipeline": [
            {"$lookup": {"from": "customers", "as": "c", "pipeline": [
                {"$unionWith": "archive"}]}},
            {"$facet": {"x": [{"$lookup": {"from": "items", "as": "i"}}]}},
        ],
    }  # fmt: skip
    assert privileges(node, cmd) == [
        on_namespace("test", "orders", "find"),
        on_namespace("test", "customers", "find"),
        on_namespace("test", "archive", "find"),
        on_namespace("test", "items", "find"),
    ]


def test_explain_needs_the_explained_commands_privileges(node):
    cmd = {"explain": {"delete": "c", "deletes": [{"q": {}, "limit": 0}]}}
    assert privileges(node, cmd) == [on_namespace("test", "c", "remove")]


def test_implicit_creation_audits_database_then_collection_once(node):
    node.ok({"insert": "c", "documents": [{"a": 1}]})
    node.ok({"insert": "c", "documents": [{"a": 2}]})
    node.ok({"update": "d", "updates": [{"q": {"k": 1}, "u": {"$set": {"v": 1}}, "upsert": True}]})
    assert node.audit_events() == [
        ("createDatabase", {"ns": "test"}, 0),
        ("createCollection", {"ns": "test.c"}, 0),
        ("createCollection", {"ns": "test.d"}, 0),
    ]


def test_index_and_drop_audit_events(node):
    node.ok({"createIndexes": "c", "indexes": [{"key": {"mrn": 1}, "name": "mrn_1"}]})
    node.ok({"dropIndexes": "c", "index": "mrn_1"})
    node.ok({"renameCollection": "test.c", "to": "test.e"}, "admin")
    node.ok({"drop": "e"})
    spec = {"v": 2, "key": {"mrn": 1}, "name": "mrn_1"}
    assert node.audit_events()[2:] == [
        ("createIndex", {"ns": "test.c", "indexName": "mrn_1", "indexSpec": spec}, 0),
        ("dropIndex", {"ns": "test.c", "indexName": "mrn_1", "indexSpec": spec}, 0),
        ("renameCollection", {"old": "test.c", "new": "test.e"}, 0),
        ("dropCollection", {"ns": "test.e"}, 0),
    ]


def test_oversized_document_is_bson_object_too_large(node):
    reply = node.ok({"insert": "c", "documents": [{"_id": 1, "x": "a" * (16 * 1024 * 1024)}]})
    assert reply["n"] == 0
    assert reply["writeErrors"][0]["code"] == 10334


def test_ordered_insert_reports_only_the_first_failure(node):
    reply = node.ok({"insert": "c", "documents": [{"_id": 1}, {"_id": [2]}, {"_id": 1}]})
    assert reply["n"] == 1
    assert [(e["index"], e["code"]) for e in reply["writeErrors"]] == [(1, 53)]


def test_empty_insert_batch_is_invalid_length(node):
    assert node.fails({"insert": "c", "documents": []})["code"] == 16


def test_find_and_modify_argument_combinations(node):
    for cmd in (
        {"findAndModify": "c"},
        {"findAndModify": "c", "remove": True, "upsert": True},
        {"findAndModify": "c", "remove": True, "new": True},
    ):
        assert node.fails(cmd)["code"] == 9


def test_find_and_modify_on_nothing(node):
    reply = node.ok({"findAndModify": "c", "query": {"a": 1}, "update": {"$set": {"b": 1}}})
    assert reply["lastErrorObject"] == {"n": 0, "updatedExisting": False}
    assert reply["value"] is None


def test_create_index_refuses_unsupported_kinds(node):
    for index in (
        {"key": {"t": "text"}, "name": "t"},
        {"key": {"a": 1}, "name": "p", "partialFilterExpression": {"a": 1}},
    ):
        assert node.fails({"createIndexes": "c", "indexes": [index]})["code"] == 67
    unknown = node.fails({"createIndexes": "c", "indexes": [{"key": {"a": 1}, "foo": 1}]})
    assert unknown["code"] == 197


def test_create_with_the_same_options_twice_succeeds(node):
    node.ok({"create": "c", "capped": True, "size": 1024})
    node.ok({"create": "c", "capped": True, "size": 1024})
    assert node.fails({"create": "c"})["code"] == 48
    listed = node.ok({"listCollections": 1})["cursor"]["firstBatch"]
    assert listed[0]["options"] == {"capped": True, "size": 1024}


def test_view_creation_is_refused(node):
    assert node.fails({"create": "v", "viewOn": "c", "pipeline": []})["code"] == 2


def test_admin_database_cannot_be_dropped(node):
    assert node.fails({"dropDatabase": 1}, "admin")["code"] == 20

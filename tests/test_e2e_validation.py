"""Malformed requests get MongoDB's own validation errors, never InternalError and,
for a user allowed to run the command, never Unauthorized."""

from __future__ import annotations

import subprocess
from typing import Any

import pytest
from bson.binary import Binary
from pymongo import MongoClient
from pymongo.errors import OperationFailure

from harness import PhidbServer, env_mongosh

PASSWORD = "e2e-validation-password-0123"


def _error(call: Any) -> OperationFailure:
    with pytest.raises(OperationFailure) as err:
        call()
    return err.value


def _assert_error(err: OperationFailure, code: int, code_name: str, message: str) -> None:
    assert (err.code, err.details["codeName"]) == (code, code_name)
    assert err.details["errmsg"] == message


# -- users and login ------------------------------------------------------------------


def test_password_sasprep_refuses_is_bad_value_for_create_and_update(
    admin: MongoClient[Any],
) -> None:
    db = admin["val_users"]
    message = (
        "Error preparing SCRAM-SHA-256 password: it contains characters that SASLprep"
        " (RFC 4013) prohibits"
    )
    err = _error(lambda: db.command("createUser", "u8", pwd="a\u0007b", roles=[]))
    _assert_error(err, 2, "BadValue", message)
    db.command("createUser", "u9", pwd=PASSWORD, roles=[])
    err = _error(lambda: db.command("updateUser", "u9", pwd="a\u0007b"))
    _assert_error(err, 2, "BadValue", message)
    assert db.command("usersInfo", "u8")["users"] == []


def test_sha1_only_user_keeps_a_password_sasprep_would_refuse(
    server: PhidbServer, admin: MongoClient[Any]
) -> None:
    # SCRAM-SHA-1 hashes MongoDB's hex digest of the password, never the password.
    admin["val_users"].command(
        "createUser", "sha1only", pwd="a\u0007b", roles=["read"], mechanisms=["SCRAM-SHA-1"]
    )
    client: MongoClient[Any] = MongoClient(
        host="127.0.0.1",
        port=server.port,
        username="sha1only",
        password="a\u0007b",
        authSource="val_users",
        authMechanism="SCRAM-SHA-1",
        tls=True,
        tlsCAFile=str(server.certs.ca),
        serverSelectionTimeoutMS=5000,
    )
    try:
        status = client["val_users"].command("connectionStatus")
        assert status["authInfo"]["authenticatedUsers"] == [{"user": "sha1only", "db": "val_users"}]
    finally:
        client.close()


def test_password_of_the_wrong_type_is_type_mismatch(admin: MongoClient[Any]) -> None:
    db = admin["val_users"]
    err = _error(lambda: db.command("createUser", "u10", pwd=5, roles=[]))
    _assert_error(
        err,
        14,
        "TypeMismatch",
        "BSON field 'createUser.pwd' is the wrong type 'int', expected type 'string'",
    )
    db.command("createUser", "u11", pwd=PASSWORD, roles=[])
    err = _error(lambda: db.command("updateUser", "u11", pwd=True))
    _assert_error(
        err,
        14,
        "TypeMismatch",
        "BSON field 'updateUser.pwd' is the wrong type 'bool', expected type 'string'",
    )


def test_user_name_with_nul_is_bad_value(admin: MongoClient[Any]) -> None:
    err = _error(
        lambda: admin["val_users"].command("createUser", "a\u0000b", pwd=PASSWORD, roles=[])
    )
    _assert_error(err, 2, "BadValue", "Username cannot contain NULL characters")


def test_sasl_start_without_payload_is_a_parse_error(admin: MongoClient[Any]) -> None:
    db = admin["admin"]
    err = _error(lambda: db.command("saslStart", 1, mechanism="SCRAM-SHA-256"))
    _assert_error(
        err,
        40414,
        "Location40414",
        "BSON field 'saslStart.payload' is missing but a required field",
    )
    err = _error(lambda: db.command("saslStart", 1, payload=Binary(b"n,,n=x,r=abc")))
    _assert_error(
        err,
        40414,
        "Location40414",
        "BSON field 'saslStart.mechanism' is missing but a required field",
    )
    err = _error(lambda: db.command("saslStart", 1, mechanism="SCRAM-SHA-256", payload=7))
    assert err.code == 14


@pytest.mark.parametrize(
    "payload", [b"", b"garbage", b"n,,n=root,r=", b"y,,n=\x07,r=abc", b"\xff\xfe", b"p=x,,n=a,r=b"]
)
def test_malformed_sasl_payloads_fail_authentication(
    admin: MongoClient[Any], payload: bytes
) -> None:
    err = _error(
        lambda: admin["admin"].command(
            "saslStart", 1, mechanism="SCRAM-SHA-256", payload=Binary(payload)
        )
    )
    _assert_error(err, 18, "AuthenticationFailed", "Authentication failed.")


# -- write batches ----------------------------------------------------------------------


def test_write_batches_over_100000_statements_are_invalid_length(admin: MongoClient[Any]) -> None:
    db = admin["val_writes"]
    too_many = 100_001
    message = f"Write batch sizes must be between 1 and 100000. Got {too_many} operations."
    err = _error(lambda: db.command("insert", "c", documents=[{}] * too_many))
    _assert_error(err, 16, "InvalidLength", message)
    err = _error(
        lambda: db.command("update", "c", updates=[{"q": {}, "u": {"$set": {"a": 1}}}] * too_many)
    )
    _assert_error(err, 16, "InvalidLength", message)
    err = _error(lambda: db.command("delete", "c", deletes=[{"q": {}, "limit": 0}] * too_many))
    _assert_error(err, 16, "InvalidLength", message)
    err = _error(lambda: db.command("update", "c", updates=[]))
    _assert_error(
        err,
        16,
        "InvalidLength",
        "Write batch sizes must be between 1 and 100000. Got 0 operations.",
    )
    assert db["c"].count_documents({}) == 0


# -- indexes --------------------------------------------------------------------------


def test_sixty_fifth_index_is_refused(admin: MongoClient[Any]) -> None:
    db = admin["val_indexes"]
    specs = [{"key": {f"f{i}": 1}, "name": f"f{i}_1"} for i in range(63)]
    reply = db.command("createIndexes", "many", indexes=specs)
    assert reply["numIndexesAfter"] == 64
    err = _error(
        lambda: db.command("createIndexes", "many", indexes=[{"key": {"x": 1}, "name": "x_1"}])
    )
    _assert_error(
        err,
        67,
        "CannotCreateIndex",
        "add index fails, too many indexes for val_indexes.many key:{ x: 1 }",
    )
    # Repeating an existing index is still fine at the limit.
    db.command("createIndexes", "many", indexes=specs[:1])
    assert len(list(db["many"].list_indexes())) == 64


@pytest.mark.parametrize(
    ("ttl", "message"),
    [
        (
            "x",
            "TTL index 'expireAfterSeconds' option must be numeric, but received a type of"
            " 'string'",
        ),
        (
            True,
            "TTL index 'expireAfterSeconds' option must be numeric, but received a type of 'bool'",
        ),
        (-1, "TTL index 'expireAfterSeconds' option cannot be less than 0"),
        (
            2**31,
            "TTL index 'expireAfterSeconds' option must be within an acceptable range,"
            " try a lower number",
        ),
    ],
)
def test_ttl_must_be_a_number_of_seconds_in_range(
    admin: MongoClient[Any], ttl: Any, message: str
) -> None:
    spec = {"key": {"at": 1}, "name": "at_1", "expireAfterSeconds": ttl}
    err = _error(lambda: admin["val_indexes"].command("createIndexes", "ttl", indexes=[spec]))
    _assert_error(err, 67, "CannotCreateIndex", message)


def test_valid_ttl_is_accepted(admin: MongoClient[Any]) -> None:
    spec = {"key": {"at": 1}, "name": "at_1", "expireAfterSeconds": 3600}
    reply = admin["val_indexes"].command("createIndexes", "ttl_ok", indexes=[spec])
    assert reply["numIndexesAfter"] == 2


# -- create -----------------------------------------------------------------------------


def test_capped_create_bounds_size_and_max(admin: MongoClient[Any]) -> None:
    db = admin["val_create"]
    err = _error(lambda: db.command("create", "cc", capped=True, size=-1))
    _assert_error(
        err, 51024, "Location51024", "BSON field 'size' value must be >= 1, actual value '-1'"
    )
    err = _error(lambda: db.command("create", "cc", capped=True))
    _assert_error(err, 2, "BadValue", "the 'size' field is required when 'capped' is true")
    err = _error(lambda: db.command("create", "cc", capped=True, size=4096, max=-5))
    _assert_error(
        err, 51024, "Location51024", "BSON field 'max' value must be >= 0, actual value '-5'"
    )
    err = _error(lambda: db.command("create", "cc", capped=True, size=2**50 + 1))
    assert err.code == 51024
    assert "cc" not in db.list_collection_names()
    db.command("create", "cc", capped=True, size=4096, max=10)
    assert "cc" in db.list_collection_names()


# -- $out -------------------------------------------------------------------------------


def test_out_to_another_database_is_refused(admin: MongoClient[Any]) -> None:
    admin["val_t1"]["src"].insert_one({"a": 1})
    err = _error(
        lambda: admin["val_t1"]["src"].aggregate([{"$out": {"db": "val_t2", "coll": "x"}}])
    )
    _assert_error(err, 238, "NotImplemented", "$out to another database is not supported by phidb")
    assert "x" not in admin["val_t1"].list_collection_names()
    assert "x" not in admin["val_t2"].list_collection_names()
    admin["val_t1"]["src"].aggregate([{"$out": {"db": "val_t1", "coll": "x"}}])
    assert admin["val_t1"]["x"].count_documents({}) == 1


# -- invalid requests are not authorization failures ------------------------------------


def _authcheck_events(server: PhidbServer) -> int:
    return (
        server.audit_path.read_text().count('"atype": "authCheck"')
        if server.audit_path.exists()
        else 0
    )


def test_invalid_requests_are_not_unauthorized_for_root(
    server: PhidbServer, admin: MongoClient[Any]
) -> None:
    before = _authcheck_events(server)
    db = admin["val_t3"]
    err = _error(lambda: db.command("explain", {"insert": "c", "documents": [{}]}))
    _assert_error(err, 20, "IllegalOperation", "Cannot explain cmd: insert")
    err = _error(lambda: db.command("explain", {"explain": {"find": "c"}}))
    _assert_error(err, 20, "IllegalOperation", "Cannot explain cmd: explain")
    err = _error(lambda: db.command("explain", {"noSuchCommand": "c"}))
    _assert_error(
        err, 59, "CommandNotFound", "Explain failed due to unknown command: noSuchCommand"
    )
    err = _error(lambda: admin["admin"].command("renameCollection", "nodot", to="val_t3.x"))
    _assert_error(err, 73, "InvalidNamespace", "Invalid source namespace: nodot")
    err = _error(lambda: admin["admin"].command("renameCollection", "val_t3.a", to="nodot"))
    _assert_error(err, 73, "InvalidNamespace", "Invalid target namespace: nodot")
    err = _error(lambda: db.command("insert", "system.foo", documents=[{"a": 1}]))
    _assert_error(err, 73, "InvalidNamespace", "cannot write to 'val_t3.system.foo'")
    err = _error(lambda: db.command("delete", "system.foo", deletes=[{"q": {}, "limit": 0}]))
    assert err.code == 73
    assert _authcheck_events(server) == before


def test_anonymous_clients_still_get_unauthorized_for_invalid_requests(
    server: PhidbServer,
) -> None:
    client: MongoClient[Any] = MongoClient(
        host="127.0.0.1",
        port=server.port,
        tls=True,
        tlsCAFile=str(server.certs.ca),
        serverSelectionTimeoutMS=5000,
    )
    try:
        err = _error(lambda: client["val_t3"].command("explain", {"insert": "c"}))
        assert err.code == 13
        err = _error(lambda: client["val_t3"].command("insert", "system.foo", documents=[{}]))
        assert err.code == 13
    finally:
        client.close()


# -- $collStats -------------------------------------------------------------------------


def test_coll_stats_stage_reports_storage_and_count(admin: MongoClient[Any]) -> None:
    coll = admin["val_stats"]["c"]
    coll.insert_many([{"n": i, "pad": "x" * 100} for i in range(10)])
    coll.create_index("n")
    out = list(coll.aggregate([{"$collStats": {"storageStats": {"scale": 1}, "count": {}}}]))
    assert len(out) == 1
    doc = out[0]
    assert doc["ns"] == "val_stats.c" and doc["count"] == 10
    assert {"host", "localTime"} <= set(doc)
    stats = doc["storageStats"]
    assert stats["count"] == 10 and stats["nindexes"] == 2 and stats["capped"] is False
    assert sorted(stats["indexSizes"]) == ["_id_", "n_1"]
    assert stats["avgObjSize"] == stats["size"] // 10 and stats["scaleFactor"] == 1
    assert stats["totalSize"] == stats["storageSize"] + stats["totalIndexSize"]
    only_count = list(coll.aggregate([{"$collStats": {"count": {}}}, {"$project": {"count": 1}}]))
    assert only_count == [{"count": 10}]


def test_coll_stats_stage_errors(admin: MongoClient[Any]) -> None:
    db = admin["val_stats"]
    err = _error(lambda: list(db["missing"].aggregate([{"$collStats": {"storageStats": {}}}])))
    _assert_error(
        err,
        26,
        "NamespaceNotFound",
        "Unable to retrieve storageStats in $collStats stage :: caused by ::"
        " Collection [val_stats.missing] not found.",
    )
    err = _error(lambda: list(db["c"].aggregate([{"$match": {}}, {"$collStats": {}}])))
    _assert_error(
        err, 40602, "Location40602", "$collStats is only valid as the first stage in a pipeline"
    )


MONGOSH = env_mongosh()


@pytest.mark.skipif(MONGOSH is None, reason="mongosh is installed by scripts/test")
def test_mongosh_collection_stats_prints(server: PhidbServer) -> None:
    assert MONGOSH is not None and server.admin_password is not None
    uri = (
        f"mongodb://{server.admin_user}:{server.admin_password}@127.0.0.1:{server.port}/shell"
        f"?tls=true&tlsCAFile={server.certs.ca}&authSource=admin"
    )
    script = (
        "db.Patient.insertOne({a: 1}); const s = db.Patient.stats(); print('STATS', s.ns, s.count);"
    )
    result = subprocess.run(
        [MONGOSH, uri, "--norc", "--quiet", "--eval", script],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr + result.stdout
    assert "STATS shell.Patient 1" in result.stdout

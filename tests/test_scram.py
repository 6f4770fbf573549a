"""SCRAM-SHA-1 and SCRAM-SHA-256 server conversations, driven by pymongo's own
client-side SCRAM code through the real dispatcher, engine and audit log (no sockets)."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import scramp
from bson.binary import Binary
from cmdkit import InProcessServer
from pymongo.auth_shared import MongoCredential, _Cache, _password_digest
from pymongo.errors import OperationFailure
from pymongo.synchronous.auth import _authenticate_scram

import phidb.commands  # noqa: F401 - registers the commands
from phidb.commands.context import Connection
from phidb.commands.dispatcher import dispatch
from phidb.commands.users import create_user
from phidb.errors import MongoError
from phidb.security.auth.credentials import make_credential, mongo_sha1_password
from phidb.security.auth.scram import ScramConversation, supported_mechanisms
from phidb.security.auth.users import UserStore

PASSWORD = "correct horse battery staple"


class DispatchConn:
    """What pymongo's SCRAM code needs of a connection (`command` and `auth_ctx`), sending
    each command to the real dispatcher on one phidb connection."""

    auth_ctx = None

    def __init__(self, srv: InProcessServer) -> None:
        self.state = srv.state
        self.conn = Connection(7, ("127.0.0.1", 27017), ("127.0.0.1", 50001), is_loopback=True)
        self.sent: list[dict[str, Any]] = []

    def command(self, source: str, cmd: dict[str, Any]) -> dict[str, Any]:
        self.sent.append(cmd)
        reply = dispatch(self.state, self.conn, dict(cmd), source)
        if reply["ok"] != 1.0:
            raise OperationFailure(reply["errmsg"], reply["code"], reply)
        return reply


@pytest.fixture
def srv(tmp_path: Path) -> Iterator[InProcessServer]:
    srv = InProcessServer(tmp_path)
    create_user(
        srv.context("admin"),
        {"createUser": "alice", "pwd": PASSWORD, "roles": ["readWriteAnyDatabase"]},
    )
    yield srv
    srv.close()


def login(srv: InProcessServer, user: str, password: str, mechanism: str) -> DispatchConn:
    conn = DispatchConn(srv)
    cred = MongoCredential(mechanism, "admin", user, password, None, _Cache())
    _authenticate_scram(cred, conn, mechanism)
    return conn


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-256", "SCRAM-SHA-1"])
def test_pymongo_logs_in_and_connection_gets_the_user(srv: InProcessServer, mechanism: str) -> None:
    conn = login(srv, "alice", PASSWORD, mechanism)
    assert conn.conn.auth.user_names() == [{"user": "alice", "db": "admin"}]
    assert conn.conn.auth.role_names() == [{"role": "readWriteAnyDatabase", "db": "admin"}]
    assert conn.sent[0]["mechanism"] == mechanism
    assert len(conn.sent) == 2  # skipEmptyExchange: done after the server-final message
    assert conn.conn.conversations == {}
    events = srv.audit.of("authenticate")
    assert events[-1]["param"] == {"user": "alice", "db": "admin", "mechanism": mechanism}
    assert events[-1]["result"] == 0


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-256", "SCRAM-SHA-1"])
def test_wrong_password_and_unknown_user_fail_identically(
    srv: InProcessServer, mechanism: str
) -> None:
    with pytest.raises(OperationFailure) as wrong:
        login(srv, "alice", "not the password", mechanism)
    with pytest.raises(OperationFailure) as unknown:
        login(srv, "mallory", PASSWORD, mechanism)
    assert wrong.value.code == unknown.value.code == 18
    assert str(wrong.value) == str(unknown.value)
    assert (
        wrong.value.details["errmsg"] == unknown.value.details["errmsg"] == "Authentication failed."
    )
    assert [e["result"] for e in srv.audit.of("authenticate")] == [18, 18]
    assert srv.audit.of("authenticate")[1]["param"]["user"] == "mallory"


def test_unknown_user_fails_at_the_same_step_with_a_stable_salt(srv: InProcessServer) -> None:
    def first(user: str) -> tuple[str, dict[str, Any]]:
        client = scramp.ScramClient(["SCRAM-SHA-256"], user, "x")
        conn = DispatchConn(srv)
        reply = conn.command(
            "admin",
            {
                "saslStart": 1,
                "mechanism": "SCRAM-SHA-256",
                "payload": Binary(client.get_client_first().encode()),
                "options": {"skipEmptyExchange": True},
            },
        )
        return bytes(reply["payload"]).decode(), reply

    s1, reply = first("nobody")
    s2, _ = first("nobody")
    assert reply["done"] is False and reply["conversationId"] == 1
    salt1 = dict(kv.split("=", 1) for kv in s1.split(","))["s"]
    salt2 = dict(kv.split("=", 1) for kv in s2.split(","))["s"]
    assert salt1 == salt2
    assert len(base64.b64decode(salt1)) == 28
    assert dict(kv.split("=", 1) for kv in s1.split(","))["i"] == "15000"


def test_unsupported_mechanism_is_mechanism_unavailable(srv: InProcessServer) -> None:
    conn = DispatchConn(srv)
    with pytest.raises(OperationFailure) as err:
        conn.command("admin", {"saslStart": 1, "mechanism": "PLAIN", "payload": Binary(b"")})
    assert err.value.code == 334
    assert err.value.details["codeName"] == "MechanismUnavailable"
    assert "PLAIN" in str(err.value)


def test_sasl_continue_with_unknown_conversation_is_protocol_error(srv: InProcessServer) -> None:
    conn = DispatchConn(srv)
    with pytest.raises(OperationFailure) as err:
        conn.command("admin", {"saslContinue": 1, "conversationId": 42, "payload": Binary(b"")})
    assert err.value.code == 17
    assert str(err.value).startswith("No SASL session state found")


def test_failed_conversation_is_forgotten(srv: InProcessServer) -> None:
    client = scramp.ScramClient(["SCRAM-SHA-256"], "alice", "wrong")
    conn = DispatchConn(srv)
    start = conn.command(
        "admin",
        {
            "saslStart": 1,
            "mechanism": "SCRAM-SHA-256",
            "payload": Binary(client.get_client_first().encode()),
        },
    )
    client.set_server_first(bytes(start["payload"]).decode())
    cont = {
        "saslContinue": 1,
        "conversationId": start["conversationId"],
        "payload": Binary(client.get_client_final().encode()),
    }
    with pytest.raises(OperationFailure) as err:
        conn.command("admin", cont)
    assert err.value.code == 18
    with pytest.raises(OperationFailure) as again:
        conn.command("admin", cont)
    assert again.value.code == 17
    assert not conn.conn.auth.is_authenticated


def test_without_skip_empty_exchange_done_comes_after_an_empty_step(srv: InProcessServer) -> None:
    client = scramp.ScramClient(["SCRAM-SHA-256"], "alice", PASSWORD)
    conn = DispatchConn(srv)
    start = conn.command(
        "admin",
        {
            "saslStart": 1,
            "mechanism": "SCRAM-SHA-256",
            "payload": Binary(client.get_client_first().encode()),
        },
    )
    client.set_server_first(bytes(start["payload"]).decode())
    cid = start["conversationId"]
    final = conn.command(
        "admin",
        {
            "saslContinue": 1,
            "conversationId": cid,
            "payload": Binary(client.get_client_final().encode()),
        },
    )
    client.set_server_final(bytes(final["payload"]).decode())
    assert final["done"] is False
    assert not conn.conn.auth.is_authenticated
    last = conn.command("admin", {"saslContinue": 1, "conversationId": cid, "payload": Binary(b"")})
    assert last["done"] is True and bytes(last["payload"]) == b""
    assert conn.conn.auth.user_names() == [{"user": "alice", "db": "admin"}]


def test_concurrent_conversations_are_kept_apart(srv: InProcessServer) -> None:
    conn = DispatchConn(srv)
    clients, cids = [], []
    for _ in range(2):
        client = scramp.ScramClient(
            ["SCRAM-SHA-1"], "alice", mongo_sha1_password("alice", PASSWORD)
        )
        start = conn.command(
            "admin",
            {
                "saslStart": 1,
                "mechanism": "SCRAM-SHA-1",
                "payload": Binary(client.get_client_first().encode()),
                "options": {"skipEmptyExchange": True},
            },
        )
        client.set_server_first(bytes(start["payload"]).decode())
        clients.append(client)
        cids.append(start["conversationId"])
    assert cids == [1, 2]
    for client, cid in reversed(list(zip(clients, cids))):
        reply = conn.command(
            "admin",
            {
                "saslContinue": 1,
                "conversationId": cid,
                "payload": Binary(client.get_client_final().encode()),
            },
        )
        client.set_server_final(bytes(reply["payload"]).decode())
        assert reply["done"] is True


def test_login_closes_cursors_of_the_previous_identity(srv: InProcessServer) -> None:
    conn = login(srv, "alice", PASSWORD, "SCRAM-SHA-256")
    owner = conn.conn.auth.owner_key()
    srv.state.cursors.open("db.c", owner, conn.conn.connection_id, iter([{"a": 1}] * 300), 1)
    assert len(srv.state.cursors) == 1
    create_user(srv.context("test"), {"createUser": "bob", "pwd": PASSWORD, "roles": ["read"]})
    cred = MongoCredential("SCRAM-SHA-256", "test", "bob", PASSWORD, None, _Cache())
    _authenticate_scram(cred, conn, "SCRAM-SHA-256")
    assert len(srv.state.cursors) == 0
    assert conn.conn.auth.user_names() == [
        {"user": "alice", "db": "admin"},
        {"user": "bob", "db": "test"},
    ]


def test_logout_removes_the_user_and_audits(srv: InProcessServer) -> None:
    conn = login(srv, "alice", PASSWORD, "SCRAM-SHA-256")
    assert conn.command("admin", {"logout": 1}) == {"ok": 1.0}
    assert not conn.conn.auth.is_authenticated
    event = srv.audit.of("logout")[-1]
    assert event["param"]["initialUsers"] == [{"user": "alice", "db": "admin"}]
    assert event["param"]["updatedUsers"] == []


def test_connection_status_lists_users_roles_and_privileges(srv: InProcessServer) -> None:
    conn = login(srv, "alice", PASSWORD, "SCRAM-SHA-256")
    reply = conn.command("admin", {"connectionStatus": 1, "showPrivileges": True})
    info = reply["authInfo"]
    assert info["authenticatedUsers"] == [{"user": "alice", "db": "admin"}]
    assert info["authenticatedUserRoles"] == [{"role": "readWriteAnyDatabase", "db": "admin"}]
    resources = [p["resource"] for p in info["authenticatedUserPrivileges"]]
    assert {"db": "", "collection": ""} in resources
    assert {"cluster": True} in resources


def test_credentials_are_mongodb_shaped_and_hold_no_password() -> None:
    cred256 = make_credential("SCRAM-SHA-256", "u", PASSWORD)
    cred1 = make_credential("SCRAM-SHA-1", "u", PASSWORD)
    assert set(cred256) == {"iterationCount", "salt", "storedKey", "serverKey"}
    assert cred256["iterationCount"] == 15000 and cred1["iterationCount"] == 10000
    assert len(base64.b64decode(cred256["salt"])) == 28
    assert len(base64.b64decode(cred1["salt"])) == 16
    assert len(base64.b64decode(cred256["storedKey"])) == 32
    assert len(base64.b64decode(cred1["serverKey"])) == 20
    assert PASSWORD not in repr(cred256) + repr(cred1)


def test_sha1_secret_is_mongodbs_password_digest() -> None:
    assert mongo_sha1_password("user", "pencil") == _password_digest("user", "pencil")
    assert mongo_sha1_password("user", "pencil") == "1c33006ec1ffd90f9cadcbcc0e118200"


def test_supported_mechanisms_follow_the_stored_credentials(srv: InProcessServer) -> None:
    doc = UserStore(srv.engine).get("admin", "alice")
    assert supported_mechanisms(doc) == ["SCRAM-SHA-1", "SCRAM-SHA-256"]
    assert supported_mechanisms(None) == []
    only256 = {"credentials": {"SCRAM-SHA-256": make_credential("SCRAM-SHA-256", "x", "y")}}
    assert supported_mechanisms(only256) == ["SCRAM-SHA-256"]


def test_missing_mechanism_credential_fails_like_a_wrong_password() -> None:
    doc = {
        "user": "x",
        "db": "admin",
        "credentials": {"SCRAM-SHA-256": make_credential("SCRAM-SHA-256", "x", "pw")},
    }
    conv = ScramConversation("SCRAM-SHA-1", "admin", lambda n: doc, True)
    client = scramp.ScramClient(["SCRAM-SHA-1"], "x", mongo_sha1_password("x", "pw"))
    client.set_server_first(conv.start(client.get_client_first().encode()).decode())
    with pytest.raises(MongoError) as err:
        conv.step(client.get_client_final().encode())
    assert (err.value.code, err.value.message) == (18, "Authentication failed.")

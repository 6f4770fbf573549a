"""Cursors belong to the users who opened them: another user (root included) cannot
continue or kill them, and logging out or changing user on the connection closes them.
Same-connection cases speak OP_MSG over one TLS socket and log in with scramp."""

from __future__ import annotations

import itertools
import secrets
import socket
import ssl
import struct
from collections.abc import Iterator
from typing import Any

import bson
import pytest
import scramp
from bson import Int64
from bson.binary import Binary
from pymongo import MongoClient
from pymongo.errors import OperationFailure

from harness import PhidbServer
from phidb.wire import frames

DB = "e2e_ownership"
COLL = "charts"
UNAUTHORIZED = 13
CURSOR_NOT_FOUND = 43


class RawConnection:
    """One TLS connection to the server speaking OP_MSG, so a test knows that every
    command it sends runs on the same server-side connection."""

    def __init__(self, server: PhidbServer) -> None:
        context = ssl.create_default_context(cafile=str(server.certs.ca))
        raw = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        self.sock = context.wrap_socket(raw, server_hostname="localhost")
        self.request_ids = itertools.count(1)

    def command(self, db: str, doc: dict[str, Any]) -> dict[str, Any]:
        msg = frames.encode_op_msg(
            0, next(self.request_ids), {**doc, "$db": db}, bson.DEFAULT_CODEC_OPTIONS
        )
        self.sock.sendall(msg)
        header = self._read(16)
        length, _, _, opcode = struct.unpack("<iiii", header)
        assert opcode == frames.OP_MSG
        body = self._read(length - 16)
        return bson.decode(body[5:])

    def ok(self, db: str, doc: dict[str, Any]) -> dict[str, Any]:
        reply = self.command(db, doc)
        assert reply["ok"] == 1.0, reply
        return reply

    def login(self, user: str, password: str) -> None:
        """SCRAM-SHA-256 against admin, the conversation driven by scramp."""
        client = scramp.ScramClient(["SCRAM-SHA-256"], user, password)
        start = self.ok(
            "admin",
            {
                "saslStart": 1,
                "mechanism": "SCRAM-SHA-256",
                "payload": Binary(client.get_client_first().encode()),
                "options": {"skipEmptyExchange": True},
            },
        )
        client.set_server_first(bytes(start["payload"]).decode())
        final = self.ok(
            "admin",
            {
                "saslContinue": 1,
                "conversationId": start["conversationId"],
                "payload": Binary(client.get_client_final().encode()),
            },
        )
        client.set_server_final(bytes(final["payload"]).decode())
        assert final["done"] is True

    def users(self) -> list[dict[str, str]]:
        status = self.ok("admin", {"connectionStatus": 1})
        return list(status["authInfo"]["authenticatedUsers"])

    def open_cursor(self) -> Int64:
        reply = self.ok(DB, {"find": COLL, "filter": {}, "batchSize": 1})
        cursor_id = reply["cursor"]["id"]
        assert isinstance(cursor_id, Int64) and cursor_id != 0
        return cursor_id

    def get_more(self, cursor_id: Int64) -> dict[str, Any]:
        return self.command(DB, {"getMore": cursor_id, "collection": COLL, "batchSize": 1})

    def close(self) -> None:
        self.sock.close()

    def _read(self, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                raise ConnectionError("server closed the connection")
            data += chunk
        return data


@pytest.fixture(scope="module")
def accounts(server: PhidbServer, admin: MongoClient[Any]) -> dict[str, str]:
    passwords = {}
    for user in ("clerkA", "clerkB"):
        passwords[user] = secrets.token_urlsafe(16)
        admin.admin.command(
            "createUser", user, pwd=passwords[user], roles=[{"role": "readWrite", "db": DB}]
        )
    admin[DB][COLL].drop()
    admin[DB][COLL].insert_many([{"_id": i, "note": f"visit {i}"} for i in range(10)])
    return passwords


@pytest.fixture
def raw(server: PhidbServer) -> Iterator[RawConnection]:
    conn = RawConnection(server)
    yield conn
    conn.close()


def client_for(server: PhidbServer, accounts: dict[str, str], user: str) -> Any:
    return server.client(user, accounts[user])[DB]


def get_more(db: Any, cursor_id: Int64) -> dict[str, Any]:
    return dict(db.command("getMore", cursor_id, collection=COLL, batchSize=1))


def kill(db: Any, cursor_id: Int64) -> dict[str, Any]:
    return dict(db.command("killCursors", COLL, cursors=[cursor_id]))


def test_another_user_cannot_continue_or_kill_a_cursor(
    server: PhidbServer, accounts: dict[str, str], admin: MongoClient[Any]
) -> None:
    a = client_for(server, accounts, "clerkA")
    b = client_for(server, accounts, "clerkB")
    first = a.command("find", COLL, filter={}, batchSize=1)
    cursor_id = first["cursor"]["id"]
    assert [d["_id"] for d in first["cursor"]["firstBatch"]] == [0]

    for other in (b, admin[DB]):
        with pytest.raises(OperationFailure) as err:
            get_more(other, cursor_id)
        assert err.value.code == UNAUTHORIZED
        assert err.value.details["codeName"] == "Unauthorized"
        assert err.value.details["errmsg"] == (
            f"cursor id {cursor_id} was not created by the authenticated user"
        )
        assert kill(other, cursor_id) == {
            "cursorsKilled": [],
            "cursorsNotFound": [cursor_id],
            "cursorsAlive": [],
            "cursorsUnknown": [],
            "ok": 1.0,
        }

    # Neither attempt used up or closed the owner's cursor.
    reply = get_more(a, cursor_id)
    assert reply["cursor"]["id"] == cursor_id
    assert [d["_id"] for d in reply["cursor"]["nextBatch"]] == [1]
    assert kill(a, cursor_id)["cursorsKilled"] == [cursor_id]
    with pytest.raises(OperationFailure) as gone:
        get_more(a, cursor_id)
    assert gone.value.code == CURSOR_NOT_FOUND


def test_the_owner_may_continue_a_cursor_from_another_connection(
    server: PhidbServer, accounts: dict[str, str], raw: RawConnection
) -> None:
    raw.login("clerkA", accounts["clerkA"])
    cursor_id = raw.open_cursor()
    reply = get_more(client_for(server, accounts, "clerkA"), cursor_id)
    assert [d["_id"] for d in reply["cursor"]["nextBatch"]] == [1]
    assert [d["_id"] for d in raw.get_more(cursor_id)["cursor"]["nextBatch"]] == [2]


def test_logout_closes_the_cursors_opened_on_that_connection(
    server: PhidbServer, accounts: dict[str, str], raw: RawConnection
) -> None:
    raw.login("clerkA", accounts["clerkA"])
    cursor_id = raw.open_cursor()
    assert raw.ok("admin", {"logout": 1}) == {"ok": 1.0}
    assert raw.users() == []

    anonymous = raw.get_more(cursor_id)
    assert (anonymous["ok"], anonymous["code"]) == (0.0, UNAUTHORIZED)

    raw.login("clerkA", accounts["clerkA"])
    again = raw.get_more(cursor_id)
    assert (again["ok"], again["code"], again["codeName"]) == (
        0.0,
        CURSOR_NOT_FOUND,
        "CursorNotFound",
    )
    assert again["errmsg"] == f"cursor id {cursor_id} not found"
    with pytest.raises(OperationFailure) as elsewhere:
        get_more(client_for(server, accounts, "clerkA"), cursor_id)
    assert elsewhere.value.code == CURSOR_NOT_FOUND


def test_logout_leaves_cursors_of_other_connections_open(
    server: PhidbServer, accounts: dict[str, str], raw: RawConnection
) -> None:
    a = client_for(server, accounts, "clerkA")
    cursor_id = a.command("find", COLL, filter={}, batchSize=1)["cursor"]["id"]
    raw.login("clerkA", accounts["clerkA"])
    raw.ok("admin", {"logout": 1})
    assert [d["_id"] for d in get_more(a, cursor_id)["cursor"]["nextBatch"]] == [1]


def test_changing_user_on_a_connection_closes_the_old_users_cursors(
    server: PhidbServer, accounts: dict[str, str], raw: RawConnection
) -> None:
    raw.login("clerkA", accounts["clerkA"])
    cursor_id = raw.open_cursor()
    raw.login("clerkB", accounts["clerkB"])
    assert raw.users() == [{"user": "clerkB", "db": "admin"}]

    as_b = raw.get_more(cursor_id)
    assert (as_b["ok"], as_b["code"]) == (0.0, CURSOR_NOT_FOUND)
    with pytest.raises(OperationFailure) as as_a:
        get_more(client_for(server, accounts, "clerkA"), cursor_id)
    assert as_a.value.code == CURSOR_NOT_FOUND

    # The new user's own cursors work as usual on the same connection.
    mine = raw.open_cursor()
    assert [d["_id"] for d in raw.get_more(mine)["cursor"]["nextBatch"]] == [1]

"""Logging in to a real phidb server with pymongo: SCRAM-SHA-256 and SCRAM-SHA-1,
identical failures, the localhost exception, and privileges after login."""

from __future__ import annotations

from typing import Any

import pytest
from pymongo import MongoClient
from pymongo.errors import OperationFailure

from harness import PhidbServer

PASSWORD = "e2e-auth-password-0123456789"


@pytest.fixture(scope="module")
def nurse(server: PhidbServer, admin: MongoClient[Any]) -> str:
    admin["e2eauth"].command("createUser", "nurse", pwd=PASSWORD, roles=["read"])
    return "nurse"


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-256", "SCRAM-SHA-1"])
def test_pymongo_logs_in_with_scram(server: PhidbServer, nurse: str, mechanism: str) -> None:
    client = server.client(nurse, PASSWORD, db="e2eauth", authMechanism=mechanism)
    status = client["e2eauth"].command("connectionStatus")
    assert status["authInfo"]["authenticatedUsers"] == [{"user": "nurse", "db": "e2eauth"}]
    assert status["authInfo"]["authenticatedUserRoles"] == [{"role": "read", "db": "e2eauth"}]


def test_wrong_password_and_unknown_user_fail_identically(server: PhidbServer, nurse: str) -> None:
    errors = []
    for user, password in ((nurse, "wrong-password"), ("nobody-here", PASSWORD)):
        client = server.client(user, password, db="e2eauth")
        with pytest.raises(OperationFailure) as err:
            client["e2eauth"].command("ping")
        errors.append(err.value)
    assert [e.code for e in errors] == [18, 18]
    assert errors[0].details["errmsg"] == errors[1].details["errmsg"] == "Authentication failed."


def test_hello_lists_the_users_mechanisms(server: PhidbServer, nurse: str) -> None:
    client = server.client()
    reply = client.admin.command("hello", saslSupportedMechs="e2eauth.nurse")
    assert reply["saslSupportedMechs"] == ["SCRAM-SHA-1", "SCRAM-SHA-256"]
    assert "saslSupportedMechs" not in client.admin.command(
        "hello", saslSupportedMechs="e2eauth.ghost"
    )


def test_unauthenticated_client_is_refused(server: PhidbServer) -> None:
    client = server.client()
    with pytest.raises(OperationFailure) as err:
        client["e2eauth"].command("usersInfo", 1)
    assert err.value.code == 13


def test_read_user_cannot_insert(server: PhidbServer, nurse: str) -> None:
    client = server.client(nurse, PASSWORD, db="e2eauth")
    with pytest.raises(OperationFailure) as err:
        client["e2eauth"]["patients"].insert_one({"name": "x"})
    if err.value.code == 59:
        pytest.skip("the insert command is not registered on this build yet")
    assert err.value.code == 13


def test_localhost_exception_allows_only_the_first_user(make_phidb: Any) -> None:
    srv = make_phidb()
    anonymous = srv.client()
    with pytest.raises(OperationFailure) as before:
        anonymous.admin.command("usersInfo", 1)
    assert before.value.code == 13
    with pytest.raises(OperationFailure) as elsewhere:
        anonymous["clinic"].command("createUser", "x", pwd=PASSWORD, roles=[])
    assert elsewhere.value.code == 13
    anonymous.admin.command("createUser", "first", pwd=PASSWORD, roles=["root"])
    with pytest.raises(OperationFailure) as after:
        anonymous.admin.command("createUser", "second", pwd=PASSWORD, roles=["root"])
    assert after.value.code == 13
    first = srv.client("first", PASSWORD)
    assert [u["user"] for u in first.admin.command("usersInfo", 1)["users"]] == ["first"]

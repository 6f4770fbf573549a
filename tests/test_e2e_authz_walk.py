"""Deny by default, proven by walking the whole command table: no registered
command runs for a client without the privilege it declares."""

from __future__ import annotations

import secrets
from typing import Any

import pytest
from bson.int64 import Int64
from pymongo import MongoClient
from pymongo.errors import OperationFailure

import phidb.commands  # noqa: F401 - fills the table
from harness import PhidbServer
from phidb.commands.registry import COMMANDS

# The only commands a client may run before it has an identity: the handshake,
# login and logout. Adding one here is a security decision; make it on purpose.
NO_AUTH_COMMANDS = {
    "hello",
    "isMaster",
    "ismaster",
    "ping",
    "buildInfo",
    "buildinfo",
    "saslStart",
    "saslContinue",
    "logout",
    "endSessions",
    "whatsmyuri",
    "connectionStatus",
}

# Arguments that parse, so the only thing left to refuse is authorization.
SAMPLE_ARGS: dict[str, dict[str, Any]] = {
    "insert": {"documents": [{"a": 1}]},
    "update": {"updates": [{"q": {}, "u": {"$set": {"a": 1}}}]},
    "delete": {"deletes": [{"q": {}, "limit": 0}]},
    "findAndModify": {"query": {}, "update": {"$set": {"a": 1}}},
    "getMore": {"collection": "walkcoll"},
    "killCursors": {"cursors": [Int64(12345)]},
    "aggregate": {"pipeline": [], "cursor": {}},
    "distinct": {"key": "a"},
    "createIndexes": {"indexes": [{"key": {"a": 1}, "name": "a_1"}]},
    "dropIndexes": {"index": "a_1"},
    "renameCollection": {"to": "walk.other"},
    "createUser": {"pwd": "x" * 16, "roles": []},
    "updateUser": {"pwd": "y" * 16},
    "grantRolesToUser": {"roles": ["read"]},
    "revokeRolesFromUser": {"roles": ["read"]},
    "explain": {},
}


def command_for(name: str) -> dict[str, Any]:
    if name == "getMore":
        first: Any = Int64(12345)
    elif name == "renameCollection":
        first = "walk.walkcoll"
    elif name == "explain":
        first = {"find": "walkcoll", "filter": {}}
    elif name in (
        "createUser",
        "updateUser",
        "dropUser",
        "grantRolesToUser",
        "revokeRolesFromUser",
        "usersInfo",
    ):
        first = "someone_else"
    elif name in (
        "getParameter",
        "getCmdLineOpts",
        "serverStatus",
        "getLog",
        "listDatabases",
        "dropDatabase",
        "dbStats",
        "rolesInfo",
    ):
        first = "*" if name in ("getParameter", "getLog") else 1
    else:
        first = "walkcoll"
    return {name: first, **SAMPLE_ARGS.get(name, {})}


def db_for(name: str) -> str:
    admin_commands = {
        "renameCollection",
        "getParameter",
        "getCmdLineOpts",
        "getLog",
        "listDatabases",
        "serverStatus",
    }
    return "admin" if name in admin_commands else "walk"


def test_the_unauthenticated_command_set_is_exactly_the_handshake():
    no_auth = {name for name, spec in COMMANDS.items() if not spec.requires_auth}
    assert no_auth == NO_AUTH_COMMANDS


@pytest.fixture(scope="module")
def no_role_client(server: PhidbServer, admin: MongoClient) -> MongoClient:
    password = secrets.token_urlsafe(16)
    admin.walk.command("createUser", "nobody", pwd=password, roles=[])
    return server.client("nobody", password, db="walk")


@pytest.fixture(scope="module")
def anonymous(server: PhidbServer) -> MongoClient:
    return server.client()


@pytest.mark.parametrize("name", sorted(set(COMMANDS) - NO_AUTH_COMMANDS))
def test_no_command_runs_without_its_privilege(
    name: str, no_role_client: MongoClient, anonymous: MongoClient
):
    for client in (no_role_client, anonymous):
        with pytest.raises(OperationFailure) as info:
            client[db_for(name)].command(command_for(name))
        assert info.value.code == 13, (name, info.value.details)
        assert info.value.details["codeName"] == "Unauthorized"


def test_refusals_are_audited_without_argument_values(
    server: PhidbServer, no_role_client: MongoClient
):
    with pytest.raises(OperationFailure):
        no_role_client.walk.command("find", "walkcoll", filter={"ssn": "999-12-3456"})
    text = server.audit_path.read_text()
    assert '"atype": "authCheck"' in text or '"atype":"authCheck"' in text
    assert "999-12-3456" not in text

"""User management against a real phidb server with pymongo."""

from __future__ import annotations

from typing import Any

import pytest
from pymongo import MongoClient
from pymongo.errors import OperationFailure

from harness import PhidbServer

PASSWORD = "e2e-users-password-0123456789"
NEW_PASSWORD = "e2e-users-new-password-98765"


def test_users_info_never_shows_credentials_by_default(admin: MongoClient[Any]) -> None:
    admin["e2eusers"].command("createUser", "clerk", pwd=PASSWORD, roles=["readWrite"])
    info = admin["e2eusers"].command("usersInfo", "clerk")["users"][0]
    assert info["user"] == "clerk" and info["db"] == "e2eusers"
    assert info["roles"] == [{"role": "readWrite", "db": "e2eusers"}]
    assert "credentials" not in info
    shown = admin["e2eusers"].command("usersInfo", "clerk", showCredentials=True)["users"][0]
    assert sorted(shown["credentials"]) == ["SCRAM-SHA-1", "SCRAM-SHA-256"]
    assert shown["credentials"]["SCRAM-SHA-256"]["iterationCount"] == 15000


def test_duplicate_and_missing_users(admin: MongoClient[Any]) -> None:
    admin["e2eusers"].command("createUser", "twice", pwd=PASSWORD, roles=[])
    with pytest.raises(OperationFailure) as dup:
        admin["e2eusers"].command("createUser", "twice", pwd=PASSWORD, roles=[])
    assert dup.value.code == 51003
    assert dup.value.details["errmsg"] == 'User "twice@e2eusers" already exists'
    with pytest.raises(OperationFailure) as missing:
        admin["e2eusers"].command("dropUser", "ghost")
    assert missing.value.code == 11
    assert missing.value.details["errmsg"] == "User 'ghost@e2eusers' not found"


def test_changed_password_replaces_the_old_one(
    server: PhidbServer, admin: MongoClient[Any]
) -> None:
    admin["e2eusers"].command("createUser", "rotor", pwd=PASSWORD, roles=["read"])
    admin["e2eusers"].command("updateUser", "rotor", pwd=NEW_PASSWORD)
    new = server.client("rotor", NEW_PASSWORD, db="e2eusers")
    assert new["e2eusers"].command("connectionStatus")["authInfo"]["authenticatedUsers"]
    old = server.client("rotor", PASSWORD, db="e2eusers")
    with pytest.raises(OperationFailure) as err:
        old["e2eusers"].command("ping")
    assert err.value.code == 18


def test_grant_revoke_and_roles_info(admin: MongoClient[Any]) -> None:
    db = admin["e2eusers"]
    db.command("createUser", "granted", pwd=PASSWORD, roles=["read"])
    db.command("grantRolesToUser", "granted", roles=["dbAdmin"])
    db.command("revokeRolesFromUser", "granted", roles=["read"])
    assert db.command("usersInfo", "granted")["users"][0]["roles"] == [
        {"role": "dbAdmin", "db": "e2eusers"}
    ]
    with pytest.raises(OperationFailure) as err:
        db.command("grantRolesToUser", "granted", roles=["root"])
    assert err.value.code == 31
    roles = db.command("rolesInfo", "read", showPrivileges=True)["roles"]
    assert roles[0]["role"] == "read" and roles[0]["isBuiltin"] is True

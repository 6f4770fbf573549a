"""Access follows people as they change roles: a grant, a revocation or a dropped
user takes effect on connections that are already logged in."""

from __future__ import annotations

import secrets

import pytest
from pymongo import MongoClient
from pymongo.errors import OperationFailure

from harness import PhidbServer


def new_user(admin: MongoClient, name: str, roles: list) -> str:
    password = secrets.token_urlsafe(16)
    admin.clinic.command("createUser", name, pwd=password, roles=roles)
    return password


def test_revoked_role_stops_a_logged_in_connection(server: PhidbServer, admin: MongoClient):
    admin.clinic.notes.insert_one({"_id": 1})
    password = new_user(admin, "nurse", ["readWrite"])
    nurse = server.client("nurse", password, db="clinic")
    nurse.clinic.notes.insert_one({"_id": 2})

    admin.clinic.command("revokeRolesFromUser", "nurse", roles=["readWrite"])
    admin.clinic.command("grantRolesToUser", "nurse", roles=["read"])
    with pytest.raises(OperationFailure) as info:
        nurse.clinic.notes.insert_one({"_id": 3})
    assert info.value.code == 13
    assert nurse.clinic.notes.count_documents({}) == 2


def test_granted_role_applies_without_logging_in_again(server: PhidbServer, admin: MongoClient):
    password = new_user(admin, "clerk", [])
    clerk = server.client("clerk", password, db="clinic")
    with pytest.raises(OperationFailure) as info:
        clerk.clinic.notes.find_one({})
    assert info.value.code == 13
    admin.clinic.command("grantRolesToUser", "clerk", roles=["read"])
    assert clerk.clinic.notes.find_one({"_id": 1}) == {"_id": 1}


def test_dropped_user_loses_access_on_open_connections(server: PhidbServer, admin: MongoClient):
    password = new_user(admin, "leaver", ["read"])
    leaver = server.client("leaver", password, db="clinic")
    assert leaver.clinic.notes.find_one({"_id": 1}) == {"_id": 1}
    admin.clinic.command("dropUser", "leaver")
    with pytest.raises(OperationFailure) as info:
        leaver.clinic.notes.find_one({})
    assert info.value.code == 13

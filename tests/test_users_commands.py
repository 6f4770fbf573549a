"""User management commands through the real dispatcher, engine and audit log: what
they store, what they return, which errors and privileges they have, and what they audit."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cmdkit import InProcessServer

import phidb.commands  # noqa: F401 - registers the commands
from phidb.commands.context import Connection
from phidb.commands.dispatcher import dispatch
from phidb.security.auth.users import UserStore
from phidb.security.authz.roles import authenticated_user

PASSWORD = "s3cret-passphrase-for-tests"


class Client:
    def __init__(self, srv: InProcessServer, loopback: bool = True) -> None:
        self.state = srv.state
        remote = ("127.0.0.1", 40000) if loopback else ("192.0.2.7", 40000)
        self.conn = Connection(3, ("127.0.0.1", 27017), remote, is_loopback=loopback)

    def run(self, db: str, cmd: dict[str, Any]) -> dict[str, Any]:
        return dispatch(self.state, self.conn, cmd, db)

    def as_user(self, user: str, db: str) -> Client:
        doc = UserStore(self.state.engine).get(db, user)
        self.conn.auth.add_user(authenticated_user(doc))
        return self


@pytest.fixture
def fresh(tmp_path: Path) -> Iterator[InProcessServer]:
    srv = InProcessServer(tmp_path)
    yield srv
    srv.close()


@pytest.fixture
def state(fresh: InProcessServer) -> InProcessServer:
    reply = Client(fresh).run("admin", {"createUser": "root", "pwd": PASSWORD, "roles": ["root"]})
    assert reply == {"ok": 1.0}
    return fresh


def test_localhost_exception_allows_only_the_first_create_user(fresh: InProcessServer) -> None:
    st = fresh
    anon = Client(st)
    assert anon.run("admin", {"usersInfo": 1})["code"] == 13
    assert anon.run("clinic", {"createUser": "x", "pwd": PASSWORD, "roles": []})["code"] == 13
    remote = Client(st, loopback=False)
    assert (
        remote.run("admin", {"createUser": "x", "pwd": PASSWORD, "roles": ["root"]})["code"] == 13
    )
    assert anon.run("admin", {"createUser": "first", "pwd": PASSWORD, "roles": ["root"]}) == {
        "ok": 1.0
    }
    assert (
        anon.run("admin", {"createUser": "second", "pwd": PASSWORD, "roles": ["root"]})["code"]
        == 13
    )


def test_created_user_document_is_mongodb_shaped_without_the_password(
    state: InProcessServer,
) -> None:
    admin = Client(state).as_user("root", "admin")
    assert admin.run(
        "clinic",
        {"createUser": "nurse", "pwd": PASSWORD, "roles": ["read"], "customData": {"team": "a"}},
    ) == {"ok": 1.0}
    doc = UserStore(state.engine).get("clinic", "nurse")
    assert doc["_id"] == "clinic.nurse"
    assert doc["userId"].subtype == 4
    assert (doc["user"], doc["db"]) == ("nurse", "clinic")
    assert doc["roles"] == [{"role": "read", "db": "clinic"}]
    assert sorted(doc["credentials"]) == ["SCRAM-SHA-1", "SCRAM-SHA-256"]
    assert doc["mechanisms"] == ["SCRAM-SHA-1", "SCRAM-SHA-256"]
    assert doc["customData"] == {"team": "a"}
    assert PASSWORD not in repr(doc)
    event = state.audit.of("createUser")[-1]
    assert event["param"] == {
        "user": "nurse",
        "db": "clinic",
        "roles": [{"role": "read", "db": "clinic"}],
    }
    assert PASSWORD not in state.audit.text()


def test_create_user_errors(state: InProcessServer) -> None:
    admin = Client(state).as_user("root", "admin")
    dup = admin.run("admin", {"createUser": "root", "pwd": PASSWORD, "roles": []})
    assert (dup["code"], dup["errmsg"]) == (51003, 'User "root@admin" already exists')
    assert admin.run("clinic", {"createUser": "a", "roles": []})["code"] == 2
    missing = admin.run("clinic", {"createUser": "a", "pwd": PASSWORD, "roles": ["nope"]})
    assert (missing["code"], missing["errmsg"]) == (31, "Could not find role: nope@clinic")
    assert (
        admin.run("clinic", {"createUser": "a", "pwd": PASSWORD, "roles": ["root"]})["code"] == 31
    )
    assert (
        admin.run(
            "clinic", {"createUser": "a", "pwd": PASSWORD, "roles": [], "mechanisms": ["PLAIN"]}
        )["code"]
        == 2
    )
    assert admin.run("$external", {"createUser": "CN=x", "roles": []}) == {"ok": 1.0}
    assert UserStore(state.engine).get("$external", "CN=x")["credentials"] == {}


def test_user_admin_cannot_grant_roles_of_another_database(state: InProcessServer) -> None:
    admin = Client(state).as_user("root", "admin")
    admin.run("clinic", {"createUser": "ua", "pwd": PASSWORD, "roles": ["userAdmin"]})
    ua = Client(state).as_user("ua", "clinic")
    assert ua.run("clinic", {"createUser": "n", "pwd": PASSWORD, "roles": ["read"]}) == {"ok": 1.0}
    denied = ua.run(
        "clinic", {"createUser": "m", "pwd": PASSWORD, "roles": [{"role": "read", "db": "lab"}]}
    )
    assert denied["code"] == 13
    assert state.audit.of("authCheck")[-1]["result"] == 13


def test_users_info_hides_credentials_unless_asked(state: InProcessServer) -> None:
    admin = Client(state).as_user("root", "admin")
    users = admin.run("admin", {"usersInfo": 1})["users"]
    assert [u["user"] for u in users] == ["root"]
    assert "credentials" not in users[0]
    assert users[0]["mechanisms"] == ["SCRAM-SHA-1", "SCRAM-SHA-256"]
    shown = admin.run("admin", {"usersInfo": "root", "showCredentials": True})["users"][0]
    assert sorted(shown["credentials"]) == ["SCRAM-SHA-1", "SCRAM-SHA-256"]
    assert set(shown["credentials"]["SCRAM-SHA-256"]) == {
        "iterationCount",
        "salt",
        "storedKey",
        "serverKey",
    }


def test_users_info_forms(state: InProcessServer) -> None:
    admin = Client(state).as_user("root", "admin")
    admin.run("clinic", {"createUser": "n1", "pwd": PASSWORD, "roles": ["read"]})
    admin.run("lab", {"createUser": "n2", "pwd": PASSWORD, "roles": ["read"]})
    assert [u["_id"] for u in admin.run("clinic", {"usersInfo": 1})["users"]] == ["clinic.n1"]
    both = admin.run(
        "admin", {"usersInfo": [{"user": "n1", "db": "clinic"}, {"user": "n2", "db": "lab"}]}
    )
    assert [u["_id"] for u in both["users"]] == ["clinic.n1", "lab.n2"]
    everyone = admin.run("admin", {"usersInfo": {"forAllDBs": True}})
    assert [u["_id"] for u in everyone["users"]] == ["admin.root", "clinic.n1", "lab.n2"]
    assert admin.run("clinic", {"usersInfo": "ghost"})["users"] == []


def test_user_may_view_themselves_but_not_others(state: InProcessServer) -> None:
    admin = Client(state).as_user("root", "admin")
    admin.run("clinic", {"createUser": "n1", "pwd": PASSWORD, "roles": ["read"]})
    me = Client(state).as_user("n1", "clinic")
    assert me.run("clinic", {"usersInfo": "n1"})["users"][0]["user"] == "n1"
    assert me.run("clinic", {"usersInfo": 1})["code"] == 13
    assert me.run("admin", {"usersInfo": "root"})["code"] == 13
    assert me.run("clinic", {"rolesInfo": "read"})["roles"][0]["role"] == "read"
    assert me.run("clinic", {"rolesInfo": "readWrite"})["code"] == 13


def test_update_user_changes_password_roles_and_audits(state: InProcessServer) -> None:
    admin = Client(state).as_user("root", "admin")
    admin.run("clinic", {"createUser": "n1", "pwd": PASSWORD, "roles": ["read"]})
    old = UserStore(state.engine).get("clinic", "n1")["credentials"]
    assert admin.run(
        "clinic", {"updateUser": "n1", "pwd": "another-long-password", "roles": ["readWrite"]}
    ) == {"ok": 1.0}
    doc = UserStore(state.engine).get("clinic", "n1")
    assert doc["credentials"]["SCRAM-SHA-256"]["storedKey"] != old["SCRAM-SHA-256"]["storedKey"]
    assert doc["roles"] == [{"role": "readWrite", "db": "clinic"}]
    event = state.audit.of("updateUser")[-1]
    assert event["param"] == {
        "user": "n1",
        "db": "clinic",
        "roles": [{"role": "readWrite", "db": "clinic"}],
        "passwordChanged": True,
    }
    assert "another-long-password" not in state.audit.text()
    missing = admin.run("clinic", {"updateUser": "ghost", "pwd": "x-long-password"})
    assert (missing["code"], missing["errmsg"]) == (11, "User 'ghost@clinic' not found")
    assert admin.run("clinic", {"updateUser": "n1"})["code"] == 2


def test_grant_and_revoke_roles(state: InProcessServer) -> None:
    admin = Client(state).as_user("root", "admin")
    admin.run("clinic", {"createUser": "n1", "pwd": PASSWORD, "roles": ["read"]})
    assert admin.run("clinic", {"grantRolesToUser": "n1", "roles": ["readWrite", "read"]}) == {
        "ok": 1.0
    }
    store = UserStore(state.engine)
    assert store.get("clinic", "n1")["roles"] == [
        {"role": "read", "db": "clinic"},
        {"role": "readWrite", "db": "clinic"},
    ]
    assert admin.run("clinic", {"revokeRolesFromUser": "n1", "roles": ["read"]}) == {"ok": 1.0}
    assert store.get("clinic", "n1")["roles"] == [{"role": "readWrite", "db": "clinic"}]
    assert state.audit.of("grantRolesToUser")[-1]["param"]["roles"] == [
        {"role": "readWrite", "db": "clinic"},
        {"role": "read", "db": "clinic"},
    ]
    assert state.audit.of("revokeRolesFromUser")[-1]["param"]["user"] == "n1"
    assert admin.run("clinic", {"grantRolesToUser": "n1", "roles": ["bogus"]})["code"] == 31
    assert admin.run("clinic", {"grantRolesToUser": "ghost", "roles": ["read"]})["code"] == 11


def test_drop_user(state: InProcessServer) -> None:
    admin = Client(state).as_user("root", "admin")
    admin.run("clinic", {"createUser": "n1", "pwd": PASSWORD, "roles": ["read"]})
    assert admin.run("clinic", {"dropUser": "n1"}) == {"ok": 1.0}
    assert UserStore(state.engine).get("clinic", "n1") is None
    again = admin.run("clinic", {"dropUser": "n1"})
    assert (again["code"], again["codeName"], again["errmsg"]) == (
        11,
        "UserNotFound",
        "User 'n1@clinic' not found",
    )
    assert state.audit.of("dropUser")[-1]["param"] == {"user": "n1", "db": "clinic"}


def test_roles_info_lists_builtin_roles_on_request(state: InProcessServer) -> None:
    admin = Client(state).as_user("root", "admin")
    assert admin.run("clinic", {"rolesInfo": 1})["roles"] == []
    listed = admin.run("clinic", {"rolesInfo": 1, "showBuiltinRoles": True})["roles"]
    assert [r["role"] for r in listed] == ["dbAdmin", "dbOwner", "read", "readWrite", "userAdmin"]
    one = admin.run(
        "admin", {"rolesInfo": {"role": "root", "db": "admin"}, "showPrivileges": True}
    )["roles"][0]
    assert one["isBuiltin"] is True and one["privileges"]
    assert admin.run("clinic", {"rolesInfo": "nope"})["roles"] == []


def test_change_that_cannot_be_audited_is_not_made(state: InProcessServer) -> None:
    admin = Client(state).as_user("root", "admin")

    # The audit file is removed from under the server: the real FileSink sees it is no
    # longer the file it opened, so no event can land and the audit log fails closed.
    state.audit.path.unlink()
    reply = admin.run("clinic", {"createUser": "late", "pwd": PASSWORD, "roles": ["read"]})
    assert reply["code"] == 1
    assert "the audit log could not be written" in reply["errmsg"]
    assert state.audit.log.failure is not None
    assert UserStore(state.engine).get("clinic", "late") is None
    assert admin.run("admin", {"dropUser": "root"})["code"] == 1
    assert UserStore(state.engine).get("admin", "root") is not None

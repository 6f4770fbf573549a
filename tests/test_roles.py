"""Built-in roles: which privileges each grants, where each exists, and how a user
document becomes an authenticated user."""

from __future__ import annotations

import pytest

from phidb.errors import MongoError
from phidb.security.authz.privileges import on_cluster, on_database, on_namespace
from phidb.security.authz.roles import (
    authenticated_user,
    builtin_role_names,
    parse_roles,
    role_info,
    role_privileges,
)
from phidb.security.authz.session import AuthorizationSession


def session_with(*roles: tuple[str, str]) -> AuthorizationSession:
    session = AuthorizationSession()
    doc = {"user": "u", "db": "admin", "roles": [{"role": r, "db": d} for r, d in roles]}
    session.add_user(authenticated_user(doc))
    return session


def test_read_role_can_find_but_not_insert() -> None:
    s = session_with(("read", "clinic"))
    assert s.is_authorized([on_namespace("clinic", "patients", "find")])
    assert s.is_authorized([on_database("clinic", "listCollections")])
    assert not s.is_authorized([on_namespace("clinic", "patients", "insert")])
    assert not s.is_authorized([on_namespace("other", "patients", "find")])


def test_read_role_cannot_read_system_users() -> None:
    s = session_with(("read", "admin"))
    assert not s.is_authorized([on_namespace("admin", "system.users", "find")])
    assert s.is_authorized([on_namespace("admin", "system.js", "find")])


def test_read_write_role_writes_only_its_database() -> None:
    s = session_with(("readWrite", "clinic"))
    for action in ("insert", "update", "remove", "createIndex", "dropCollection"):
        assert s.is_authorized([on_namespace("clinic", "c", action)]), action
    assert not s.is_authorized([on_namespace("billing", "c", "insert")])
    assert not s.is_authorized([on_database("clinic", "dropDatabase")])
    assert not s.is_authorized([on_database("clinic", "createUser")])


def test_db_owner_combines_read_write_db_admin_and_user_admin() -> None:
    s = session_with(("dbOwner", "clinic"))
    assert s.is_authorized(
        [
            on_namespace("clinic", "c", "insert"),
            on_database("clinic", "dropDatabase"),
            on_database("clinic", "createUser"),
            on_namespace("clinic", "system.profile", "find"),
        ]
    )
    assert not s.is_authorized([on_database("other", "createUser")])


def test_user_admin_manages_users_but_reads_no_data() -> None:
    s = session_with(("userAdmin", "clinic"))
    assert s.is_authorized(
        [on_database("clinic", "createUser"), on_database("clinic", "grantRole")]
    )
    assert not s.is_authorized([on_namespace("clinic", "patients", "find")])


def test_any_database_roles_span_databases_and_list_them() -> None:
    s = session_with(("readAnyDatabase", "admin"))
    assert s.is_authorized([on_namespace("a", "x", "find"), on_namespace("b", "y", "find")])
    assert s.is_authorized([on_cluster("listDatabases")])
    assert not s.is_authorized([on_namespace("a", "x", "insert")])
    u = session_with(("userAdminAnyDatabase", "admin"))
    assert u.is_authorized([on_database("anydb", "viewUser"), on_database("x", "createUser")])
    assert not u.is_authorized([on_namespace("anydb", "c", "find")])


def test_cluster_monitor_reads_server_status_not_data() -> None:
    s = session_with(("clusterMonitor", "admin"))
    assert s.is_authorized([on_cluster("serverStatus"), on_cluster("getCmdLineOpts")])
    assert not s.is_authorized([on_namespace("clinic", "patients", "find")])
    assert not s.is_authorized([on_cluster("shutdown")])


def test_root_may_do_everything_phidb_asks_for() -> None:
    s = session_with(("root", "admin"))
    assert s.is_authorized(
        [
            on_namespace("clinic", "patients", "insert"),
            on_database("clinic", "dropDatabase"),
            on_database("clinic", "createUser"),
            on_namespace("admin", "system.users", "find"),
            on_cluster("serverStatus"),
            on_cluster("shutdown"),
            on_cluster("listDatabases"),
        ]
    )


@pytest.mark.parametrize(
    "role",
    [
        "readAnyDatabase",
        "readWriteAnyDatabase",
        "userAdminAnyDatabase",
        "dbAdminAnyDatabase",
        "clusterMonitor",
        "root",
    ],
)
def test_admin_only_roles_do_not_exist_elsewhere(role: str) -> None:
    with pytest.raises(MongoError) as err:
        role_privileges(role, "clinic")
    assert err.value.code == 31
    assert err.value.message == f"Could not find role: {role}@clinic"
    assert role_privileges(role, "admin")


def test_unknown_role_is_role_not_found() -> None:
    with pytest.raises(MongoError) as err:
        role_privileges("foo", "db")
    assert (err.value.code, err.value.code_name, err.value.message) == (
        31,
        "RoleNotFound",
        "Could not find role: foo@db",
    )


def test_role_strings_name_roles_of_the_current_database() -> None:
    assert parse_roles(["read", {"role": "root", "db": "admin"}, "read"], "clinic") == [
        {"role": "read", "db": "clinic"},
        {"role": "root", "db": "admin"},
    ]
    with pytest.raises(MongoError) as err:
        parse_roles([{"role": "read"}], "clinic")
    assert err.value.code == 2
    with pytest.raises(MongoError) as err2:
        parse_roles("read", "clinic")
    assert err2.value.code == 2


def test_authenticated_user_holds_the_union_of_its_roles() -> None:
    user = authenticated_user(
        {
            "user": "nurse",
            "db": "clinic",
            "roles": [{"role": "read", "db": "clinic"}, {"role": "read", "db": "lab"}],
        }
    )
    assert (user.user, user.db) == ("nurse", "clinic")
    assert user.roles == [{"role": "read", "db": "clinic"}, {"role": "read", "db": "lab"}]
    dbs = {p.resource.db for p in user.privileges}
    assert dbs == {"clinic", "lab"}


def test_roles_info_entry_shape() -> None:
    info = role_info("read", "clinic", show_privileges=True)
    assert {k: info[k] for k in ("role", "db", "isBuiltin", "roles", "inheritedRoles")} == {
        "role": "read",
        "db": "clinic",
        "isBuiltin": True,
        "roles": [],
        "inheritedRoles": [],
    }
    first = info["privileges"][0]
    assert first["resource"] == {"db": "clinic", "collection": ""}
    assert "find" in first["actions"] and "insert" not in first["actions"]
    assert "privileges" not in role_info("read", "clinic", show_privileges=False)


def test_builtin_role_names_per_database() -> None:
    assert builtin_role_names("clinic") == ["dbAdmin", "dbOwner", "read", "readWrite", "userAdmin"]
    assert "root" in builtin_role_names("admin")

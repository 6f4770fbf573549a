"""MongoDB's built-in roles and the privileges each grants, and how a user document's
roles become the privileges of an `AuthenticatedUser`.

The action lists follow the manual's "Built-In Roles" page. Built-in roles inherit no
other roles: each one's privileges are listed flat, which is how `rolesInfo` shows them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from phidb.errors import BAD_VALUE, ROLE_NOT_FOUND, MongoError
from phidb.security.authz.privileges import Privilege, Resource, on_cluster, on_namespace
from phidb.security.authz.session import AuthenticatedUser

RoleName = dict[str, str]  # {role, db}

READ = frozenset(
    {
        "changeStream", "collStats", "dbHash", "dbStats", "find", "killCursors",
        "listCollections", "listIndexes", "listSearchIndexes",
    }
)  # fmt: skip
READ_SYSTEM_JS = READ - {"changeStream", "listSearchIndexes"}
WRITE = frozenset(
    {
        "convertToCapped", "createCollection", "createIndex", "createSearchIndexes",
        "dropCollection", "dropIndex", "dropSearchIndex", "insert", "remove",
        "renameCollectionSameDB", "update", "updateSearchIndex",
    }
)  # fmt: skip
READ_WRITE = READ | WRITE
READ_WRITE_SYSTEM_JS = READ_SYSTEM_JS | (WRITE - {"createSearchIndexes", "dropSearchIndex"})
DB_ADMIN = frozenset(
    {
        "bypassDocumentValidation", "collMod", "collStats", "compact", "convertToCapped",
        "createCollection", "createIndex", "dbStats", "dropCollection", "dropDatabase",
        "dropIndex", "enableProfiler", "listCollections", "listIndexes", "listSearchIndexes",
        "planCacheIndexFilter", "planCacheRead", "planCacheWrite", "reIndex",
        "renameCollectionSameDB", "storageDetails", "validate",
    }
)  # fmt: skip
DB_ADMIN_PROFILE = frozenset(
    {
        "changeStream", "collStats", "convertToCapped", "createCollection", "dbHash",
        "dbStats", "dropCollection", "find", "killCursors", "listCollections", "listIndexes",
        "planCacheRead",
    }
)  # fmt: skip
USER_ADMIN = frozenset(
    {
        "changeCustomData", "changePassword", "createRole", "createUser", "dropRole",
        "dropUser", "grantRole", "revokeRole", "setAuthenticationRestriction", "viewRole",
        "viewUser",
    }
)  # fmt: skip
READ_SYSTEM = frozenset({"collStats", "dbHash", "dbStats", "find", "killCursors", "planCacheRead"})
CLUSTER_MONITOR = frozenset(
    {
        "checkFreeMonitoringStatus", "connPoolStats", "getClusterParameter",
        "getCmdLineOpts", "getDefaultRWConcern", "getLog", "getParameter", "getShardMap",
        "hostInfo", "inprog", "listDatabases", "listSessions", "listShards", "netstat",
        "operationMetrics", "replSetGetConfig", "replSetGetStatus", "serverStatus",
        "setFreeMonitoring", "shardingState", "top",
    }
)  # fmt: skip
CLUSTER_MONITOR_DB = frozenset({"collStats", "dbStats", "getShardVersion", "indexStats", "useUUID"})
# clusterManager and hostManager's cluster actions, which root holds through clusterAdmin.
CLUSTER_ADMIN = CLUSTER_MONITOR | frozenset(
    {
        "addShard", "appendOplogNote", "applicationMessage", "authSchemaUpgrade",
        "cleanupOrphaned", "closeAllDatabases", "connPoolSync", "cpuProfiler",
        "dropConnections", "flushRouterConfig", "fsync", "invalidateUserCache",
        "killAnyCursor", "killAnySession", "killop", "logRotate", "removeShard",
        "replSetConfigure", "replSetStateChange", "resync", "rotateCertificates",
        "setClusterParameter", "setDefaultRWConcern", "setFeatureCompatibilityVersion",
        "setParameter", "shutdown", "touch", "unlock",
    }
)  # fmt: skip
# What backup and restore give root on the collections that hold users and roles.
SYSTEM_RESTORE = READ_SYSTEM | frozenset(
    {
        "convertToCapped", "createCollection", "createIndex", "dropCollection", "dropIndex",
        "insert", "listCollections", "listIndexes", "remove", "update", "validate",
    }
)  # fmt: skip


def _ns(db: str, collection: str, actions: Iterable[str]) -> Privilege:
    return on_namespace(db, collection, *actions)


def _read(db: str) -> list[Privilege]:
    return [_ns(db, "", READ), _ns(db, "system.js", READ_SYSTEM_JS)]


def _read_write(db: str) -> list[Privilege]:
    return [_ns(db, "", READ_WRITE), _ns(db, "system.js", READ_WRITE_SYSTEM_JS)]


def _db_admin(db: str) -> list[Privilege]:
    return [_ns(db, "system.profile", DB_ADMIN_PROFILE), _ns(db, "", DB_ADMIN)]


def _user_admin(db: str) -> list[Privilege]:
    return [_ns(db, "", USER_ADMIN)]


def _user_admin_any(_db: str) -> list[Privilege]:
    return [
        *_user_admin(""),
        on_cluster("authSchemaUpgrade", "invalidateUserCache", "listDatabases"),
        _ns("admin", "system.users", READ_SYSTEM | {"createIndex", "dropIndex"}),
        _ns("admin", "system.roles", READ_SYSTEM | {"createIndex", "dropIndex"}),
        _ns("admin", "system.version", READ_SYSTEM),
    ]


def _cluster_monitor(_db: str) -> list[Privilege]:
    local_config = READ_SYSTEM | {"getDatabaseVersion", "getShardVersion", "indexStats"}
    return [
        on_cluster(*CLUSTER_MONITOR),
        _ns("", "", CLUSTER_MONITOR_DB),
        _ns("", "system.profile", {"find"}),
        _ns("local", "", local_config | {"listCollections", "listIndexes"}),
        _ns("config", "", local_config | {"listCollections", "listIndexes"}),
    ]


def _root(_db: str) -> list[Privilege]:
    privileges = [
        *_read_write(""),
        *_db_admin(""),
        *_user_admin_any(""),
        on_cluster(*CLUSTER_ADMIN),
        _ns("", "", {"killCursors", "repairDatabase", "dropDatabase"}),
        _ns("", "system.profile", SYSTEM_RESTORE),
        _ns("", "system.js", SYSTEM_RESTORE),
    ]
    for collection in ("system.users", "system.roles", "system.version"):
        privileges.append(_ns("admin", collection, SYSTEM_RESTORE))
    return merge_privileges(privileges)


def _any(per_db: Callable[[str], list[Privilege]]) -> Callable[[str], list[Privilege]]:
    """The `*AnyDatabase` form of a database role: the same grants on every database."""
    return lambda _db: [*per_db(""), on_cluster("listDatabases")]


@dataclass(frozen=True)
class BuiltinRole:
    name: str
    privileges: Callable[[str], list[Privilege]]
    admin_only: bool = False


def _db_owner(db: str) -> list[Privilege]:
    return merge_privileges([*_read_write(db), *_db_admin(db), *_user_admin(db)])


BUILTIN_ROLES: dict[str, BuiltinRole] = {
    r.name: r
    for r in (
        BuiltinRole("read", _read),
        BuiltinRole("readWrite", _read_write),
        BuiltinRole("dbAdmin", _db_admin),
        BuiltinRole("userAdmin", _user_admin),
        BuiltinRole("dbOwner", _db_owner),
        BuiltinRole("readAnyDatabase", _any(_read), admin_only=True),
        BuiltinRole("readWriteAnyDatabase", _any(_read_write), admin_only=True),
        BuiltinRole("userAdminAnyDatabase", _user_admin_any, admin_only=True),
        BuiltinRole("dbAdminAnyDatabase", _any(_db_admin), admin_only=True),
        BuiltinRole("clusterMonitor", _cluster_monitor, admin_only=True),
        BuiltinRole("root", _root, admin_only=True),
    )
}


def merge_privileges(privileges: Iterable[Privilege]) -> list[Privilege]:
    """One privilege per resource, with the union of its actions, in first-seen order."""
    merged: dict[Resource, set[str]] = {}
    for p in privileges:
        merged.setdefault(p.resource, set()).update(p.actions)
    return [Privilege(resource, frozenset(actions)) for resource, actions in merged.items()]


def role_not_found(role: str, db: str) -> MongoError:
    return MongoError(ROLE_NOT_FOUND, f"Could not find role: {role}@{db}")


def find_role(role: str, db: str) -> BuiltinRole | None:
    """The built-in role `role@db`, or None (admin-only roles exist only on admin)."""
    spec = BUILTIN_ROLES.get(role)
    if spec is None or (spec.admin_only and db != "admin"):
        return None
    return spec


def builtin_role_names(db: str) -> list[str]:
    return sorted(name for name in BUILTIN_ROLES if find_role(name, db) is not None)


def role_privileges(role: str, db: str) -> list[Privilege]:
    """The privileges `role@db` grants; RoleNotFound (31) if no such role."""
    spec = find_role(role, db)
    if spec is None:
        raise role_not_found(role, db)
    return spec.privileges(db)


def check_roles_exist(roles: Iterable[RoleName]) -> None:
    for r in roles:
        if find_role(r["role"], r["db"]) is None:
            raise role_not_found(r["role"], r["db"])


def parse_roles(value: Any, default_db: str, field: str = "roles") -> list[RoleName]:
    """A `roles` argument as `[{role, db}]`: a bare string names a role of `default_db`."""
    if not isinstance(value, list):
        raise MongoError(BAD_VALUE, f'"{field}" field must be an array')
    roles: list[RoleName] = []
    for item in value:
        if isinstance(item, str):
            name = {"role": item, "db": default_db}
        elif (
            isinstance(item, dict)
            and isinstance(item.get("role"), str)
            and isinstance(item.get("db"), str)
        ):
            name = {"role": item["role"], "db": item["db"]}
        else:
            raise MongoError(
                BAD_VALUE, "Role names must be either strings or objects with role and db fields"
            )
        if name not in roles:
            roles.append(name)
    return roles


def authenticated_user(user_doc: dict[str, Any]) -> AuthenticatedUser:
    """The identity and privileges of a stored user, for `AuthorizationSession.add_user`.

    A role the user holds that no longer resolves grants nothing (MongoDB does the same).
    """
    roles = [{"role": r["role"], "db": r["db"]} for r in user_doc.get("roles", [])]
    grants: list[Privilege] = []
    for r in roles:
        spec = find_role(r["role"], r["db"])
        if spec is not None:
            grants.extend(spec.privileges(r["db"]))
    return AuthenticatedUser(
        user=user_doc["user"], db=user_doc["db"], roles=roles, privileges=merge_privileges(grants)
    )


def role_info(role: str, db: str, show_privileges: bool) -> dict[str, Any]:
    """One entry of `rolesInfo`'s `roles` for a built-in role."""
    info: dict[str, Any] = {
        "_id": f"{db}.{role}",
        "role": role,
        "db": db,
        "isBuiltin": True,
        "roles": [],
        "inheritedRoles": [],
    }
    if show_privileges:
        docs = [p.to_doc() for p in role_privileges(role, db)]
        info["privileges"] = docs
        info["inheritedPrivileges"] = [dict(d) for d in docs]
    return info

"""User management: createUser, updateUser, dropUser, usersInfo, grantRolesToUser,
revokeRolesFromUser and rolesInfo, with the privileges MongoDB requires for each.

Passwords become SCRAM credentials here and go no further: no reply, log line or
audit event carries one. Each change is audited after it is validated and before it
is stored, so a change the audit log could not record never happens.
"""

from __future__ import annotations

import uuid
from typing import Any

from bson.binary import Binary, UuidRepresentation

from phidb.commands.context import Context
from phidb.commands.namespaces import wrong_type
from phidb.commands.registry import command
from phidb.errors import BAD_VALUE, USER_NOT_FOUND, MongoError
from phidb.security.audit.events import user_param
from phidb.security.auth.credentials import SCRAM_MECHANISMS, make_credentials
from phidb.security.auth.users import UserDoc, UserStore, user_exists_error, user_id
from phidb.security.authz.privileges import (
    Privilege,
    Resource,
    authenticated_only,
    on_database,
)
from phidb.security.authz.roles import (
    RoleName,
    authenticated_user,
    builtin_role_names,
    check_roles_exist,
    parse_roles,
    role_info,
)

Document = dict[str, Any]
EXTERNAL_DB = "$external"


def user_not_found(user: str, db: str) -> MongoError:
    return MongoError(USER_NOT_FOUND, f"User '{user}@{db}' not found")


def _name_arg(cmd: Document, field: str) -> str:
    name = cmd.get(field)
    if not isinstance(name, str) or not name:
        raise MongoError(BAD_VALUE, f"{field} must be a non-empty string")
    return name


def _roles_or_empty(cmd: Document, db: str, field: str = "roles") -> list[RoleName]:
    """Roles named by the command, for privilege checks ([] if malformed: the handler
    then rejects the command itself)."""
    try:
        return parse_roles(cmd.get(field, []), db, field)
    except MongoError:
        return []


def _grant_privileges(roles: list[RoleName], action: str) -> list[Privilege]:
    return [on_database(db, action) for db in sorted({r["db"] for r in roles})]


def _is_self(ctx: Context, user: str, db: str) -> bool:
    return any(u.user == user and u.db == db for u in ctx.conn.auth.users)


def _own_or_any(ctx: Context, db: str, any_action: str, own_action: str, own: bool) -> Privilege:
    """`changePassword` on the database, or `changeOwnPassword` when a user changes
    their own and holds only that (the same for custom data)."""
    general = on_database(db, any_action)
    if own and not ctx.conn.auth.is_authorized([general]):
        return on_database(db, own_action)
    return general


def _mechanisms(cmd: Document, default: list[str]) -> list[str]:
    value = cmd.get("mechanisms")
    if value is None:
        return list(default)
    if not isinstance(value, list) or not value:
        raise MongoError(BAD_VALUE, "mechanisms field must not be empty")
    for m in value:
        if m not in SCRAM_MECHANISMS:
            raise MongoError(BAD_VALUE, f"Unknown auth mechanism '{m}'")
    return [m for m in SCRAM_MECHANISMS if m in value]


def _password(cmd: Document, db: str, command: str) -> str | None:
    if "pwd" not in cmd:
        return None
    pwd = cmd["pwd"]
    if not isinstance(pwd, str):
        raise wrong_type(command, "pwd", pwd, "string")
    if db == EXTERNAL_DB:
        raise MongoError(BAD_VALUE, "Cannot set a password for users in the $external database")
    if cmd.get("digestPassword", True) is not True:
        raise MongoError(
            BAD_VALUE,
            "Use of SCRAM-SHA-256 requires undigested passwords; phidb digests on the server",
        )
    if not pwd:
        raise MongoError(BAD_VALUE, "User passwords must not be empty")
    return pwd


def _custom_data(cmd: Document) -> Document | None:
    value = cmd.get("customData")
    if value is not None and not isinstance(value, dict):
        raise MongoError(BAD_VALUE, "customData must be an object")
    return value


# -- createUser -------------------------------------------------------------


def _create_user_privileges(ctx: Context, cmd: Document) -> list[Privilege]:
    return [
        on_database(ctx.db, "createUser"),
        *_grant_privileges(_roles_or_empty(cmd, ctx.db), "grantRole"),
    ]


@command("createUser", privileges=_create_user_privileges)
def create_user(ctx: Context, cmd: Document) -> Document:
    name = _name_arg(cmd, "createUser")
    db = ctx.db
    if db == "local":
        raise MongoError(BAD_VALUE, "Cannot create users in the local database")
    if "\0" in name:
        raise MongoError(BAD_VALUE, "Username cannot contain NULL characters")
    pwd = _password(cmd, db, "createUser")
    if pwd is None and db != EXTERNAL_DB:
        raise MongoError(
            BAD_VALUE,
            "Must provide a 'pwd' field for all user documents, except those with '$external'"
            " as the user's source db",
        )
    if "roles" not in cmd:
        raise MongoError(BAD_VALUE, '"createUser" command requires a "roles" array')
    roles = parse_roles(cmd["roles"], db)
    check_roles_exist(roles)
    mechanisms = _mechanisms(cmd, list(SCRAM_MECHANISMS)) if pwd is not None else []
    custom_data = _custom_data(cmd)

    store = UserStore(ctx.engine)
    if store.get(db, name) is not None:
        raise user_exists_error(db, name)
    doc: UserDoc = {
        "_id": user_id(db, name),
        "userId": Binary.from_uuid(uuid.uuid4(), UuidRepresentation.STANDARD),
        "user": name,
        "db": db,
        "credentials": make_credentials(name, pwd, mechanisms) if pwd is not None else {},
        "roles": roles,
        "mechanisms": mechanisms,
    }
    if custom_data is not None:
        doc["customData"] = custom_data
    ctx.audit("createUser", user_param(name, db, roles))  # before the change: see module doc
    store.insert(doc)
    return {}


# -- updateUser -------------------------------------------------------------


def _update_user_privileges(ctx: Context, cmd: Document) -> list[Privilege]:
    name = cmd.get("updateUser")
    own = isinstance(name, str) and _is_self(ctx, name, ctx.db)
    required: list[Privilege] = []
    if "pwd" in cmd or "mechanisms" in cmd:
        required.append(_own_or_any(ctx, ctx.db, "changePassword", "changeOwnPassword", own))
    if "customData" in cmd:
        required.append(_own_or_any(ctx, ctx.db, "changeCustomData", "changeOwnCustomData", own))
    if "roles" in cmd:
        current = UserStore(ctx.engine).get(ctx.db, name) if isinstance(name, str) else None
        required += _grant_privileges(_roles_or_empty(cmd, ctx.db), "grantRole")
        required += _grant_privileges(list((current or {}).get("roles", [])), "revokeRole")
    # Nothing to change still needs the right to change something, never nothing.
    return required or [on_database(ctx.db, "changePassword")]


@command("updateUser", privileges=_update_user_privileges)
def update_user(ctx: Context, cmd: Document) -> Document:
    name = _name_arg(cmd, "updateUser")
    db = ctx.db
    if not any(f in cmd for f in ("pwd", "roles", "customData", "mechanisms")):
        raise MongoError(BAD_VALUE, "Must specify at least one field to update in updateUser")
    pwd = _password(cmd, db, "updateUser")
    roles = parse_roles(cmd["roles"], db) if "roles" in cmd else None
    if roles is not None:
        check_roles_exist(roles)
    custom_data = _custom_data(cmd)

    store = UserStore(ctx.engine)
    doc = store.get(db, name)
    if doc is None:
        raise user_not_found(name, db)
    current_mechs = list(doc.get("mechanisms") or list(doc.get("credentials", {})))
    if pwd is not None:
        mechanisms = _mechanisms(cmd, current_mechs or list(SCRAM_MECHANISMS))
        doc["credentials"] = make_credentials(name, pwd, mechanisms)
        doc["mechanisms"] = mechanisms
    elif "mechanisms" in cmd:
        mechanisms = _mechanisms(cmd, current_mechs)
        if not set(mechanisms) <= set(current_mechs):
            raise MongoError(
                BAD_VALUE, "mechanisms field must be a subset of previously set mechanisms"
            )
        doc["credentials"] = {m: doc["credentials"][m] for m in mechanisms}
        doc["mechanisms"] = mechanisms
    if roles is not None:
        doc["roles"] = roles
    if custom_data is not None:
        doc["customData"] = custom_data

    param = user_param(name, db, doc["roles"])
    param["passwordChanged"] = pwd is not None
    ctx.audit("updateUser", param)
    if not store.replace(doc):
        raise user_not_found(name, db)
    return {}


# -- dropUser ---------------------------------------------------------------


@command("dropUser", privileges=lambda ctx, cmd: [on_database(ctx.db, "dropUser")])
def drop_user(ctx: Context, cmd: Document) -> Document:
    """Connections logged in as the user lose its privileges at their next command
    (the dispatcher re-reads changed users)."""
    name = _name_arg(cmd, "dropUser")
    store = UserStore(ctx.engine)
    if store.get(ctx.db, name) is None:
        raise user_not_found(name, ctx.db)
    ctx.audit("dropUser", {"user": name, "db": ctx.db})
    if not store.delete(ctx.db, name):
        raise user_not_found(name, ctx.db)
    return {}


# -- grantRolesToUser / revokeRolesFromUser ---------------------------------


def _change_roles(ctx: Context, cmd: Document, field: str, grant: bool) -> Document:
    name = _name_arg(cmd, field)
    if "roles" not in cmd:
        raise MongoError(BAD_VALUE, f'"{field}" command requires a "roles" array')
    roles = parse_roles(cmd["roles"], ctx.db)
    check_roles_exist(roles)
    store = UserStore(ctx.engine)
    doc = store.get(ctx.db, name)
    if doc is None:
        raise user_not_found(name, ctx.db)

    held: list[RoleName] = [{"role": r["role"], "db": r["db"]} for r in doc.get("roles", [])]
    if grant:
        doc["roles"] = held + [r for r in roles if r not in held]
    else:
        doc["roles"] = [r for r in held if r not in roles]
    ctx.audit(field, user_param(name, ctx.db, roles))
    if not store.replace(doc):
        raise user_not_found(name, ctx.db)
    return {}


@command(
    "grantRolesToUser",
    privileges=lambda ctx, cmd: (
        _grant_privileges(_roles_or_empty(cmd, ctx.db), "grantRole")
        or [on_database(ctx.db, "grantRole")]
    ),
)
def grant_roles_to_user(ctx: Context, cmd: Document) -> Document:
    return _change_roles(ctx, cmd, "grantRolesToUser", grant=True)


@command(
    "revokeRolesFromUser",
    privileges=lambda ctx, cmd: (
        _grant_privileges(_roles_or_empty(cmd, ctx.db), "revokeRole")
        or [on_database(ctx.db, "revokeRole")]
    ),
)
def revoke_roles_from_user(ctx: Context, cmd: Document) -> Document:
    return _change_roles(ctx, cmd, "revokeRolesFromUser", grant=False)


# -- usersInfo --------------------------------------------------------------


def _users_info_targets(ctx: Context, cmd: Document) -> list[dict[str, str]] | None:
    """The users named by `usersInfo` as [{user, db}], or None for "every user of the
    database" (`usersInfo: 1`)."""
    value = cmd.get("usersInfo")
    if isinstance(value, dict) and "forAllDBs" not in value:
        value = [value]
    if isinstance(value, str):
        return [{"user": value, "db": ctx.db}]
    if isinstance(value, list):
        targets = []
        for item in value:
            if isinstance(item, str):
                targets.append({"user": item, "db": ctx.db})
            elif (
                isinstance(item, dict)
                and isinstance(item.get("user"), str)
                and isinstance(item.get("db"), str)
            ):
                targets.append({"user": item["user"], "db": item["db"]})
            else:
                raise MongoError(
                    BAD_VALUE,
                    "User name must be either a string or an object with user and db fields",
                )
        return targets
    if isinstance(value, int | float) and not isinstance(value, bool) and value == 1:
        return None
    if isinstance(value, dict):
        return None  # forAllDBs
    raise MongoError(BAD_VALUE, "usersInfo must be 1, a user name, a document or an array")


def _for_all_dbs(cmd: Document) -> bool:
    value = cmd.get("usersInfo")
    return isinstance(value, dict) and value.get("forAllDBs") is True


def _users_info_privileges(ctx: Context, cmd: Document) -> list[Privilege]:
    if _for_all_dbs(cmd):
        return [Privilege(Resource(), frozenset({"viewUser"}))]
    try:
        targets = _users_info_targets(ctx, cmd)
    except MongoError:
        return [on_database(ctx.db, "viewUser")]
    if targets is None:
        return [on_database(ctx.db, "viewUser")]
    if targets and all(_is_self(ctx, t["user"], t["db"]) for t in targets):
        return [authenticated_only()]  # MongoDB lets a user view themselves
    return [on_database(db, "viewUser") for db in sorted({t["db"] for t in targets})]


@command("usersInfo", privileges=_users_info_privileges)
def users_info(ctx: Context, cmd: Document) -> Document:
    """Limitation: the `filter` option is not supported (BadValue)."""
    if "filter" in cmd:
        raise MongoError(BAD_VALUE, "usersInfo's filter option is not supported by phidb")
    store = UserStore(ctx.engine)
    if _for_all_dbs(cmd):
        docs = store.list()
    else:
        targets = _users_info_targets(ctx, cmd)
        if targets is None:
            docs = store.list(ctx.db)
        else:
            found = (store.get(t["db"], t["user"]) for t in targets)
            docs = [d for d in found if d is not None]
    show_credentials = cmd.get("showCredentials") is True
    show_privileges = cmd.get("showPrivileges") is True
    show_custom_data = cmd.get("showCustomData", True) is not False
    return {
        "users": [_user_info(d, show_credentials, show_privileges, show_custom_data) for d in docs]
    }


def _user_info(
    doc: UserDoc, show_credentials: bool, show_privileges: bool, show_custom_data: bool
) -> Document:
    roles = [{"role": r["role"], "db": r["db"]} for r in doc.get("roles", [])]
    credentials = doc.get("credentials") or {}
    info: Document = {
        "_id": doc["_id"],
        "userId": doc.get("userId"),
        "user": doc["user"],
        "db": doc["db"],
        "roles": roles,
        "mechanisms": list(
            doc.get("mechanisms") or [m for m in SCRAM_MECHANISMS if m in credentials]
        ),
    }
    if show_custom_data and "customData" in doc:
        info["customData"] = doc["customData"]
    if show_credentials:
        # Only the SCRAM keys, exactly as stored; nothing else is a credential here.
        info["credentials"] = {
            m: dict(credentials[m]) for m in SCRAM_MECHANISMS if m in credentials
        }
    if show_privileges:
        user = authenticated_user(doc)
        info["inheritedRoles"] = [dict(r) for r in roles]
        info["inheritedPrivileges"] = [p.to_doc() for p in user.privileges]
    return info


# -- rolesInfo --------------------------------------------------------------


def _roles_info_targets(ctx: Context, cmd: Document) -> list[RoleName] | None:
    value = cmd.get("rolesInfo")
    if isinstance(value, int | float) and not isinstance(value, bool) and value == 1:
        return None
    if isinstance(value, str | dict):
        value = [value]
    return parse_roles(value, ctx.db, "rolesInfo")


def _roles_info_privileges(ctx: Context, cmd: Document) -> list[Privilege]:
    try:
        targets = _roles_info_targets(ctx, cmd)
    except MongoError:
        return [on_database(ctx.db, "viewRole")]
    if targets is None:
        return [on_database(ctx.db, "viewRole")]
    held = ctx.conn.auth.role_names()
    if targets and all(t in held for t in targets):
        return [authenticated_only()]  # a user may view the roles they hold
    return [on_database(db, "viewRole") for db in sorted({t["db"] for t in targets})]


@command("rolesInfo", privileges=_roles_info_privileges)
def roles_info(ctx: Context, cmd: Document) -> Document:
    """phidb has only built-in roles: a named role that is not one is left out of the
    reply (as MongoDB leaves out unknown roles), and `rolesInfo: 1` lists the built-in
    roles only with `showBuiltinRoles: true`."""
    show_privileges = cmd.get("showPrivileges") is True
    targets = _roles_info_targets(ctx, cmd)
    if targets is None:
        names = builtin_role_names(ctx.db) if cmd.get("showBuiltinRoles") is True else []
        targets = [{"role": n, "db": ctx.db} for n in names]
    roles = []
    for t in targets:
        try:
            check_roles_exist([t])
        except MongoError:
            continue
        roles.append(role_info(t["role"], t["db"], show_privileges))
    return {"roles": roles}

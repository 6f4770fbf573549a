"""The dispatcher: the one place that decides whether a command may run.

For each request it finds the command in the table, checks authentication and
the privileges the command declares (deny by default), records `authCheck`
failures in the audit log, applies `maxTimeMS`, runs the handler and turns any
`MongoError` into MongoDB's error reply. It runs in a worker thread.
"""

from __future__ import annotations

import logging
from typing import Any

from phidb.commands.context import Connection, Context, ServerState
from phidb.commands.registry import GENERIC_FIELDS, CommandSpec, lookup
from phidb.errors import (
    BAD_VALUE,
    COMMAND_NOT_FOUND,
    ILLEGAL_OPERATION,
    UNAUTHORIZED,
    MongoError,
)
from phidb.storage.engine import NO_DEADLINE, Deadline

log = logging.getLogger("phidb.dispatch")

Document = dict[str, Any]


class FatalServerError(Exception):
    """The server must stop serving (for example: the audit log cannot be written)."""


def dispatch(server: ServerState, conn: Connection, cmd: Document, db: str) -> Document:
    """Run one command and return its reply document (never raises MongoError)."""
    try:
        return _dispatch(server, conn, cmd, db)
    except MongoError as exc:
        if server.fatal_error:
            raise FatalServerError(server.fatal_error) from None
        return exc.to_reply()
    except FatalServerError:
        raise
    except Exception as exc:  # noqa: BLE001 - a handler bug must not kill the connection
        # The message of an arbitrary exception may quote document values, so only
        # its type and where it was raised are logged.
        tb = exc.__traceback__
        while tb is not None and tb.tb_next is not None:
            tb = tb.tb_next
        where = f"{tb.tb_frame.f_code.co_filename}:{tb.tb_lineno}" if tb else "?"
        log.error("internal error in command %s: %s at %s", _name(cmd), type(exc).__name__, where)
        if server.fatal_error:
            raise FatalServerError(server.fatal_error) from None
        return MongoError(1, f"internal error while running {_name(cmd)}").to_reply()


def _name(cmd: Document) -> str:
    return next(iter(cmd), "") if cmd else ""


# mongod counts a write command's statements, not the command: inserting three
# documents in one insert adds 3 to opcounters.insert.
_STATEMENT_LISTS = {"insert": "documents", "update": "updates", "delete": "deletes"}


def _operations(spec: CommandSpec, cmd: Document) -> int:
    field = _STATEMENT_LISTS.get(spec.opcounter)
    statements = cmd.get(field) if field is not None else None
    return len(statements) if isinstance(statements, list) else 1


def _dispatch(server: ServerState, conn: Connection, cmd: Document, db: str) -> Document:
    if server.fatal_error:
        raise FatalServerError(server.fatal_error)
    name = _name(cmd)
    spec = lookup(name)
    if spec is None:
        raise MongoError(COMMAND_NOT_FOUND, f"no such command: '{name}'")
    with server.counters.lock:
        server.counters.opcounters[spec.opcounter] += _operations(spec, cmd)

    ctx = Context(server, conn, db)
    _refresh_users(ctx)
    _authorize(ctx, spec, cmd)
    _refuse_transactions(cmd)
    if spec.admin_only and db != "admin":
        raise MongoError(UNAUTHORIZED, f"{spec.name} may only be run against the admin database.")
    ctx.deadline = _deadline(cmd)

    reply = spec.handler(ctx, cmd)
    _journal(ctx, cmd)
    reply["ok"] = 1.0
    return reply


def _refuse_transactions(cmd: Document) -> None:
    """A standalone server has no transactions or retryable writes: refuse their fields
    as MongoDB does, so a client never believes an aborted transaction was rolled back."""
    if "txnNumber" in cmd or "startTransaction" in cmd or "autocommit" in cmd:
        raise MongoError(
            ILLEGAL_OPERATION,
            "Transaction numbers are only allowed on a replica set member or mongos",
        )


def _journal(ctx: Context, cmd: Document) -> None:
    """writeConcern `j: true` (or `fsync: true`): wait until the writes are on disk."""
    concern = cmd.get("writeConcern")
    if isinstance(concern, dict) and (concern.get("j") or concern.get("fsync")):
        ctx.engine.flush()


def _authorize(ctx: Context, spec: CommandSpec, cmd: Document) -> None:
    """Deny by default: raise Unauthorized unless the command may run here."""
    if not ctx.server.config.authorization or not spec.requires_auth:
        return
    auth = ctx.conn.auth
    if not auth.is_authenticated:
        if _localhost_exception(ctx, spec):
            return
        _deny(ctx, spec, cmd, f"Command {spec.name} requires authentication")
    required = spec.privileges(ctx, cmd)
    if not auth.is_authorized(required):
        _deny(
            ctx, spec, cmd, f"not authorized on {ctx.db} to execute command {{ {spec.name}: ... }}"
        )


def _refresh_users(ctx: Context) -> None:
    """Apply user changes (roles granted or revoked, users dropped) to a connection
    that is already logged in, before its next command is authorized."""
    from phidb.security.auth import users
    from phidb.security.authz.roles import authenticated_user

    auth = ctx.conn.auth
    current = users.generation()
    if not auth.users or auth.generation == current:
        return
    store = users.UserStore(ctx.engine)
    fresh = []
    for user in auth.users:
        doc = store.get(user.db, user.user)
        if doc is not None:
            fresh.append(authenticated_user(doc))
    auth.refresh(fresh, current)


def _localhost_exception(ctx: Context, spec: CommandSpec) -> bool:
    """While no user exists, a loopback client may create the first user on admin."""
    if spec.name != "createUser" or ctx.db != "admin" or not ctx.conn.is_loopback:
        return False
    from phidb.security.auth.users import UserStore

    return UserStore(ctx.engine).count() == 0


def _deny(ctx: Context, spec: CommandSpec, cmd: Document, message: str) -> None:
    """Audit the refusal, then refuse.

    MongoDB's authCheck event carries the command's arguments; they may hold
    patient data (a filter on an SSN), so phidb records only the argument names.
    """
    target = cmd.get(spec.name)
    ns = f"{ctx.db}.{target}" if isinstance(target, str) and target else ctx.db
    args = {key: "<redacted>" for key in cmd if key not in GENERIC_FIELDS}
    args[next(iter(cmd))] = target if isinstance(target, str) else "<redacted>"
    ctx.audit("authCheck", {"command": spec.name, "ns": ns, "args": args}, UNAUTHORIZED)
    raise MongoError(UNAUTHORIZED, message)


def _deadline(cmd: Document) -> Deadline:
    value = cmd.get("maxTimeMS")
    if value is None:
        return NO_DEADLINE
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise MongoError(BAD_VALUE, "maxTimeMS must be a number")
    if value < 0 or value > 2**31 - 1:
        raise MongoError(BAD_VALUE, f"{value} value for maxTimeMS is out of range [0, 2147483647]")
    if value != int(value):
        raise MongoError(BAD_VALUE, "maxTimeMS has non-integral value")
    return Deadline(float(value)) if value else NO_DEADLINE

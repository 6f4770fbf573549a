"""The command table: every command, its handler, and the privileges it needs.

A command is registered with `@command(...)`, which requires a `privileges`
function: deny by default means there is no way to register a command without
saying what it needs. The dispatcher consults this table; a command missing
from it is CommandNotFound, never "allowed".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from phidb.commands.context import Context
from phidb.security.authz.privileges import Privilege

Document = dict[str, Any]

# Fields every command may carry that say nothing about what it does.
GENERIC_FIELDS = frozenset(
    {
        "$db",
        "lsid",
        "txnNumber",
        "autocommit",
        "startTransaction",
        "$clusterTime",
        "$readPreference",
        "readConcern",
        "writeConcern",
        "comment",
        "maxTimeMS",
        "apiVersion",
        "apiStrict",
        "apiDeprecationErrors",
        "$audit",
        "$client",
        "$configServerState",
        "$gleStats",
        "$oplogQueryData",
        "$replData",
        "clientOperationKey",
        "mayBypassWriteBlocking",
    }
)
Handler = Callable[[Context, Document], Document]
PrivilegeFn = Callable[[Context, Document], list[Privilege]]


@dataclass(frozen=True)
class CommandSpec:
    name: str
    handler: Handler
    privileges: PrivilegeFn
    # False only for the handshake and login commands a client must run before
    # it has an identity (hello, saslStart, ...). Everything else requires an
    # authenticated user holding every privilege `privileges` returns.
    requires_auth: bool = True
    admin_only: bool = False  # must run against the admin database
    # Which serverStatus opcounter the command bumps ("command" for most).
    opcounter: str = "command"


COMMANDS: dict[str, CommandSpec] = {}
# Lower-cased name -> spec, for the few names MongoDB matches case-insensitively
# (isMaster/ismaster); everything else is exact, as in MongoDB.
_ALIASES: dict[str, CommandSpec] = {}


def command(
    name: str,
    *,
    privileges: PrivilegeFn,
    requires_auth: bool = True,
    admin_only: bool = False,
    aliases: tuple[str, ...] = (),
    opcounter: str = "command",
) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        spec = CommandSpec(name, handler, privileges, requires_auth, admin_only, opcounter)
        for key in (name, *aliases):
            if key in COMMANDS:
                raise RuntimeError(f"command {key} registered twice")
            COMMANDS[key] = spec
        return handler

    return register


def lookup(name: str) -> CommandSpec | None:
    return COMMANDS.get(name) or _ALIASES.get(name.lower())


def no_privileges(ctx: Context, cmd: Document) -> list[Privilege]:
    """For commands with `requires_auth=False` only: they need no privilege."""
    return []

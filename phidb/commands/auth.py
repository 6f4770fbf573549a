"""Logging in and out: saslStart, saslContinue, logout, connectionStatus.

A conversation lives on its connection, keyed by conversationId; a successful one
adds the user to the connection's authorization session. Every attempt is audited.

Limitation: the single-step `authenticate` command (MONGODB-X509) is not implemented,
so it is CommandNotFound and x.509 clients cannot log in.
"""

from __future__ import annotations

import logging
from typing import Any

from bson.binary import Binary

from phidb.commands.context import Context
from phidb.commands.namespaces import require, wrong_type
from phidb.commands.registry import command, no_privileges
from phidb.errors import (
    AUTHENTICATION_FAILED,
    PROTOCOL_ERROR,
    MongoError,
)
from phidb.security.audit.events import authenticate_param, logout_param
from phidb.security.auth.scram import ScramConversation
from phidb.security.auth.users import UserStore
from phidb.security.authz.roles import authenticated_user, merge_privileges

Document = dict[str, Any]

# A client runs one conversation at a time; a few in flight is generous, and the cap
# keeps a connection from holding unbounded half-finished conversations.
MAX_CONVERSATIONS = 8


log = logging.getLogger("phidb.auth")


@command("saslStart", privileges=no_privileges, requires_auth=False)
def sasl_start(ctx: Context, cmd: Document) -> Document:
    mechanism = require(cmd, "saslStart", "mechanism")
    payload = _payload(cmd, "saslStart")
    options = cmd.get("options")
    skip_empty = isinstance(options, dict) and bool(options.get("skipEmptyExchange", False))
    store = UserStore(ctx.engine)
    db = ctx.db
    conversation = ScramConversation(
        str(mechanism), db, lambda name: store.get(db, name), skip_empty
    )

    try:
        server_first = conversation.start(payload)
    except MongoError as exc:
        _audit_attempt(ctx, conversation, exc.code)
        raise

    conversations = ctx.conn.conversations
    while len(conversations) >= MAX_CONVERSATIONS:
        del conversations[min(conversations)]
    cid = ctx.conn.next_conversation_id
    ctx.conn.next_conversation_id += 1
    conversations[cid] = conversation
    return {"conversationId": cid, "done": False, "payload": Binary(server_first)}


@command("saslContinue", privileges=no_privileges, requires_auth=False)
def sasl_continue(ctx: Context, cmd: Document) -> Document:
    cid = require(cmd, "saslContinue", "conversationId")
    payload = _payload(cmd, "saslContinue")
    conversation = ctx.conn.conversations.get(cid) if isinstance(cid, int) else None
    if not isinstance(conversation, ScramConversation):
        raise MongoError(PROTOCOL_ERROR, "No SASL session state found")
    if conversation.db != ctx.db:
        del ctx.conn.conversations[cid]
        raise MongoError(
            PROTOCOL_ERROR, "Attempt to switch database target during SASL authentication."
        )

    try:
        reply_payload = conversation.step(payload)
    except MongoError as exc:
        del ctx.conn.conversations[cid]
        _audit_attempt(ctx, conversation, exc.code)
        raise

    if conversation.done:
        del ctx.conn.conversations[cid]
        _complete(ctx, conversation)
    return {"conversationId": cid, "done": conversation.done, "payload": Binary(reply_payload)}


def _complete(ctx: Context, conversation: ScramConversation) -> None:
    """Make the verified user the connection's identity for its database; cursors
    opened under the previous identity are closed, as MongoDB does on a change of user."""
    assert conversation.user_doc is not None
    auth = ctx.conn.auth
    before = list(auth.users)
    old_owner = auth.owner_key()
    auth.add_user(authenticated_user(conversation.user_doc))
    try:
        _audit_attempt(ctx, conversation, 0)
    except Exception:
        auth.users = before  # not audited, so not logged in
        raise
    if auth.owner_key() != old_owner:
        ctx.server.cursors.close_for(ctx.conn.connection_id, old_owner)


def _audit_attempt(ctx: Context, conversation: ScramConversation, code: int) -> None:
    result = code if code == 0 else AUTHENTICATION_FAILED
    ip, port = ctx.conn.remote
    if result == 0:
        log.info(
            "authenticated %s@%s with %s on connection %d from %s:%d",
            conversation.user, ctx.db, conversation.mechanism, ctx.conn.connection_id, ip, port,
        )  # fmt: skip
    else:
        log.warning(
            "authentication failed for %s@%s with %s on connection %d from %s:%d",
            conversation.user, ctx.db, conversation.mechanism, ctx.conn.connection_id, ip, port,
        )  # fmt: skip
    ctx.audit(
        "authenticate",
        authenticate_param(conversation.user, ctx.db, conversation.mechanism),
        result,
    )


def _payload(cmd: Document, command: str) -> bytes:
    """The required `payload` field: BinData, or a string (base64 in MongoDB's shell,
    the raw message here as pymongo never sends one)."""
    payload = require(cmd, command, "payload")
    if isinstance(payload, bytes):
        return bytes(payload)
    if isinstance(payload, str):
        return payload.encode("utf-8")
    raise wrong_type(command, "payload", payload, "[string, binData]")


@command("logout", privileges=no_privileges, requires_auth=False)
def logout(ctx: Context, cmd: Document) -> Document:
    """Log out the user of this database and close the cursors opened as them."""
    auth = ctx.conn.auth
    initial = auth.user_names()
    old_owner = auth.owner_key()
    removed = auth.logout(ctx.db)
    ctx.audit(
        "logout",
        logout_param(f"Explicit logout from db '{ctx.db}'", initial, auth.user_names()),
        0,
    )
    if removed:
        ctx.server.cursors.close_for(ctx.conn.connection_id, old_owner)
    return {}


@command("connectionStatus", privileges=no_privileges, requires_auth=False)
def connection_status(ctx: Context, cmd: Document) -> Document:
    auth = ctx.conn.auth
    info: Document = {
        "authenticatedUsers": auth.user_names(),
        "authenticatedUserRoles": auth.role_names(),
    }
    if cmd.get("showPrivileges"):
        grants = merge_privileges(p for u in auth.users for p in u.privileges)
        info["authenticatedUserPrivileges"] = [p.to_doc() for p in grants]
    return {"authInfo": info}

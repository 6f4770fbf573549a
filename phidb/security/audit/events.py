"""Audit events in MongoDB's schema, and the `param` shapes of the events phidb emits.

An event is `{atype, ts, uuid, local, remote, users, roles, param, result}`. No event
carries a password, a document or a query value: the helpers here keep only names.
"""

from __future__ import annotations

import base64
import datetime
import json
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

import bson
import bson.json_util
from bson.binary import Binary, UuidRepresentation
from bson.json_util import RELAXED_JSON_OPTIONS

Event = dict[str, Any]
Address = tuple[str, int]

REDACTED = "<redacted>"
# Option names whose values could be secrets; their values never reach the audit log.
_SECRET_WORDS = ("password", "passphrase", "secret", "token", "pwd", "credential")
# Index options that describe the index and carry no data values.
_INDEX_SPEC_FIELDS = (
    "v", "key", "name", "unique", "sparse", "hidden", "expireAfterSeconds", "background",
)  # fmt: skip


def make_event(
    atype: str,
    param: dict[str, Any],
    result: int,
    *,
    local: Address,
    remote: Address,
    users: list[dict[str, str]],
    roles: list[dict[str, str]],
    now: datetime.datetime | None = None,
) -> Event:
    ts = now or datetime.datetime.now(datetime.UTC)
    ts = ts.replace(microsecond=ts.microsecond // 1000 * 1000)  # BSON dates hold milliseconds
    return {
        "atype": atype,
        "ts": ts,
        "uuid": Binary.from_uuid(uuid.uuid4(), UuidRepresentation.STANDARD),
        "local": {"ip": local[0], "port": local[1]},
        "remote": {"ip": remote[0], "port": remote[1]},
        "users": [dict(u) for u in users],
        "roles": [dict(r) for r in roles],
        "param": param,
        "result": result,
    }


def to_json(event: Event) -> str:
    """One line of the JSON audit log: relaxed extended JSON, with `uuid` written as
    MongoDB's audit log writes it (`{"$binary": <base64>, "$type": "04"}`)."""
    doc = json.loads(bson.json_util.dumps(event, json_options=RELAXED_JSON_OPTIONS))
    raw = event.get("uuid")
    if isinstance(raw, bytes):
        doc["uuid"] = {"$binary": base64.b64encode(bytes(raw)).decode("ascii"), "$type": "04"}
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False)


def to_bson(event: Event) -> bytes:
    return bson.encode(event)


# -- param shapes ----------------------------------------------------------


def user_name(user: str, db: str) -> dict[str, str]:
    return {"user": user, "db": db}


def authenticate_param(user: str, db: str, mechanism: str) -> dict[str, Any]:
    return {"user": user, "db": db, "mechanism": mechanism}


def auth_check_param(command: str, ns: str, cmd: Mapping[str, Any]) -> dict[str, Any]:
    """`authCheck`'s param `{command, ns, args}`.

    MongoDB logs the whole command as `args`; phidb logs only the command's field names
    (each mapped to "<redacted>"), keeping the command field's value when it is the
    collection name and `$db`, so no query value or document reaches the audit log.
    """
    args: dict[str, Any] = {}
    for i, (name, value) in enumerate(cmd.items()):
        if (i == 0 and isinstance(value, str)) or name == "$db":
            args[name] = value
        else:
            args[name] = REDACTED
    return {"command": command, "ns": ns, "args": args}


def ns_param(ns: str) -> dict[str, Any]:
    """createCollection, dropCollection, createDatabase, dropDatabase."""
    return {"ns": ns}


def index_param(ns: str, index_name: str, index_spec: Mapping[str, Any]) -> dict[str, Any]:
    """createIndex, dropIndex: the spec without option values that could hold data
    (a partialFilterExpression's values, a collation's locale are left out)."""
    spec = {k: index_spec[k] for k in _INDEX_SPEC_FIELDS if k in index_spec}
    return {"ns": ns, "indexName": index_name, "indexSpec": spec}


def rename_param(old_ns: str, new_ns: str) -> dict[str, Any]:
    return {"old": old_ns, "new": new_ns}


def user_param(user: str, db: str, roles: Iterable[Mapping[str, str]]) -> dict[str, Any]:
    """createUser, updateUser, dropUser, grantRolesToUser, revokeRolesFromUser."""
    return {"user": user, "db": db, "roles": [{"role": r["role"], "db": r["db"]} for r in roles]}


def logout_param(
    reason: str, initial_users: list[dict[str, str]], updated_users: list[dict[str, str]]
) -> dict[str, Any]:
    return {"reason": reason, "initialUsers": initial_users, "updatedUsers": updated_users}


def startup_param(options: Mapping[str, Any]) -> dict[str, Any]:
    """`startup`: the options the server runs with, secrets replaced by "<redacted>"."""
    return {"startupOptions": redact_secrets(options)}


def redact_secrets(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {
            k: REDACTED if _is_secret_name(str(k)) else redact_secrets(v) for k, v in value.items()
        }
    if isinstance(value, list):
        return [redact_secrets(v) for v in value]
    return value


def _is_secret_name(name: str) -> bool:
    lowered = name.lower()
    return any(word in lowered for word in _SECRET_WORDS)

"""Handshake and server-information commands: hello/isMaster, ping, buildInfo,
getParameter, getCmdLineOpts, serverStatus, getLog, endSessions, whatsmyuri."""

from __future__ import annotations

import datetime
import os
import platform
import resource
import time
from typing import Any

from phidb import __version__
from phidb.commands.context import Context
from phidb.commands.registry import GENERIC_FIELDS, command, no_privileges
from phidb.errors import CLIENT_METADATA_CANNOT_BE_MUTATED, INVALID_OPTIONS, MongoError
from phidb.security.authz.privileges import Privilege, on_cluster

Document = dict[str, Any]

# MongoDB 7.0's wire version: accepted by pymongo 4.x, mongosh 2.x (Node driver 6/7).
MIN_WIRE_VERSION = 0
MAX_WIRE_VERSION = 21
MONGODB_VERSION = "7.0.0"
SUPPORTED_COMPRESSORS = ("zlib",)
LOGICAL_SESSION_TIMEOUT_MINUTES = 30


def _hello_reply(ctx: Context, cmd: Document, legacy: bool) -> Document:
    conn = ctx.conn
    if "client" in cmd:
        if conn.client_metadata is not None:
            raise MongoError(
                CLIENT_METADATA_CANNOT_BE_MUTATED,
                "The client metadata document may only be sent in the first hello",
            )
        conn.client_metadata = cmd["client"] if isinstance(cmd["client"], dict) else {}
    if "compression" in cmd and isinstance(cmd["compression"], list):
        conn.compressors = [c for c in cmd["compression"] if c in SUPPORTED_COMPRESSORS]

    reply: Document = {"helloOk": True}
    if legacy:
        reply["ismaster"] = True
    else:
        reply["isWritablePrimary"] = True
    # No topologyVersion: awaitable hello is not implemented, and a client that
    # sees one would poll it in a tight loop.
    reply.update(
        {
            "maxBsonObjectSize": 16 * 1024 * 1024,
            "maxMessageSizeBytes": 48_000_000,
            "maxWriteBatchSize": 100_000,
            "localTime": datetime.datetime.now(datetime.UTC).replace(tzinfo=None),
            "logicalSessionTimeoutMinutes": LOGICAL_SESSION_TIMEOUT_MINUTES,
            "connectionId": conn.connection_id,
            "minWireVersion": MIN_WIRE_VERSION,
            "maxWireVersion": MAX_WIRE_VERSION,
            "readOnly": False,
        }
    )
    if conn.compressors:
        reply["compression"] = list(conn.compressors)
    mechs_for = cmd.get("saslSupportedMechs")
    if isinstance(mechs_for, str) and "." in mechs_for:
        from phidb.security.auth.scram import supported_mechanisms
        from phidb.security.auth.users import UserStore

        db, _, user = mechs_for.partition(".")
        user_doc = UserStore(ctx.engine).get(db, user)
        if user_doc is not None:
            reply["saslSupportedMechs"] = supported_mechanisms(user_doc)
    return reply


@command("hello", privileges=no_privileges, requires_auth=False)
def hello(ctx: Context, cmd: Document) -> Document:
    return _hello_reply(ctx, cmd, legacy=False)


@command("isMaster", privileges=no_privileges, requires_auth=False, aliases=("ismaster",))
def is_master(ctx: Context, cmd: Document) -> Document:
    return _hello_reply(ctx, cmd, legacy=True)


@command("ping", privileges=no_privileges, requires_auth=False)
def ping(ctx: Context, cmd: Document) -> Document:
    return {}


@command("buildInfo", privileges=no_privileges, requires_auth=False, aliases=("buildinfo",))
def build_info(ctx: Context, cmd: Document) -> Document:
    return {
        "version": MONGODB_VERSION,
        "gitVersion": "phidb",
        "versionArray": [7, 0, 0, 0],
        "phidbVersion": __version__,
        "modules": [],
        "allocator": "system",
        "javascriptEngine": "none",
        "sysInfo": "deprecated",
        "bits": 64,
        "debug": False,
        "maxBsonObjectSize": 16 * 1024 * 1024,
        "storageEngines": ["sqlcipher"],
        "openssl": {"running": __import__("ssl").OPENSSL_VERSION},
        "buildEnvironment": {"target_os": platform.system().lower()},
    }


@command("endSessions", privileges=no_privileges, requires_auth=False)
def end_sessions(ctx: Context, cmd: Document) -> Document:
    # Sessions hold no server state in phidb: there are no transactions to abort.
    return {}


@command("whatsmyuri", privileges=no_privileges, requires_auth=False)
def whats_my_uri(ctx: Context, cmd: Document) -> Document:
    ip, port = ctx.conn.remote
    return {"you": f"{ip}:{port}"}


def _cluster(*actions: str) -> Any:
    def privileges(ctx: Context, cmd: Document) -> list[Privilege]:
        return [on_cluster(*actions)]

    return privileges


def _parameters(ctx: Context) -> Document:
    config = ctx.server.config
    return {
        "featureCompatibilityVersion": {"version": "7.0"},
        "authenticationMechanisms": ["SCRAM-SHA-1", "SCRAM-SHA-256"],
        "authSchemaVersion": 5,
        "tlsMode": config.tls_mode,
        "maxBSONDepth": 200,
        "cursorTimeoutMillis": 600_000,
        "auditAuthorizationSuccess": False,
        "enableEncryption": config.enable_encryption,
    }


@command("getParameter", privileges=_cluster("getParameter"), admin_only=True)
def get_parameter(ctx: Context, cmd: Document) -> Document:
    params = _parameters(ctx)
    wanted = cmd["getParameter"]
    if wanted == "*" or (isinstance(wanted, dict) and wanted.get("allParameters")):
        return dict(params)
    names = [k for k in cmd if k != "getParameter" and k not in GENERIC_FIELDS]
    reply = {name: params[name] for name in names if name in params}
    if not reply:
        raise MongoError(INVALID_OPTIONS, "no option found to get")
    return reply


@command("getCmdLineOpts", privileges=_cluster("getCmdLineOpts"), admin_only=True)
def get_cmd_line_opts(ctx: Context, cmd: Document) -> Document:
    config = ctx.server.config
    return {"argv": list(config.argv), "parsed": dict(config.parsed)}


@command("getLog", privileges=_cluster("getLog"), admin_only=True)
def get_log(ctx: Context, cmd: Document) -> Document:
    # phidb keeps no in-memory log ring: the operational log goes to stderr or
    # --logpath. Startup warnings are therefore always empty here.
    which = cmd["getLog"]
    if which == "*":
        return {"names": ["global", "startupWarnings"]}
    return {"totalLinesWritten": 0, "log": []}


@command("serverStatus", privileges=_cluster("serverStatus"))
def server_status(ctx: Context, cmd: Document) -> Document:
    server = ctx.server
    counters = server.counters
    uptime = time.time() - server.started_at
    usage = resource.getrusage(resource.RUSAGE_SELF)
    with counters.lock:
        opcounters = dict(counters.opcounters)
        current, total = counters.connections_current, counters.connections_total
    return {
        "host": platform.node(),
        "version": MONGODB_VERSION,
        "process": "phidb",
        "pid": os.getpid(),
        "uptime": float(int(uptime)),
        "uptimeMillis": int(uptime * 1000),
        "uptimeEstimate": int(uptime),
        "localTime": datetime.datetime.now(datetime.UTC).replace(tzinfo=None),
        "connections": {"current": current, "available": 1_000_000, "totalCreated": total},
        "opcounters": opcounters,
        "mem": {"bits": 64, "resident": usage.ru_maxrss // 1024, "supported": True},
        "metrics": {"cursor": {"open": {"total": len(server.cursors)}}},
        "storageEngine": {"name": "sqlcipher", "persistent": True},
        "security": {"authorization": server.config.authorization},
    }

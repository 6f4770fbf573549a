"""What a command handler can see: the server's shared state, its connection, and
the current request's database and deadline."""

from __future__ import annotations

import itertools
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from phidb.config import ServerConfig
from phidb.security.authz.session import AuthorizationSession
from phidb.storage.engine import NO_DEADLINE, Deadline, Engine

if TYPE_CHECKING:
    from phidb.commands.cursors import CursorRegistry

Address = tuple[str, int]


class AuditSink(Protocol):
    """The audit log as commands use it (implemented in `phidb.security.audit`)."""

    def record(
        self,
        atype: str,
        param: dict[str, Any],
        result: int,
        *,
        local: Address,
        remote: Address,
        users: list[dict[str, str]],
        roles: list[dict[str, str]],
    ) -> None: ...


@dataclass
class Connection:
    """Per-connection state, owned by the server shell, mutated by commands."""

    connection_id: int
    local: Address
    remote: Address
    is_loopback: bool
    tls: bool = False
    peer_subject: str | None = None  # RFC 2253 subject of a verified client certificate
    auth: AuthorizationSession = field(default_factory=AuthorizationSession)
    client_metadata: dict[str, Any] | None = None
    conversations: dict[int, Any] = field(default_factory=dict)  # SASL, by conversationId
    next_conversation_id: int = 1
    compressors: list[str] = field(default_factory=list)


@dataclass
class Counters:
    """serverStatus counters; updated under `lock` by the dispatcher."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    opcounters: dict[str, int] = field(
        default_factory=lambda: {
            "insert": 0,
            "query": 0,
            "update": 0,
            "delete": 0,
            "getmore": 0,
            "command": 0,
        }
    )
    connections_current: int = 0
    connections_total: int = 0


@dataclass
class ServerState:
    """Everything shared by all connections of one running server."""

    config: ServerConfig
    engine: Engine
    audit: AuditSink
    cursors: CursorRegistry
    started_at: float = field(default_factory=time.time)
    counters: Counters = field(default_factory=Counters)
    connection_ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    # Set by the audit layer or the shell when the server must stop serving.
    fatal_error: str | None = None


@dataclass
class Context:
    server: ServerState
    conn: Connection
    db: str
    deadline: Deadline = NO_DEADLINE

    @property
    def engine(self) -> Engine:
        return self.server.engine

    def audit(self, atype: str, param: dict[str, Any], result: int = 0) -> None:
        """Record an audit event on behalf of this connection's users."""
        self.server.audit.record(
            atype,
            param,
            result,
            local=self.conn.local,
            remote=self.conn.remote,
            users=self.conn.auth.user_names(),
            roles=self.conn.auth.role_names(),
        )

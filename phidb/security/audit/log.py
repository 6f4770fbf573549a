"""The audit log the server records events through: filter, write, and fail closed.

Each event is written, flushed (and fsynced, for a file) before `record` returns. If
an event cannot be written, `record` raises `AuditWriteError` and calls `on_failure`
so the server stops serving; every later `record` fails the same way.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from typing import Any

from phidb.config import ServerConfig
from phidb.errors import MongoError
from phidb.security.audit.events import Address, Event, make_event
from phidb.security.audit.sinks import ConsoleSink, FileSink, Sink, SyslogSink

log = logging.getLogger("phidb.audit")

INTERNAL_ERROR = 1
Matcher = Callable[[Event], bool]


class AuditWriteError(MongoError):
    """The audit log could not be written; the server must stop serving."""

    def __init__(self, reason: str) -> None:
        super().__init__(INTERNAL_ERROR, f"the audit log could not be written: {reason}")
        self.reason = reason


class AuditLog:
    """Implements `phidb.commands.context.AuditSink`."""

    def __init__(
        self,
        sink: Sink,
        *,
        filter: dict[str, Any] | None = None,
        on_failure: Callable[[str], None] | None = None,
    ) -> None:
        self._sink = sink
        self._matcher = _compile(filter)
        self._on_failure = on_failure
        self._lock = threading.Lock()
        self.failure: str | None = None

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
    ) -> None:
        event = make_event(
            atype, param, result, local=local, remote=remote, users=users, roles=roles
        )
        if self._matcher is not None and not self._matcher(event):
            return
        with self._lock:
            if self.failure is not None:
                raise AuditWriteError(self.failure)
            try:
                self._sink.write(event)
            except Exception as exc:  # any failure to write is fatal: fail closed
                reason = _describe(exc)
                self.failure = reason
                log.critical("audit log write failed: %s; the server stops serving", reason)
                notify = self._on_failure
            else:
                return
        if notify is not None:
            notify(reason)
        raise AuditWriteError(reason)

    def close(self) -> None:
        with self._lock:
            self._sink.close()


class NullAuditLog:
    """Auditing switched off on purpose (`auditLog.destination` unset)."""

    failure: str | None = None

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
    ) -> None:
        return None

    def close(self) -> None:
        return None


def open_audit_log(
    config: ServerConfig, on_failure: Callable[[str], None] | None = None
) -> AuditLog | NullAuditLog:
    """The audit log `config` asks for. Raises OSError if the file cannot be opened,
    so a server that cannot audit does not start."""
    destination = config.audit_destination
    if destination is None:
        return NullAuditLog()
    sink: Sink
    if destination == "file":
        path = config.audit_path or os.path.join(
            config.dbpath, "audit.bson" if config.audit_format == "BSON" else "audit.json"
        )
        sink = FileSink(path, config.audit_format)
    elif destination == "console":
        sink = ConsoleSink()
    elif destination == "syslog":
        sink = SyslogSink()
    else:
        raise ValueError(f"unknown audit destination {destination!r}")
    return AuditLog(sink, filter=config.audit_filter, on_failure=on_failure)


def _compile(spec: dict[str, Any] | None) -> Matcher | None:
    if not spec:
        return None
    # Imported here: the query layer is only needed when a filter is configured.
    from phidb.query.filter import compile_filter

    matcher: Matcher = compile_filter(spec)
    return matcher


def _describe(exc: Exception) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        where = f" ({exc.filename})" if exc.filename else ""
        return f"{exc.strerror}{where}"
    return str(exc) or type(exc).__name__

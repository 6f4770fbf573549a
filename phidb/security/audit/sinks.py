"""Where audit events go: a file (JSON lines or concatenated BSON), the console, or
syslog. Every `write` returns only once the event is handed off durably, or raises."""

from __future__ import annotations

import logging
import os
import socket
import sys
from typing import Protocol

from phidb.security.audit.events import Event, to_bson, to_json

log = logging.getLogger("phidb.audit")

SYSLOG_SOCKET = "/dev/log"
# facility user (1), severity info (6): <14>
_SYSLOG_PRIORITY = 1 * 8 + 6


class Sink(Protocol):
    def write(self, event: Event) -> None:
        """Write one event; raise OSError (or another exception) if it did not land."""

    def close(self) -> None: ...


class FileSink:
    """Appends each event and fsyncs before returning.

    The file is also checked to still be the one that was opened: if it was removed or
    replaced, events would go to a file nobody can read, so the write fails instead.
    Limitation: no in-place audit log rotation; rotating the file from outside makes
    the next write fail and the server stop, as with any unwritable audit log.
    """

    def __init__(self, path: str, fmt: str = "JSON") -> None:
        if fmt not in ("JSON", "BSON"):
            raise ValueError(f"unknown audit format {fmt!r}")
        self.path = path
        self.fmt = fmt
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        st = os.fstat(self._fd)
        self._identity = (st.st_dev, st.st_ino)

    def write(self, event: Event) -> None:
        st = os.stat(self.path)
        if (st.st_dev, st.st_ino) != self._identity:
            raise OSError(f"audit log file {self.path} was replaced")
        data = to_bson(event) if self.fmt == "BSON" else (to_json(event) + "\n").encode()
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
        os.fsync(self._fd)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


class ConsoleSink:
    """JSON lines on standard output, flushed per event."""

    def write(self, event: Event) -> None:
        out = sys.stdout
        out.write(to_json(event) + "\n")
        out.flush()

    def close(self) -> None:
        pass


class SyslogSink:
    """JSON events to the local syslog daemon (facility user, severity info).

    Sent as datagrams on /dev/log, so a failed send is seen and fails closed. Where
    there is no /dev/log, Python's `syslog` module is used instead and a warning says
    that delivery can no longer be confirmed (that module reports no errors).
    """

    def __init__(self, address: str = SYSLOG_SOCKET) -> None:
        self._sock: socket.socket | None = None
        try:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            sock.connect(address)
            self._sock = sock
        except OSError as exc:
            log.warning(
                "audit: cannot connect to %s (%s); using the syslog module, whose delivery"
                " cannot be confirmed",
                address,
                exc.strerror or exc,
            )

    @property
    def confirmed(self) -> bool:
        """Whether a failed delivery would be detected (the /dev/log socket is in use)."""
        return self._sock is not None

    def write(self, event: Event) -> None:
        message = to_json(event)
        if self._sock is not None:
            self._sock.send(f"<{_SYSLOG_PRIORITY}>phidb: {message}".encode())
            return
        import syslog

        syslog.syslog(syslog.LOG_USER | syslog.LOG_INFO, message)

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

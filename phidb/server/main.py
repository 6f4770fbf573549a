"""Start and stop a phidb server: open the security parts and the storage engine,
listen, serve connections until a signal or a fatal security failure.

Every security part is opened before the first socket is bound, and a failure
in any of them stops start-up with a `StartupError` saying why: phidb refuses
to serve rather than serve unprotected.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import logging.handlers
import os
import signal
import socket
import ssl
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import phidb.commands  # noqa: F401 - registers every command
from phidb.commands.context import Connection, ServerState
from phidb.commands.cursors import CursorRegistry
from phidb.config import ServerConfig
from phidb.server.connection import ClientConnection
from phidb.server.tls import peer_subject, server_context
from phidb.storage.engine import Engine

log = logging.getLogger("phidb")

WORKER_THREADS = 16
CURSOR_REAP_SECONDS = 60.0
TLS_SNIFF_SECONDS = 30.0
TLS_HANDSHAKE_RECORD = 0x16  # first byte of a TLS ClientHello


class StartupError(Exception):
    """phidb cannot start safely; the message says why."""


def open_engine(config: ServerConfig) -> Engine:
    from phidb.security.keys import keyfile
    from phidb.storage.sqlite import SQLiteEngine

    master_key: bytes | None = None
    if config.enable_encryption:
        if not config.encryption_key_file:
            raise StartupError("encryption at rest is on but no --encryptionKeyFile was given")
        try:
            master_key = keyfile.load_master_key(config.encryption_key_file)
        except Exception as exc:
            raise StartupError(str(exc)) from None
    try:
        os.makedirs(config.dbpath, exist_ok=True)
        return SQLiteEngine(config.dbpath, master_key, config.journal_commit_interval_ms)
    except Exception as exc:
        raise StartupError(f"cannot open the data in {config.dbpath}: {exc}") from None


class Server:
    """A running phidb: the listeners and the shared state of its connections."""

    def __init__(self, config: ServerConfig, engine: Engine, audit: Any) -> None:
        self.config = config
        self.state = ServerState(
            config=config, engine=engine, audit=audit, cursors=CursorRegistry()
        )
        self.executor = ThreadPoolExecutor(WORKER_THREADS, thread_name_prefix="phidb-worker")
        self.tls = server_context(config)
        self.stopping: asyncio.Event | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.sockets: list[socket.socket] = []
        self.connections: set[asyncio.Task[None]] = set()

    def fail(self, reason: str) -> None:
        """Stop serving because a security part failed (callable from any thread)."""
        if self.state.fatal_error is None:
            self.state.fatal_error = reason
        log.critical("phidb stops serving: %s", reason)
        if self.loop is not None and self.stopping is not None:
            self.loop.call_soon_threadsafe(self.stopping.set)

    def close(self) -> None:
        """Record the shutdown, finish running commands, close the engine."""
        if self.state.fatal_error is None:
            with contextlib.suppress(Exception):
                self.state.audit.record(
                    "shutdown",
                    {},
                    0,
                    local=(self.config.bind_ip[0], self.config.port),
                    remote=("", 0),
                    users=[],
                    roles=[],
                )
        self.executor.shutdown(wait=True, cancel_futures=True)
        for sock in self.sockets:
            sock.close()
        checkpoint = getattr(self.state.engine, "checkpoint", None)
        if checkpoint is not None:
            with contextlib.suppress(Exception):
                checkpoint()
        self.state.engine.close()

    def bind(self) -> None:
        for host in self.config.bind_ip:
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            sock = socket.socket(family, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((host, self.config.port))
            except OSError as exc:
                sock.close()
                raise StartupError(f"cannot listen on {host}:{self.config.port}: {exc}") from None
            sock.listen(512)
            sock.setblocking(False)
            self.sockets.append(sock)

    async def run(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.stopping = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                self.loop.add_signal_handler(sig, self.stopping.set)
        tasks = [asyncio.create_task(self._accept(sock)) for sock in self.sockets]
        tasks.append(asyncio.create_task(self._reap_cursors()))
        ports = ", ".join(f"{s.getsockname()[0]}:{s.getsockname()[1]}" for s in self.sockets)
        log.info("waiting for connections on %s (tlsMode %s)", ports, self.config.tls_mode)
        await self.stopping.wait()
        for task in tasks:
            task.cancel()
        for sock in self.sockets:
            sock.close()
        for task in list(self.connections):
            task.cancel()
        await asyncio.gather(*tasks, *self.connections, return_exceptions=True)

    async def _reap_cursors(self) -> None:
        while True:
            await asyncio.sleep(CURSOR_REAP_SECONDS)
            self.state.cursors.reap()

    async def _accept(self, listener: socket.socket) -> None:
        assert self.loop is not None
        while True:
            sock, _ = await self.loop.sock_accept(listener)
            task = asyncio.create_task(self._connection(sock))
            self.connections.add(task)
            task.add_done_callback(self.connections.discard)

    async def _wants_tls(self, sock: socket.socket) -> bool:
        """For allowTLS/preferTLS: a connection is TLS if its first byte starts a
        TLS handshake record; plaintext MongoDB frames never start with 0x16."""
        assert self.loop is not None
        readable = self.loop.create_future()

        def ready() -> None:
            if not readable.done():
                readable.set_result(None)

        self.loop.add_reader(sock.fileno(), ready)
        try:
            await asyncio.wait_for(readable, TLS_SNIFF_SECONDS)
        finally:
            self.loop.remove_reader(sock.fileno())
        first = sock.recv(1, socket.MSG_PEEK)
        return bool(first) and first[0] == TLS_HANDSHAKE_RECORD

    async def _connection(self, sock: socket.socket) -> None:
        assert self.loop is not None
        counters = self.state.counters
        try:
            mode = self.config.tls_mode
            use_tls = mode == "requireTLS" or (
                mode in ("allowTLS", "preferTLS") and await self._wants_tls(sock)
            )
            reader = asyncio.StreamReader(limit=2**16)
            protocol = asyncio.StreamReaderProtocol(reader)
            transport, _ = await self.loop.connect_accepted_socket(
                lambda: protocol,
                sock,
                ssl=self.tls if use_tls else None,
                ssl_handshake_timeout=TLS_SNIFF_SECONDS if use_tls else None,
            )
        except (OSError, ssl.SSLError, TimeoutError) as exc:
            log.info("connection refused during TLS set-up: %s", type(exc).__name__)
            sock.close()
            return
        writer = asyncio.StreamWriter(transport, protocol, reader, self.loop)
        local = transport.get_extra_info("sockname")[:2]
        remote = transport.get_extra_info("peername")[:2]
        with counters.lock:
            counters.connections_current += 1
            counters.connections_total += 1
        conn = Connection(
            connection_id=next(self.state.connection_ids),
            local=(local[0], local[1]),
            remote=(remote[0], remote[1]),
            is_loopback=ipaddress.ip_address(remote[0]).is_loopback,
            tls=use_tls,
            peer_subject=peer_subject(transport.get_extra_info("ssl_object")) if use_tls else None,
        )
        log.info(
            "connection %d accepted from %s:%d%s (%d open)",
            conn.connection_id, conn.remote[0], conn.remote[1], " over TLS" if use_tls else "",
            counters.connections_current,
        )  # fmt: skip
        try:
            client = ClientConnection(self.state, self.executor, reader, writer, conn, self.fail)
            await client.serve()
        finally:
            with counters.lock:
                counters.connections_current -= 1
            log.info("connection %d ended", conn.connection_id)


def _setup_logging(config: ServerConfig) -> None:
    handler: logging.Handler
    if config.log_destination == "syslog":
        handler = logging.handlers.SysLogHandler(address="/dev/log")
    elif config.log_path:
        handler = logging.FileHandler(config.log_path)
    else:
        handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("phidb")
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if config.log_verbosity > 0 else logging.INFO)
    root.propagate = False


def _new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def serve(config: ServerConfig) -> int:
    """Run a server until SIGINT/SIGTERM (exit 0) or a fatal security failure (exit 1).
    Raises StartupError when it cannot start safely."""
    _setup_logging(config)
    server = start(config)
    try:
        with asyncio.Runner(loop_factory=_new_loop) as runner:
            runner.run(server.run())
    finally:
        server.close()
    if server.state.fatal_error:
        print(f"phidb stopped serving: {server.state.fatal_error}", file=sys.stderr)
        return 1
    return 0


def start(config: ServerConfig) -> Server:
    """Open every part and bind the listeners, or raise StartupError."""
    from phidb.security.audit.events import startup_param
    from phidb.security.audit.log import open_audit_log

    engine = open_engine(config)
    holder: list[Server] = []

    def on_audit_failure(reason: str) -> None:
        if holder:
            holder[0].fail(reason)

    try:
        audit = open_audit_log(config, on_audit_failure)
    except Exception as exc:
        engine.close()
        raise StartupError(f"cannot open the audit log: {exc}") from None
    try:
        server = Server(config, engine, audit)
    except (OSError, ssl.SSLError, ValueError) as exc:
        engine.close()
        raise StartupError(f"cannot use the TLS certificate: {exc}") from None
    holder.append(server)
    try:
        server.bind()
    except StartupError:
        server.close()
        raise
    audit.record(
        "startup",
        startup_param(config.parsed),
        0,
        local=(config.bind_ip[0], config.port),
        remote=("", 0),
        users=[],
        roles=[],
    )
    return server

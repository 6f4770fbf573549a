"""One client connection: read frames, hand each command to the dispatcher in a
worker thread, write the reply. A bad frame costs only this connection."""

from __future__ import annotations

import asyncio
import datetime
import logging
import ssl
from concurrent.futures import Executor
from typing import Any

from bson.binary import Binary
from bson.objectid import ObjectId

from phidb.commands.context import Connection, ServerState
from phidb.commands.dispatcher import FatalServerError, dispatch
from phidb.errors import MongoError
from phidb.storage.engine import CODEC_OPTIONS
from phidb.wire import frames

log = logging.getLogger("phidb.net")

# Replies to these are never compressed (the handshake and credentials).
NEVER_COMPRESSED = frozenset(
    {
        "hello",
        "isMaster",
        "ismaster",
        "saslStart",
        "saslContinue",
        "getnonce",
        "authenticate",
        "createUser",
        "updateUser",
        "copydbSaslStart",
        "copydbgetnonce",
        "copydb",
    }
)
MAX_REPLY_SIZE = frames.HEADER_SIZE + 5 + frames.MAX_COMMAND_SIZE
OP_QUERY_COMMANDS = frozenset({"hello", "isMaster", "ismaster"})
UNSUPPORTED_OP_QUERY_COMMAND = 352
MISSING_DB = 40571


# Commands whose work is small and bounded run on the event loop thread itself:
# handing them to a worker thread costs more than running them. Everything that
# can take long (scans, sorts, regexes, SCRAM's key derivation, writes that wait
# for the disk) goes to the worker pool, so it never stalls other connections.
INLINE_COMMANDS = frozenset(
    {
        "hello",
        "isMaster",
        "ismaster",
        "ping",
        "buildInfo",
        "buildinfo",
        "endSessions",
        "whatsmyuri",
        "connectionStatus",
        "getParameter",
        "getCmdLineOpts",
        "serverStatus",
        "getLog",
        "killCursors",
    }
)
_POINT_KEY_TYPES = (str, int, float, ObjectId, Binary, datetime.datetime)


def runs_inline(name: str, cmd: dict[str, Any]) -> bool:
    """True for the handshake commands and for reads of one document by `_id`
    (MongoDB's "IDHACK" path: one index probe, at most one document)."""
    if name in INLINE_COMMANDS:
        return True
    if name != "find":
        return False
    filter_ = cmd.get("filter")
    if not isinstance(filter_, dict) or len(filter_) != 1:
        return False
    value = filter_.get("_id", filter_)
    return isinstance(value, _POINT_KEY_TYPES) and not isinstance(value, bool)


class ClientConnection:
    def __init__(
        self,
        state: ServerState,
        executor: Executor,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        conn: Connection,
        on_fatal: Any,
    ) -> None:
        self.state = state
        self.executor = executor
        self.reader = reader
        self.writer = writer
        self.conn = conn
        self.on_fatal = on_fatal
        self._next_request_id = 1

    async def serve(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                header = await self.reader.readexactly(frames.HEADER_SIZE)
                try:
                    length, request_id, _, opcode = frames.parse_header(header)
                except frames.FrameError as exc:
                    log.info("closing connection %d: %s", self.conn.connection_id, exc)
                    return
                payload = await self.reader.readexactly(length - frames.HEADER_SIZE)
                try:
                    # The checksum covers the whole frame, so it is checked before
                    # anything in it is trusted.
                    if opcode == frames.OP_MSG and frames.has_checksum(payload):
                        if not frames.verify_checksum(header + payload):
                            raise frames.FrameError("OP_MSG checksum does not match", fatal=True)
                    request = frames.decode_request(request_id, opcode, payload, CODEC_OPTIONS)
                except frames.FrameError as exc:
                    if exc.fatal:
                        log.info("closing connection %d: %s", self.conn.connection_id, exc)
                        return
                    reply = MongoError(exc.code, str(exc)).to_reply()
                    await self._send(request_id, opcode == frames.OP_QUERY, reply, None, "")
                    continue

                name, reply = await self._run(loop, request)
                if request.more_to_come:
                    continue
                await self._send(
                    request.request_id,
                    request.opcode == frames.OP_QUERY,
                    reply,
                    request.compressor_id,
                    name,
                )
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError, TimeoutError):
            return
        except FatalServerError as exc:
            self.on_fatal(str(exc))
        finally:
            self.writer.close()

    async def _run(
        self, loop: asyncio.AbstractEventLoop, request: frames.Request
    ) -> tuple[str, dict[str, Any]]:
        cmd = request.body
        name = next(iter(cmd), "")
        if request.opcode == frames.OP_QUERY:
            if not request.full_collection_name.endswith(".$cmd") or name not in (
                OP_QUERY_COMMANDS
            ):
                return name, MongoError(
                    UNSUPPORTED_OP_QUERY_COMMAND,
                    f"Unsupported OP_QUERY command: {name}. The client driver may require an"
                    " upgrade.",
                ).to_reply()
            db = request.full_collection_name[: -len(".$cmd")]
        else:
            db_value = cmd.get("$db")
            if not isinstance(db_value, str):
                return name, MongoError(
                    MISSING_DB, "OP_MSG requests require a $db argument"
                ).to_reply()
            db = db_value
            for identifier, docs in request.sequences.items():
                if identifier in cmd:
                    return name, MongoError(
                        40413, f"Duplicate field '{identifier}' in the body and a document sequence"
                    ).to_reply()
                cmd[identifier] = docs
        if runs_inline(name, cmd):
            return name, dispatch(self.state, self.conn, cmd, db)
        reply = await loop.run_in_executor(self.executor, dispatch, self.state, self.conn, cmd, db)
        return name, reply

    async def _send(
        self,
        response_to: int,
        legacy: bool,
        reply: dict[str, Any],
        compressor_id: int | None,
        name: str,
    ) -> None:
        request_id = self._next_request_id
        self._next_request_id += 1
        encode = frames.encode_op_reply if legacy else frames.encode_op_msg
        try:
            frame = encode(response_to, request_id, reply, CODEC_OPTIONS)
            if len(frame) > MAX_REPLY_SIZE:
                # A reply document obeys the same 16 MiB limit (plus the command
                # envelope) as any BSON document; a client would drop the connection.
                error = MongoError(
                    frames.BSON_TOO_LARGE,
                    f"BSONObjectTooLarge: the reply to {name} would be {len(frame)} bytes,"
                    f" over the limit of {MAX_REPLY_SIZE}",
                )
                frame = encode(response_to, request_id, error.to_reply(), CODEC_OPTIONS)
        except Exception as exc:  # noqa: BLE001 - e.g. a value BSON cannot encode
            log.error("cannot encode reply to %s: %s", name, type(exc).__name__)
            frame = encode(
                response_to,
                request_id,
                MongoError(10334, f"reply to {name} could not be encoded").to_reply(),
                CODEC_OPTIONS,
            )
        if compressor_id is not None and name not in NEVER_COMPRESSED:
            frame = frames.compress(frame, compressor_id)
        self.writer.write(frame)
        # Wait for the socket only when the transport is holding back data: a reply
        # that the kernel took at once needs no drain.
        if self.writer.transport.get_write_buffer_size():
            await self.writer.drain()

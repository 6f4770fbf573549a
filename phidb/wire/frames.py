"""MongoDB wire frames in and out: OP_MSG, legacy OP_QUERY/OP_REPLY, OP_COMPRESSED.

Sans-IO: these functions turn bytes into `Request`s and replies into bytes; the
server shell owns the sockets. Layouts follow MongoDB's wire protocol manual
("OP_MSG", "OP_COMPRESSED", and the legacy opcodes that mongosh still uses for
its first `isMaster`).
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field
from typing import Any

import bson
import crc32c
from bson.codec_options import CodecOptions

OP_REPLY = 1
OP_QUERY = 2004
OP_COMPRESSED = 2012
OP_MSG = 2013

HEADER = struct.Struct("<iiii")  # messageLength, requestID, responseTo, opCode
HEADER_SIZE = HEADER.size
MAX_MESSAGE_SIZE = 48_000_000
MAX_BSON_SIZE = 16 * 1024 * 1024
# A command document may exceed the user document limit by the envelope MongoDB
# allows for it (16 KiB), so a maximal user document still fits in an insert.
MAX_COMMAND_SIZE = MAX_BSON_SIZE + 16 * 1024
BSON_TOO_LARGE = 10334  # BSONObjectTooLarge

FLAG_CHECKSUM_PRESENT = 1 << 0
FLAG_MORE_TO_COME = 1 << 1
FLAG_EXHAUST_ALLOWED = 1 << 16
# Bits 0-15 are "required": a receiver must reject any it does not know.
_KNOWN_REQUIRED_FLAGS = FLAG_CHECKSUM_PRESENT | FLAG_MORE_TO_COME

COMPRESSOR_NOOP = 0
COMPRESSOR_ZLIB = 2
COMPRESSOR_IDS = {"noop": COMPRESSOR_NOOP, "zlib": COMPRESSOR_ZLIB}

_I32 = struct.Struct("<i")
_U32 = struct.Struct("<I")
_OP_REPLY_PREFIX = struct.Struct("<iqii")  # responseFlags, cursorID, startingFrom, numberReturned
_OP_COMPRESSED_PREFIX = struct.Struct("<iiB")  # originalOpcode, uncompressedSize, compressorId


class FrameError(Exception):
    """A frame that cannot be understood. `fatal` means the stream is out of sync
    (the connection must be closed); otherwise the request can get an error reply."""

    def __init__(self, message: str, *, fatal: bool = False, code: int = 17) -> None:
        super().__init__(message)
        self.fatal = fatal
        self.code = code


@dataclass
class Request:
    opcode: int  # OP_MSG or OP_QUERY, after any OP_COMPRESSED wrapper is removed
    request_id: int
    flags: int
    body: dict[str, Any]
    # OP_MSG kind-1 sections, by identifier (e.g. "documents" for insert).
    sequences: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    # OP_QUERY only: the namespace queried, e.g. "admin.$cmd".
    full_collection_name: str = ""
    compressor_id: int | None = None  # set when the request arrived compressed

    @property
    def more_to_come(self) -> bool:
        return self.opcode == OP_MSG and bool(self.flags & FLAG_MORE_TO_COME)


def parse_header(data: bytes) -> tuple[int, int, int, int]:
    """(messageLength, requestID, responseTo, opCode); FrameError(fatal) if out of limits."""
    length, request_id, response_to, opcode = HEADER.unpack(data)
    if length < HEADER_SIZE + 4 or length > MAX_MESSAGE_SIZE:
        raise FrameError(
            f"message length {length} is outside the allowed range"
            f" [{HEADER_SIZE + 4}, {MAX_MESSAGE_SIZE}]",
            fatal=True,
        )
    return length, request_id, response_to, opcode


def decode_request(
    request_id: int, opcode: int, payload: bytes, codec: CodecOptions[Any]
) -> Request:
    """Decode the bytes after the header. Raises FrameError."""
    if opcode == OP_COMPRESSED:
        return _decode_compressed(request_id, payload, codec)
    if opcode == OP_MSG:
        return _decode_op_msg(request_id, payload, codec)
    if opcode == OP_QUERY:
        return _decode_op_query(request_id, payload, codec)
    raise FrameError(f"unsupported opcode {opcode}", fatal=True)


def _decode_compressed(request_id: int, payload: bytes, codec: CodecOptions[Any]) -> Request:
    if len(payload) < _OP_COMPRESSED_PREFIX.size:
        raise FrameError("OP_COMPRESSED message is truncated", fatal=True)
    original, size, compressor = _OP_COMPRESSED_PREFIX.unpack_from(payload)
    data = payload[_OP_COMPRESSED_PREFIX.size :]
    if size < 0 or size > MAX_MESSAGE_SIZE:
        raise FrameError("OP_COMPRESSED uncompressed size is out of range", fatal=True)
    if compressor == COMPRESSOR_ZLIB:
        try:
            decompressor = zlib.decompressobj()
            inner = decompressor.decompress(data, size)
            if decompressor.unconsumed_tail or len(inner) != size:
                raise FrameError("OP_COMPRESSED size does not match its contents", fatal=True)
        except zlib.error as exc:
            raise FrameError(f"cannot decompress zlib message: {exc}", fatal=True) from None
    elif compressor == COMPRESSOR_NOOP:
        inner = data
    else:
        raise FrameError(f"unsupported compressor id {compressor}", fatal=True)
    if original == OP_COMPRESSED:
        raise FrameError("OP_COMPRESSED may not wrap OP_COMPRESSED", fatal=True)
    request = decode_request(request_id, original, inner, codec)
    request.compressor_id = compressor
    return request


def _decode_op_msg(request_id: int, payload: bytes, codec: CodecOptions[Any]) -> Request:
    (flags,) = _U32.unpack_from(payload)
    if flags & 0xFFFF & ~_KNOWN_REQUIRED_FLAGS:
        raise FrameError(f"unrecognized required flag bits in OP_MSG: {flags:#x}")
    end = len(payload)
    if flags & FLAG_CHECKSUM_PRESENT:
        if end < 8:
            raise FrameError("OP_MSG checksum missing", fatal=True)
        end -= 4
        # The checksum covers the header too; the caller passes the payload only,
        # so it is verified in `verify_checksum` with the full frame.
    body: dict[str, Any] | None = None
    sequences: dict[str, list[dict[str, Any]]] = {}
    pos = 4
    view = memoryview(payload)
    try:
        while pos < end:
            kind = payload[pos]
            pos += 1
            if kind == 0:
                size = _I32.unpack_from(payload, pos)[0]
                _check_doc_size(size, pos, end, MAX_COMMAND_SIZE)
                if body is not None:
                    raise FrameError("OP_MSG has more than one body section")
                body = bson.decode(view[pos : pos + size], codec)
                pos += size
            elif kind == 1:
                size = _I32.unpack_from(payload, pos)[0]
                if size < 5 or pos + size > end:
                    raise FrameError("OP_MSG document sequence size is out of range")
                section_end = pos + size
                nul = payload.index(b"\x00", pos + 4, section_end)
                identifier = payload[pos + 4 : nul].decode("utf-8")
                docs_pos = nul + 1
                docs: list[dict[str, Any]] = []
                while docs_pos < section_end:
                    dsize = _I32.unpack_from(payload, docs_pos)[0]
                    _check_doc_size(dsize, docs_pos, section_end, MAX_COMMAND_SIZE)
                    docs.append(bson.decode(view[docs_pos : docs_pos + dsize], codec))
                    docs_pos += dsize
                if identifier in sequences:
                    raise FrameError(f"duplicate document sequence {identifier!r}")
                sequences[identifier] = docs
                pos = section_end
            else:
                raise FrameError(f"unknown OP_MSG section kind {kind}")
    except (struct.error, ValueError, UnicodeDecodeError, bson.errors.BSONError) as exc:
        raise FrameError(f"invalid OP_MSG: {type(exc).__name__}", code=22) from None
    if body is None:
        raise FrameError("OP_MSG has no body section")
    return Request(OP_MSG, request_id, flags, body, sequences)


def _decode_op_query(request_id: int, payload: bytes, codec: CodecOptions[Any]) -> Request:
    try:
        (flags,) = _I32.unpack_from(payload)
        nul = payload.index(b"\x00", 4)
        namespace = payload[4:nul].decode("utf-8")
        pos = nul + 1 + 8  # numberToSkip, numberToReturn
        size = _I32.unpack_from(payload, pos)[0]
        _check_doc_size(size, pos, len(payload), MAX_COMMAND_SIZE)
        query = bson.decode(memoryview(payload)[pos : pos + size], codec)
    except (struct.error, ValueError, UnicodeDecodeError, bson.errors.BSONError) as exc:
        raise FrameError(f"invalid OP_QUERY: {type(exc).__name__}", code=22) from None
    # Drivers may wrap the command: {$query: {...}, $readPreference: ...}.
    if "$query" in query and isinstance(query["$query"], dict):
        query = query["$query"]
    return Request(OP_QUERY, request_id, flags, query, full_collection_name=namespace)


def _check_doc_size(size: int, pos: int, end: int, limit: int) -> None:
    if size < 5 or pos + size > end:
        raise FrameError("BSON document size does not fit its section", code=22)
    if size > limit:
        raise FrameError(f"BSON document of {size} bytes exceeds the limit", code=BSON_TOO_LARGE)


def has_checksum(payload: bytes) -> bool:
    """Whether an OP_MSG payload (the bytes after the header) sets checksumPresent."""
    return len(payload) >= 4 and bool(_U32.unpack_from(payload)[0] & FLAG_CHECKSUM_PRESENT)


def verify_checksum(frame: bytes) -> bool:
    """Whether an OP_MSG frame with checksumPresent carries a correct CRC-32C."""
    expected: int = _U32.unpack_from(frame, len(frame) - 4)[0]
    return bool(crc32c.crc32c(frame[:-4]) == expected)


def encode_op_msg(
    response_to: int, request_id: int, doc: dict[str, Any], codec: CodecOptions[Any]
) -> bytes:
    body = bson.encode(doc, codec_options=codec)
    length = HEADER_SIZE + 4 + 1 + len(body)
    return b"".join(
        (HEADER.pack(length, request_id, response_to, OP_MSG), b"\x00\x00\x00\x00\x00", body)
    )


def encode_op_reply(
    response_to: int, request_id: int, doc: dict[str, Any], codec: CodecOptions[Any]
) -> bytes:
    body = bson.encode(doc, codec_options=codec)
    length = HEADER_SIZE + _OP_REPLY_PREFIX.size + len(body)
    return b"".join(
        (
            HEADER.pack(length, request_id, response_to, OP_REPLY),
            _OP_REPLY_PREFIX.pack(0, 0, 0, 1),
            body,
        )
    )


def compress(frame: bytes, compressor_id: int) -> bytes:
    """Wrap an encoded frame in OP_COMPRESSED."""
    length, request_id, response_to, opcode = HEADER.unpack_from(frame)
    inner = frame[HEADER_SIZE:]
    data = zlib.compress(inner) if compressor_id == COMPRESSOR_ZLIB else inner
    total = HEADER_SIZE + _OP_COMPRESSED_PREFIX.size + len(data)
    return b"".join(
        (
            HEADER.pack(total, request_id, response_to, OP_COMPRESSED),
            _OP_COMPRESSED_PREFIX.pack(opcode, len(inner), compressor_id),
            data,
        )
    )

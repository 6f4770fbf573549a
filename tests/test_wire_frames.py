"""The wire codec on its own: frames built by hand, decoded and encoded without sockets."""

from __future__ import annotations

import struct
import zlib

import bson
import crc32c
import pytest

from phidb.storage.engine import CODEC_OPTIONS
from phidb.wire import frames


def op_msg(
    body: dict,
    *,
    flags: int = 0,
    sequences: dict | None = None,
    checksum: bool = False,
    request_id: int = 7,
) -> bytes:
    sections = b"\x00" + bson.encode(body)
    for identifier, docs in (sequences or {}).items():
        payload = identifier.encode() + b"\x00" + b"".join(bson.encode(d) for d in docs)
        sections += b"\x01" + struct.pack("<i", len(payload) + 4) + payload
    if checksum:
        flags |= frames.FLAG_CHECKSUM_PRESENT
    msg = struct.pack("<I", flags) + sections
    length = 16 + len(msg) + (4 if checksum else 0)
    frame = struct.pack("<iiii", length, request_id, 0, frames.OP_MSG) + msg
    if checksum:
        frame += struct.pack("<I", crc32c.crc32c(frame))
    return frame


def decode(frame: bytes) -> frames.Request:
    length, request_id, _, opcode = frames.parse_header(frame[:16])
    assert length == len(frame)
    return frames.decode_request(request_id, opcode, frame[16:], CODEC_OPTIONS)


def test_op_msg_body_and_document_sequence_are_decoded():
    frame = op_msg({"insert": "c", "$db": "t"}, sequences={"documents": [{"a": 1}, {"a": 2}]})
    request = decode(frame)
    assert request.opcode == frames.OP_MSG
    assert request.body == {"insert": "c", "$db": "t"}
    assert request.sequences == {"documents": [{"a": 1}, {"a": 2}]}
    assert not request.more_to_come


def test_more_to_come_flag_is_reported():
    request = decode(op_msg({"endSessions": []}, flags=frames.FLAG_MORE_TO_COME))
    assert request.more_to_come


def test_checksum_is_verified():
    frame = op_msg({"ping": 1, "$db": "admin"}, checksum=True)
    assert decode(frame).body == {"ping": 1, "$db": "admin"}
    assert frames.verify_checksum(frame)
    corrupted = frame[:-1] + bytes([frame[-1] ^ 0xFF])
    assert not frames.verify_checksum(corrupted)


def test_unknown_required_flag_bit_is_rejected():
    with pytest.raises(frames.FrameError, match="required flag"):
        decode(op_msg({"ping": 1}, flags=1 << 5))


def test_oversized_message_length_is_fatal():
    header = struct.pack("<iiii", frames.MAX_MESSAGE_SIZE + 1, 1, 0, frames.OP_MSG)
    with pytest.raises(frames.FrameError) as info:
        frames.parse_header(header)
    assert info.value.fatal


def test_truncated_bson_is_an_error_reply_not_a_crash():
    frame = bytearray(op_msg({"ping": 1}))
    frame[21:25] = struct.pack("<i", 1000)  # the body claims more bytes than exist
    with pytest.raises(frames.FrameError) as info:
        decode(bytes(frame))
    assert not info.value.fatal


def test_op_query_handshake_and_op_reply():
    query = bson.encode({"isMaster": 1, "client": {"driver": {"name": "x"}}})
    body = struct.pack("<i", 0) + b"admin.$cmd\x00" + struct.pack("<ii", 0, -1) + query
    frame = struct.pack("<iiii", 16 + len(body), 3, 0, frames.OP_QUERY) + body
    request = decode(frame)
    assert request.opcode == frames.OP_QUERY
    assert request.full_collection_name == "admin.$cmd"
    assert request.body["isMaster"] == 1

    reply = frames.encode_op_reply(3, 9, {"ok": 1.0}, CODEC_OPTIONS)
    length, request_id, response_to, opcode = struct.unpack_from("<iiii", reply)
    assert (length, request_id, response_to, opcode) == (len(reply), 9, 3, frames.OP_REPLY)
    flags, cursor_id, start, returned = struct.unpack_from("<iqii", reply, 16)
    assert (cursor_id, returned) == (0, 1)
    assert bson.decode(reply[36:]) == {"ok": 1.0}


def test_op_query_unwraps_dollar_query():
    query = bson.encode({"$query": {"hello": 1}, "$readPreference": {"mode": "primary"}})
    body = struct.pack("<i", 0) + b"admin.$cmd\x00" + struct.pack("<ii", 0, -1) + query
    frame = struct.pack("<iiii", 16 + len(body), 3, 0, frames.OP_QUERY) + body
    assert decode(frame).body == {"hello": 1}


def test_zlib_compressed_op_msg_round_trips():
    reply = frames.encode_op_msg(5, 6, {"ok": 1.0, "n": 3}, CODEC_OPTIONS)
    wrapped = frames.compress(reply, frames.COMPRESSOR_ZLIB)
    _, _, response_to, opcode = struct.unpack_from("<iiii", wrapped)
    assert (response_to, opcode) == (5, frames.OP_COMPRESSED)
    original, size, compressor = struct.unpack_from("<iiB", wrapped, 16)
    assert (original, size, compressor) == (frames.OP_MSG, len(reply) - 16, frames.COMPRESSOR_ZLIB)
    assert zlib.decompress(wrapped[25:]) == reply[16:]

    request = decode(frames.compress(op_msg({"ping": 1, "$db": "a"}), frames.COMPRESSOR_ZLIB))
    assert request.body == {"ping": 1, "$db": "a"}
    assert request.compressor_id == frames.COMPRESSOR_ZLIB


def test_compressed_size_mismatch_is_fatal():
    inner = op_msg({"ping": 1})[16:]
    data = zlib.compress(inner)
    payload = struct.pack("<iiB", frames.OP_MSG, len(inner) + 10, frames.COMPRESSOR_ZLIB) + data
    with pytest.raises(frames.FrameError) as info:
        frames.decode_request(1, frames.OP_COMPRESSED, payload, CODEC_OPTIONS)
    assert info.value.fatal


def test_unsupported_compressor_is_fatal():
    payload = struct.pack("<iiB", frames.OP_MSG, 10, 1) + b"xxxxxxxxxx"  # snappy
    with pytest.raises(frames.FrameError, match="compressor"):
        frames.decode_request(1, frames.OP_COMPRESSED, payload, CODEC_OPTIONS)

"""The wire protocol against a real server: handshake replies, legacy OP_QUERY,
compression, bad frames, TLS enforcement, and one slow request not stalling others."""

from __future__ import annotations

import socket
import ssl
import struct
import threading
import time
import warnings

import bson
import pytest
from pymongo import MongoClient
from pymongo.errors import OperationFailure, ServerSelectionTimeoutError

from harness import PhidbServer
from phidb.wire import frames


def tls_socket(server: PhidbServer) -> ssl.SSLSocket:
    context = ssl.create_default_context(cafile=str(server.certs.ca))
    raw = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    return context.wrap_socket(raw, server_hostname="localhost")


def read_frame(sock: socket.socket) -> tuple[int, bytes]:
    header = b""
    while len(header) < 16:
        chunk = sock.recv(16 - len(header))
        if not chunk:
            raise ConnectionError("closed")
        header += chunk
    length, _, _, opcode = struct.unpack("<iiii", header)
    body = b""
    while len(body) < length - 16:
        chunk = sock.recv(length - 16 - len(body))
        if not chunk:
            raise ConnectionError("closed")
        body += chunk
    return opcode, body


def send_op_msg(sock: socket.socket, doc: dict, request_id: int = 1) -> dict:
    sock.sendall(frames.encode_op_msg(0, request_id, doc, bson.DEFAULT_CODEC_OPTIONS))
    opcode, body = read_frame(sock)
    assert opcode == frames.OP_MSG
    return bson.decode(body[5:])


def test_hello_describes_a_standalone_server(admin: MongoClient):
    reply = admin.admin.command("hello")
    assert reply["isWritablePrimary"] is True
    assert reply["helloOk"] is True
    assert reply["maxBsonObjectSize"] == 16 * 1024 * 1024
    assert reply["maxMessageSizeBytes"] == 48_000_000
    assert reply["minWireVersion"] == 0 and reply["maxWireVersion"] >= 17
    assert isinstance(reply["connectionId"], int)
    assert "topologyVersion" not in reply
    assert "setName" not in reply


def test_hello_lists_the_users_sasl_mechanisms(server: PhidbServer, admin: MongoClient):
    reply = admin.admin.command("hello", saslSupportedMechs="admin.admin")
    assert set(reply["saslSupportedMechs"]) == {"SCRAM-SHA-1", "SCRAM-SHA-256"}


def test_build_info_has_a_version_array(admin: MongoClient):
    info = admin.admin.command("buildInfo")
    assert info["versionArray"][:2] == [7, 0]
    assert info["version"].startswith("7.0")


def test_unknown_command_is_command_not_found(admin: MongoClient):
    with pytest.raises(OperationFailure) as info:
        admin.admin.command("noSuchThing")
    assert info.value.code == 59
    assert info.value.details["codeName"] == "CommandNotFound"
    assert "noSuchThing" in info.value.details["errmsg"]


def test_legacy_op_query_is_master_gets_op_reply(server: PhidbServer):
    query = bson.encode({"isMaster": 1, "helloOk": True})
    body = struct.pack("<i", 0) + b"admin.$cmd\x00" + struct.pack("<ii", 0, -1) + query
    with tls_socket(server) as sock:
        sock.sendall(struct.pack("<iiii", 16 + len(body), 11, 0, frames.OP_QUERY) + body)
        opcode, reply = read_frame(sock)
        assert opcode == frames.OP_REPLY
        flags, cursor_id, start, returned = struct.unpack_from("<iqii", reply)
        assert returned == 1
        doc = bson.decode(reply[20:])
        assert doc["ismaster"] is True and doc["ok"] == 1.0 and doc["helloOk"] is True


def test_op_query_other_than_hello_is_refused(server: PhidbServer):
    query = bson.encode({"find": "x"})
    body = struct.pack("<i", 0) + b"test.$cmd\x00" + struct.pack("<ii", 0, -1) + query
    with tls_socket(server) as sock:
        sock.sendall(struct.pack("<iiii", 16 + len(body), 12, 0, frames.OP_QUERY) + body)
        _, reply = read_frame(sock)
        doc = bson.decode(reply[20:])
        assert doc["ok"] == 0 and doc["code"] == 352


def test_more_to_come_gets_no_reply_and_the_connection_goes_on(server: PhidbServer):
    with tls_socket(server) as sock:
        msg = frames.encode_op_msg(
            0, 1, {"endSessions": [], "$db": "admin"}, bson.DEFAULT_CODEC_OPTIONS
        )
        flags_at = 16
        msg = msg[:flags_at] + struct.pack("<I", frames.FLAG_MORE_TO_COME) + msg[flags_at + 4 :]
        sock.sendall(msg)
        reply = send_op_msg(sock, {"ping": 1, "$db": "admin"}, request_id=2)
        assert reply == {"ok": 1.0}


def test_malformed_frames_do_not_hurt_other_connections(server: PhidbServer, admin: MongoClient):
    with tls_socket(server) as sock:
        # A body section whose BSON length lies: an error reply, the connection lives.
        good = frames.encode_op_msg(0, 1, {"ping": 1, "$db": "admin"}, bson.DEFAULT_CODEC_OPTIONS)
        bad = bytearray(good)
        bad[21:25] = struct.pack("<i", 10_000)
        sock.sendall(bytes(bad))
        _, body = read_frame(sock)
        reply = bson.decode(body[5:])
        assert reply["ok"] == 0 and reply["code"] == 22
        assert send_op_msg(sock, {"ping": 1, "$db": "admin"}, request_id=3) == {"ok": 1.0}

    with tls_socket(server) as sock:
        # A frame claiming more than 48 MB: the connection is closed.
        sock.sendall(struct.pack("<iiii", 60_000_000, 1, 0, frames.OP_MSG))
        with pytest.raises((ConnectionError, ssl.SSLError, OSError)):
            read_frame(sock)

    with tls_socket(server) as sock:
        # An unknown opcode: closed.
        sock.sendall(struct.pack("<iiii", 20, 1, 0, 9999) + b"\x00" * 4)
        with pytest.raises((ConnectionError, ssl.SSLError, OSError)):
            read_frame(sock)

    assert admin.admin.command("ping")["ok"] == 1.0


def test_missing_db_in_op_msg_is_an_error(server: PhidbServer):
    with tls_socket(server) as sock:
        reply = send_op_msg(sock, {"ping": 1})
        assert reply["ok"] == 0 and reply["code"] == 40571


def test_zlib_compression_is_negotiated_and_works(server: PhidbServer):
    client = server.admin_client(compressors="zlib")
    hello = client.admin.command("hello", compression=["zlib", "snappy"])
    assert hello["compression"] == ["zlib"]
    coll = client.proto.compressed
    coll.insert_many([{"i": i, "text": "x" * 500} for i in range(50)])
    assert coll.count_documents({}) == 50
    assert coll.find_one({"i": 7})["text"] == "x" * 500


def test_second_client_metadata_is_rejected(server: PhidbServer):
    with tls_socket(server) as sock:
        first = send_op_msg(sock, {"hello": 1, "client": {"driver": {"name": "t"}}, "$db": "admin"})
        assert first["ok"] == 1.0
        second = send_op_msg(
            sock, {"hello": 1, "client": {"driver": {"name": "t"}}, "$db": "admin"}, 2
        )
        assert second["ok"] == 0 and second["code"] == 186


def test_plaintext_client_is_refused_when_tls_is_required(server: PhidbServer):
    client = MongoClient(f"mongodb://127.0.0.1:{server.port}/", serverSelectionTimeoutMS=1500)
    with pytest.raises(ServerSelectionTimeoutError):
        client.admin.command("ping")
    client.close()


def test_tls_1_1_is_refused(server: PhidbServer):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(str(server.certs.ca))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            context.minimum_version = ssl.TLSVersion.TLSv1
            context.maximum_version = ssl.TLSVersion.TLSv1_1
    except (ValueError, ssl.SSLError):
        pytest.skip("this OpenSSL cannot even offer TLS 1.1")
    raw = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
        context.wrap_socket(raw, server_hostname="localhost")
    raw.close()


def test_pathological_regex_honours_max_time_ms_and_stalls_nobody(server: PhidbServer):
    client = server.admin_client()
    coll = client.proto.regex_victim
    coll.insert_one({"s": "a" * 5000 + "!"})
    other = server.admin_client()
    other.admin.command("ping")

    latencies: list[float] = []
    done = threading.Event()

    def ping_loop() -> None:
        while not done.is_set():
            start = time.monotonic()
            other.admin.command("ping")
            latencies.append(time.monotonic() - start)
            time.sleep(0.02)

    pinger = threading.Thread(target=ping_loop)
    pinger.start()
    start = time.monotonic()
    try:
        with pytest.raises(OperationFailure) as info:
            list(coll.find({"s": {"$regex": "(a+)+$"}}).max_time_ms(1000))
    finally:
        done.set()
        pinger.join()
    assert info.value.code == 50
    assert time.monotonic() - start < 10
    assert latencies and max(latencies) < 0.5


def test_max_time_ms_on_a_long_scan(server: PhidbServer):
    client = server.admin_client()
    coll = client.proto.long_scan
    coll.insert_many([{"i": i, "pad": "p" * 100} for i in range(20_000)])
    with pytest.raises(OperationFailure) as info:
        client.proto.command(
            "find",
            "long_scan",
            filter={"$expr": {"$gt": [{"$strLenCP": "$pad"}, 1000]}},
            maxTimeMS=1,
        )
    assert info.value.code == 50
    assert info.value.details["codeName"] == "MaxTimeMSExpired"


def test_a_reply_over_16_mib_is_an_error_not_a_dropped_connection(admin: MongoClient):
    coll = admin.proto.big_reply
    coll.insert_one({"_id": 1, "big": "x" * (9 * 1024 * 1024)})
    with pytest.raises(OperationFailure) as info:
        list(coll.aggregate([{"$project": {"a": "$big", "b": "$big"}}]))
    assert info.value.code == 10334
    assert admin.admin.command("ping")["ok"] == 1.0
    assert coll.find_one({"_id": 1}, {"_id": 1}) == {"_id": 1}


def test_a_bad_or_missing_checksum_closes_the_connection(server: PhidbServer):
    good = frames.encode_op_msg(0, 1, {"ping": 1, "$db": "admin"}, bson.DEFAULT_CODEC_OPTIONS)
    flagged = bytearray(good)
    flagged[16:20] = struct.pack("<I", frames.FLAG_CHECKSUM_PRESENT)
    with tls_socket(server) as sock:
        sock.sendall(bytes(flagged))  # checksumPresent, but the last 4 bytes are BSON
        with pytest.raises((ConnectionError, ssl.SSLError, OSError)):
            read_frame(sock)
    with tls_socket(server) as sock:
        import crc32c

        body = bytes(flagged[:16]) + bytes(flagged[16:])
        body = struct.pack("<i", len(body) + 4) + body[4:]
        sock.sendall(body + struct.pack("<I", crc32c.crc32c(body)))
        opcode, reply = read_frame(sock)
        assert bson.decode(reply[5:]) == {"ok": 1.0}

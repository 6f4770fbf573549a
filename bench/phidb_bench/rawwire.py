"""The lean load generator: pre-encoded OP_MSG frames over TLS, after SCRAM-SHA-256.

It spends as little client CPU per operation as Python allows (a `sendall` of ready bytes and
two `recv`s), so the server's own ceiling shows. SCRAM runs once per connection with scramp;
BSON is encoded with pymongo's `bson` only while the frames are prepared.
"""

from __future__ import annotations

import socket
import ssl
import struct
from typing import Any

import bson
from scramp import ScramClient

from phidb_bench.clients import BulkDocuments
from phidb_bench.servers import Target
from phidb_bench.workloads import KeySpace, timestamp

OP_MSG = 2013
_HEADER = struct.Struct("<iiii")
_OK_DOUBLE = b"\x01ok\x00" + struct.pack("<d", 1.0)
_OK_INT = b"\x10ok\x00" + struct.pack("<i", 1)
FRAMES_PER_KIND = 512  # distinct patients per connection; enough to defeat any reply cache


def op_msg(command: dict[str, Any], request_id: int = 1) -> bytes:
    body = struct.pack("<I", 0) + b"\x00" + bson.encode(command)
    return _HEADER.pack(16 + len(body), request_id, 0, OP_MSG) + body


class RawConnection:
    def __init__(self, target: Target) -> None:
        raw = socket.create_connection((target.host, target.port))
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if target.ca_file:
            context = ssl.create_default_context(cafile=target.ca_file)
            self.sock: socket.socket = context.wrap_socket(raw, server_hostname="localhost")
        else:
            self.sock = raw
        if target.user:
            self._authenticate(target.user, target.password or "")

    def exchange(self, frame: bytes) -> bytes:
        """Send one frame and return the reply's body (after the 16-byte header)."""
        self.sock.sendall(frame)
        header = self._read(16)
        length = _HEADER.unpack(header)[0]
        return self._read(length - 16)

    def command(self, command: dict[str, Any]) -> dict[str, Any]:
        body = self.exchange(op_msg(command))
        reply: dict[str, Any] = bson.decode(body[5:])
        return reply

    def _read(self, n: int) -> bytes:
        chunks = []
        while n:
            chunk = self.sock.recv(n)
            if not chunk:
                raise ConnectionError("the server closed the connection")
            chunks.append(chunk)
            n -= len(chunk)
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    def _authenticate(self, user: str, password: str) -> None:
        scram = ScramClient(["SCRAM-SHA-256"], user, password)
        reply = self.command(
            {
                "saslStart": 1,
                "mechanism": "SCRAM-SHA-256",
                "payload": scram.get_client_first().encode(),
                "autoAuthorize": 1,
                "options": {"skipEmptyExchange": True},
                "$db": "admin",
            }
        )
        _check(reply, "saslStart")
        scram.set_server_first(bytes(reply["payload"]).decode())
        reply = self.command(
            {
                "saslContinue": 1,
                "conversationId": reply["conversationId"],
                "payload": scram.get_client_final().encode(),
                "$db": "admin",
            }
        )
        _check(reply, "saslContinue")
        scram.set_server_final(bytes(reply["payload"]).decode())
        while not reply.get("done"):
            reply = self.command(
                {
                    "saslContinue": 1,
                    "conversationId": reply["conversationId"],
                    "payload": b"",
                    "$db": "admin",
                }
            )
            _check(reply, "saslContinue")

    def close(self) -> None:
        self.sock.close()


def _check(reply: dict[str, Any], what: str) -> None:
    if reply.get("ok") != 1:
        raise PermissionError(f"{what} failed: {reply.get('errmsg')} ({reply.get('code')})")


def _ok(body: bytes) -> bool:
    return _OK_DOUBLE in body or _OK_INT in body


class RawSession:
    """Frames for FRAMES_PER_KIND patients, encoded once; `run` only patches the update time."""

    def __init__(self, target: Target, keys: KeySpace, bulk: BulkDocuments, seed: int) -> None:
        self.conn = RawConnection(target)
        patients = [(seed * 7919 + k * 104729) % keys.n_patients for k in range(FRAMES_PER_KIND)]
        db = target.dbname
        self.read = [
            op_msg(
                {
                    "find": "Patient",
                    "filter": {"_id": keys.patient_id(i)},
                    "limit": 1,
                    "singleBatch": True,
                    "$db": db,
                }
            )
            for i in patients
        ]
        self.ssn = [
            op_msg(
                {
                    "find": "Patient",
                    "filter": {"identifier.value": keys.ssn(i)},
                    "limit": 1,
                    "singleBatch": True,
                    "$db": db,
                }
            )
            for i in patients
        ]
        self.latest = [
            op_msg(
                {
                    "find": "Observation",
                    "filter": {"subject.reference": f"Patient/{keys.patient_id(i)}"},
                    "sort": {"effectiveDateTime": -1},
                    "limit": 50,
                    "singleBatch": True,
                    "$db": db,
                }
            )
            for i in patients
        ]
        stamp = timestamp(0)
        self.update: list[tuple[bytearray, int]] = []
        for i in patients:
            frame = bytearray(
                op_msg(
                    {
                        "update": "Patient",
                        "updates": [
                            {
                                "q": {"_id": keys.patient_id(i)},
                                "u": {"$set": {"meta.lastUpdated": stamp}},
                            }
                        ],
                        "ordered": True,
                        "$db": db,
                    }
                )
            )
            self.update.append((frame, frame.index(stamp.encode())))
        self.check_first_replies()

    def check_first_replies(self) -> None:
        """Decode one reply of each kind fully: the frames must find what they address."""
        for frames, minimum in ((self.read, 1), (self.ssn, 1), (self.latest, 1)):
            reply = bson.decode(self.conn.exchange(frames[0])[5:])
            batch = reply.get("cursor", {}).get("firstBatch", [])
            if reply.get("ok") != 1 or len(batch) < minimum:
                raise LookupError(f"raw find returned {reply.get('errmsg') or len(batch)}")

    def run(self, op: str, i: int, counter: int) -> int:
        k = i % FRAMES_PER_KIND
        if op == "read":
            frames = [self.read[k]]
        elif op == "indexed":
            frames = [self.ssn[k], self.latest[k]]
        elif op == "update":
            template, offset = self.update[k]
            template[offset : offset + 32] = timestamp(counter).encode()
            frames = [bytes(template)]
        else:
            raise ValueError(f"the raw generator has no {op!r} operation")
        for frame in frames:
            if not _ok(self.conn.exchange(frame)):
                raise LookupError(f"raw {op} failed")
        return len(frames)

    def close(self) -> None:
        self.conn.close()

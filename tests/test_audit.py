"""The audit log: MongoDB's event shape, file/console/syslog sinks, redaction, the
filter, and failing closed when an event cannot be written."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import Any

import bson
import pytest

from phidb.security.audit import (
    AuditLog,
    AuditWriteError,
    auth_check_param,
    index_param,
    startup_param,
)
from phidb.security.audit.sinks import ConsoleSink, FileSink, SyslogSink

WHO = {
    "local": ("127.0.0.1", 27017),
    "remote": ("10.0.0.5", 51234),
    "users": [{"user": "alice", "db": "admin"}],
    "roles": [{"role": "read", "db": "clinic"}],
}


def record(log: AuditLog, atype: str = "authenticate", param: Any = None, result: int = 0) -> None:
    log.record(
        atype,
        param or {"user": "alice", "db": "admin", "mechanism": "SCRAM-SHA-256"},
        result,
        **WHO,
    )


def test_json_file_event_has_mongodb_shape(tmp_path: Path) -> None:
    path = tmp_path / "audit.json"
    log = AuditLog(FileSink(str(path)))
    record(log, result=18)
    record(log, "createCollection", {"ns": "clinic.patients"})
    lines = path.read_text().splitlines()
    assert len(lines) == 2
    event = json.loads(lines[0])
    assert set(event) == {
        "atype",
        "ts",
        "uuid",
        "local",
        "remote",
        "users",
        "roles",
        "param",
        "result",
    }
    assert event["atype"] == "authenticate"
    assert event["ts"]["$date"].endswith("Z")
    assert event["uuid"]["$type"] == "04" and len(event["uuid"]["$binary"]) == 24
    assert event["local"] == {"ip": "127.0.0.1", "port": 27017}
    assert event["remote"] == {"ip": "10.0.0.5", "port": 51234}
    assert event["users"] == [{"user": "alice", "db": "admin"}]
    assert event["roles"] == [{"role": "read", "db": "clinic"}]
    assert event["param"] == {"user": "alice", "db": "admin", "mechanism": "SCRAM-SHA-256"}
    assert event["result"] == 18
    assert json.loads(lines[1])["param"] == {"ns": "clinic.patients"}
    assert oct(path.stat().st_mode & 0o777) == "0o600"


def test_bson_file_holds_concatenated_documents(tmp_path: Path) -> None:
    path = tmp_path / "audit.bson"
    log = AuditLog(FileSink(str(path), "BSON"))
    record(log)
    record(log, "dropCollection", {"ns": "a.b"})
    docs = bson.decode_all(path.read_bytes())
    assert [d["atype"] for d in docs] == ["authenticate", "dropCollection"]
    assert docs[0]["uuid"].subtype == 4


def test_removed_audit_file_fails_closed_and_stops_the_server(tmp_path: Path) -> None:
    path = tmp_path / "logs" / "audit.json"
    path.parent.mkdir()
    failures: list[str] = []
    log = AuditLog(FileSink(str(path)), on_failure=failures.append)
    record(log)
    path.unlink()
    path.parent.rmdir()
    with pytest.raises(AuditWriteError) as err:
        record(log)
    assert err.value.code == 1
    assert err.value.message.startswith("the audit log could not be written")
    assert len(failures) == 1
    with pytest.raises(AuditWriteError):
        record(log)  # stays failed: no event is ever silently dropped
    assert len(failures) == 1


def test_full_disk_fails_closed(tmp_path: Path) -> None:
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full")
    failures: list[str] = []
    log = AuditLog(FileSink("/dev/full"), on_failure=failures.append)
    with pytest.raises(AuditWriteError):
        record(log)
    assert failures and "space" in failures[0].lower()


def test_auth_check_args_carry_field_names_not_values() -> None:
    param = auth_check_param(
        "find",
        "clinic.patients",
        {"find": "patients", "filter": {"ssn": "123-45-6789"}, "$db": "clinic"},
    )
    assert param == {
        "command": "find",
        "ns": "clinic.patients",
        "args": {"find": "patients", "filter": "<redacted>", "$db": "clinic"},
    }
    assert "123-45-6789" not in json.dumps(param)


def test_index_param_leaves_out_partial_filter_values() -> None:
    spec = {
        "key": {"mrn": 1},
        "name": "mrn_1",
        "unique": True,
        "partialFilterExpression": {"mrn": "A17"},
    }
    param = index_param("clinic.p", "mrn_1", spec)
    assert param == {
        "ns": "clinic.p",
        "indexName": "mrn_1",
        "indexSpec": {"key": {"mrn": 1}, "name": "mrn_1", "unique": True},
    }


def test_startup_param_redacts_secrets() -> None:
    param = startup_param(
        {
            "net": {"port": 1, "tls": {"certificateKeyFilePassword": "hunter2"}},
            "ldapQueryPassword": "pw",
        }
    )
    assert param == {
        "startupOptions": {
            "net": {"port": 1, "tls": {"certificateKeyFilePassword": "<redacted>"}},
            "ldapQueryPassword": "<redacted>",
        }
    }


def test_console_sink_writes_json_lines(capsys: pytest.CaptureFixture[str]) -> None:
    log = AuditLog(ConsoleSink())
    record(log, "logout", {"reason": "r", "initialUsers": [], "updatedUsers": []})
    out = capsys.readouterr().out.splitlines()
    assert json.loads(out[0])["atype"] == "logout"


def test_syslog_sink_sends_datagrams_and_fails_closed(tmp_path: Path) -> None:
    address = str(tmp_path / "log.sock")
    receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    receiver.bind(address)
    failures: list[str] = []
    sink = SyslogSink(address)
    assert sink.confirmed
    log = AuditLog(sink, on_failure=failures.append)
    record(log)
    message = receiver.recv(65536).decode()
    assert message.startswith("<14>phidb: ")
    assert json.loads(message.split(": ", 1)[1])["atype"] == "authenticate"
    receiver.close()
    os.unlink(address)
    with pytest.raises(AuditWriteError):
        record(log)
    assert len(failures) == 1


def test_filter_keeps_only_matching_events(tmp_path: Path) -> None:
    pytest.importorskip("phidb.query.filter")
    path = tmp_path / "audit.json"
    log = AuditLog(FileSink(str(path)), filter={"atype": {"$in": ["createCollection"]}})
    record(log)
    record(log, "createCollection", {"ns": "a.b"})
    atypes = [json.loads(line)["atype"] for line in path.read_text().splitlines()]
    assert atypes == ["createCollection"]

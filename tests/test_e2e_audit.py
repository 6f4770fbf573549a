"""The audit log of a real phidb server: events in MongoDB's shape, no secrets in
it, and a server that stops serving when the log cannot be written."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from pymongo.errors import OperationFailure, PyMongoError

PASSWORD = "e2e-audit-password-0123456789"


def events(srv: Any) -> list[dict[str, Any]]:
    return [json.loads(line) for line in srv.audit_path.read_text().splitlines()]


def test_audit_file_records_auth_and_user_events_without_secrets(make_phidb: Any) -> None:
    srv = make_phidb()
    admin_password = srv.create_admin()
    admin = srv.admin_client()
    admin["clinic"].command("createUser", "nurse", pwd=PASSWORD, roles=["read"])
    bad = srv.client("nurse", "not-the-right-password", db="clinic")
    with pytest.raises(OperationFailure):
        bad["clinic"].command("ping")
    nurse = srv.client("nurse", PASSWORD, db="clinic")
    with pytest.raises(OperationFailure):
        nurse["clinic"].command("usersInfo", 1)
    admin["clinic"].command("dropUser", "nurse")

    text = srv.audit_path.read_text()
    for secret in (PASSWORD, admin_password, "not-the-right-password"):
        assert secret not in text
    log = events(srv)
    assert log[0]["atype"] == "startup"
    for event in log:
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
    created = [e for e in log if e["atype"] == "createUser"]
    assert [e["param"] for e in created] == [
        {"user": "admin", "db": "admin", "roles": [{"role": "root", "db": "admin"}]},
        {"user": "nurse", "db": "clinic", "roles": [{"role": "read", "db": "clinic"}]},
    ]
    assert created[1]["users"] == [{"user": "admin", "db": "admin"}]
    logins = [e for e in log if e["atype"] == "authenticate" and e["param"]["user"] == "nurse"]
    assert [e["result"] for e in logins] == [18, 0]
    assert logins[0]["param"] == {"user": "nurse", "db": "clinic", "mechanism": "SCRAM-SHA-256"}
    assert logins[0]["remote"]["ip"] == "127.0.0.1"
    checks = [e for e in log if e["atype"] == "authCheck"]
    assert checks and checks[-1]["result"] == 13
    assert checks[-1]["param"]["command"] == "usersInfo"
    assert checks[-1]["users"] == [{"user": "nurse", "db": "clinic"}]
    assert [e["param"] for e in log if e["atype"] == "dropUser"] == [
        {"user": "nurse", "db": "clinic"}
    ]


def test_server_stops_serving_when_the_audit_log_cannot_be_written(make_phidb: Any) -> None:
    srv = make_phidb()
    srv.create_admin()
    admin = srv.admin_client()
    admin.admin.command("ping")
    srv.audit_path.unlink()

    with pytest.raises(PyMongoError):
        admin["clinic"].command("createUser", "late", pwd=PASSWORD, roles=["read"])
    deadline = time.monotonic() + 15
    while srv.process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert srv.process.returncode == 1
    assert "audit log" in srv.log_text()

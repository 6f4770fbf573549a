"""Starting and running phidb as an operator does: a mongod.conf-style config file,
getCmdLineOpts, refusals to start (port in use, audit log not writable), BSON audit
output, an audit filter, SIGTERM, serverStatus and connectionStatus."""

from __future__ import annotations

import signal
import socket
import ssl
import time
from collections.abc import Iterator
from typing import Any

import bson
import bson.json_util
import pytest
import yaml
from pymongo import MongoClient
from pymongo.errors import OperationFailure, ServerSelectionTimeoutError

from harness import PhidbServer, free_port, serve_once
from phidb.certs import DevCerts
from phidb.security.keys.keyfile import generate_key_file
from phidb.wire import frames

PASSWORD = "startup-e2e-password-4242"


@pytest.fixture(scope="module")
def configured(tmp_path_factory: pytest.TempPathFactory, certs: DevCerts) -> Iterator[PhidbServer]:
    """A server configured only by a --config file in mongod.conf's layout."""
    root = tmp_path_factory.mktemp("configured")
    generate_key_file(str(root / "master.key"))
    port = free_port()
    settings = {
        "net": {
            "port": port,
            "tls": {"mode": "requireTLS", "certificateKeyFile": str(certs.server)},
        },
        "storage": {"dbPath": str(root / "db")},
        "security": {
            "authorization": "enabled",
            "encryptionKeyFile": str(root / "master.key"),
        },
        "auditLog": {"destination": "file", "format": "JSON", "path": str(root / "audit.json")},
    }
    (root / "phidb.conf").write_text(yaml.safe_dump(settings))
    srv = PhidbServer(root, certs, port, ["--config", str(root / "phidb.conf")]).start()
    srv.create_admin()
    try:
        yield srv
    finally:
        srv.stop()


def test_a_config_file_alone_starts_a_secure_server(configured: PhidbServer) -> None:
    admin = configured.admin_client()
    admin["clinic"]["visits"].insert_one({"_id": 1, "kind": "checkup"})
    assert admin["clinic"]["visits"].find_one() == {"_id": 1, "kind": "checkup"}

    assert (configured.root / "db" / "clinic.phidb").exists()
    assert (configured.root / "db" / "phidb.keystore").exists()
    with MongoClient(
        f"mongodb://127.0.0.1:{configured.port}/", serverSelectionTimeoutMS=800
    ) as plaintext:
        with pytest.raises(ServerSelectionTimeoutError):
            plaintext.admin.command("ping")
    anonymous = configured.client()
    with pytest.raises(OperationFailure) as refused:
        anonymous["clinic"]["visits"].find_one()
    assert refused.value.code == 13
    audit = configured.audit_path.read_text()
    assert '"atype":"startup"' in audit and '"atype":"createUser"' in audit


def test_get_cmd_line_opts_reports_argv_and_the_file_in_mongod_conf_shape(
    configured: PhidbServer,
) -> None:
    reply = configured.admin_client().admin.command("getCmdLineOpts")
    conf = str(configured.root / "phidb.conf")

    assert reply["argv"] == ["phidb", "serve", "--config", conf]
    assert reply["parsed"] == {
        "config": conf,
        "net": {
            "port": configured.port,
            "tls": {"mode": "requireTLS", "certificateKeyFile": str(configured.certs.server)},
        },
        "storage": {"dbPath": str(configured.root / "db")},
        "security": {
            "authorization": "enabled",
            "encryptionKeyFile": str(configured.root / "master.key"),
        },
        "auditLog": {
            "destination": "file",
            "format": "JSON",
            "path": str(configured.root / "audit.json"),
        },
    }
    key = configured.key_file.read_text().strip()
    assert key not in str(reply)
    assert configured.admin_password is not None
    assert configured.admin_password not in str(reply)


def test_server_status_counts_connections_and_operations(configured: PhidbServer) -> None:
    admin = configured.admin_client()
    coll = admin["clinic"]["status_counts"]

    def status() -> dict[str, Any]:
        reply: dict[str, Any] = admin.admin.command("serverStatus")
        return reply

    before = status()
    coll.insert_one({"_id": 1})
    coll.insert_many([{"_id": 2}, {"_id": 3}, {"_id": 4}])
    coll.update_one({"_id": 1}, {"$set": {"seen": True}})
    coll.delete_one({"_id": 4})
    list(coll.find({}))
    time.sleep(0.05)
    after = status()

    for counter, added in (("insert", 4), ("update", 1), ("delete", 1), ("query", 1)):
        assert after["opcounters"][counter] - before["opcounters"][counter] == added, counter
    assert isinstance(after["uptime"], float) and after["uptime"] >= 0
    assert after["uptimeMillis"] > before["uptimeMillis"]

    sockets = [open_hello_socket(configured) for _ in range(3)]
    opened = status()["connections"]["current"]
    for sock in sockets:
        sock.close()
    deadline = time.monotonic() + 5
    while status()["connections"]["current"] != opened - 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert status()["connections"]["current"] == opened - 3
    assert status()["connections"]["totalCreated"] >= after["connections"]["totalCreated"] + 3


def open_hello_socket(srv: PhidbServer) -> ssl.SSLSocket:
    """A TLS connection the server has surely accepted: it answered a hello."""
    context = ssl.create_default_context(cafile=str(srv.certs.ca))
    sock = context.wrap_socket(
        socket.create_connection(("127.0.0.1", srv.port), timeout=5), server_hostname="localhost"
    )
    sock.sendall(frames.encode_op_msg(0, 1, {"hello": 1, "$db": "admin"}, bson.CodecOptions()))
    assert len(sock.recv(16)) == 16
    return sock


def test_connection_status_shows_the_logged_in_user_and_roles(configured: PhidbServer) -> None:
    admin = configured.admin_client()
    admin["clinic"].command("createUser", "clerk", pwd=PASSWORD, roles=["read"])
    try:
        mine = admin.admin.command("connectionStatus")["authInfo"]
        assert mine == {
            "authenticatedUsers": [{"user": "admin", "db": "admin"}],
            "authenticatedUserRoles": [{"role": "root", "db": "admin"}],
        }
        clerk = configured.client("clerk", PASSWORD, db="clinic")
        theirs = clerk["clinic"].command("connectionStatus")["authInfo"]
        assert theirs == {
            "authenticatedUsers": [{"user": "clerk", "db": "clinic"}],
            "authenticatedUserRoles": [{"role": "read", "db": "clinic"}],
        }
        nobody = configured.client().admin.command("connectionStatus")["authInfo"]
        assert nobody == {"authenticatedUsers": [], "authenticatedUserRoles": []}
    finally:
        admin["clinic"].command("dropUser", "clerk")


def test_a_port_in_use_stops_start_up_with_a_clear_message(make_phidb: Any) -> None:
    srv: PhidbServer = make_phidb(start=False)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", srv.port))
        taken.listen(1)
        refused = serve_once(srv.args, srv.root)
    assert refused.returncode == 1
    assert f"cannot listen on 127.0.0.1:{srv.port}" in refused.stderr
    assert "Address already in use" in refused.stderr


def test_an_audit_path_that_cannot_be_written_stops_start_up(make_phidb: Any) -> None:
    srv: PhidbServer = make_phidb(start=False)
    (srv.root / "not-a-dir").write_text("")
    refused = serve_once(
        [*srv.args, "--auditPath", str(srv.root / "not-a-dir" / "a.json")], srv.root
    )
    assert refused.returncode == 1
    assert "cannot open the audit log" in refused.stderr
    assert "not-a-dir" in refused.stderr


def test_bson_audit_log_and_sigterm_exit_0_with_a_shutdown_event(make_phidb: Any) -> None:
    srv: PhidbServer = make_phidb(start=False)
    audit = srv.root / "audit.bson"
    srv.args += ["--auditFormat", "BSON", "--auditPath", str(audit)]
    srv.start()
    srv.create_admin()
    with pytest.raises(OperationFailure):
        srv.client("admin", "wrong-password")["admin"].command("ping")
    assert srv.process is not None
    srv.process.send_signal(signal.SIGTERM)
    assert srv.process.wait(15) == 0

    events = bson.decode_all(audit.read_bytes())
    atypes = [e["atype"] for e in events]
    assert atypes[0] == "startup" and atypes[-1] == "shutdown"
    assert "createUser" in atypes
    assert [e["result"] for e in events if e["atype"] == "authenticate"] == [18]
    assert all(
        set(e) == {"atype", "ts", "uuid", "local", "remote", "users", "roles", "param", "result"}
        for e in events
    )


def test_an_audit_filter_records_only_matching_events(make_phidb: Any) -> None:
    srv: PhidbServer = make_phidb("--auditFilter", '{atype: "authenticate"}')
    password = srv.create_admin()
    with pytest.raises(OperationFailure):
        srv.client("admin", "wrong-password")["admin"].command("ping")
    srv.client("admin", password)["admin"].command("ping")
    with pytest.raises(OperationFailure):
        srv.client()["clinic"]["x"].find_one()
    srv.stop()

    events = [bson.json_util.loads(line) for line in srv.audit_path.read_text().splitlines()]
    assert [(e["atype"], e["result"]) for e in events] == [
        ("authenticate", 18),
        ("authenticate", 0),
    ]

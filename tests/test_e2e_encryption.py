"""Encryption at rest through a real server: after loading FHIR data and indexing it, no
file the server writes holds a name or SSN in any encoding, running or stopped; a wrong
master key or an open key file stops start-up without touching the data; and with
--noEncryption the same scan does find the SSN, which proves the scan works."""

from __future__ import annotations

import hashlib
import json
import os
import struct
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness import PhidbServer, make_server, serve_once
from phidb.certs import DevCerts
from phidb.query.order import sort_key
from phidb.security.keys.keyfile import generate_key_file

SAMPLE = Path(__file__).resolve().parent.parent / "phidb" / "sample_data" / "synthea-r4"
PATIENT_FILES = [
    SAMPLE / "Gustavo_Mejía_59a8543c-e24f-4a01-b28b-47ccde6bc11d.json",
    SAMPLE / "Brett_Gottlieb_0d2177ba-f67b-4f29-addb-91040de55388.json",
]
SSN_SYSTEM = "http://hl7.org/fhir/sid/us-ssn"
SSN = "987-65-4329"
FAMILY = "Zyxwvutsonova"


def sample_patient(path: Path) -> dict[str, Any]:
    bundle = json.loads(path.read_text(encoding="utf-8"))
    patients = [
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient"
    ]
    assert len(patients) == 1
    patient: dict[str, Any] = patients[0]
    return patient


def sample_secrets() -> list[str]:
    """The family name and SSN of each loaded sample patient."""
    values = []
    for path in PATIENT_FILES:
        patient = sample_patient(path)
        values.append(patient["name"][0]["family"])
        values += [i["value"] for i in patient["identifier"] if i.get("system") == SSN_SYSTEM]
    return values


def encodings(value: str) -> list[bytes]:
    """The ways a string can sit in a file: UTF-8 (inside any JSON), a BSON string value,
    the index key encoding, and UTF-16 for good measure."""
    utf8 = value.encode("utf-8")
    return [
        utf8,
        struct.pack("<i", len(utf8) + 1) + utf8 + b"\x00",
        sort_key(value),
        value.encode("utf-16-le"),
    ]


def scanned(srv: PhidbServer) -> list[Path]:
    """Every file under the server's root but its own operational log."""
    return [p for p in sorted(srv.root.rglob("*")) if p.is_file() and p != srv.log_path]


def files_holding(srv: PhidbServer, values: list[str]) -> list[tuple[str, str]]:
    """(file, value) for every scanned file that holds one of `values` in one of its
    encodings."""
    hits = []
    for path in scanned(srv):
        data = path.read_bytes()
        for value in values:
            if any(needle in data for needle in encodings(value)):
                hits.append((str(path.relative_to(srv.root)), value))
    return hits


def load_fhir(srv: PhidbServer, files: list[Path], db: str = "fhir") -> None:
    assert srv.admin_password is not None
    env = {**os.environ, "PHIDB_URI": srv.uri(srv.admin_user, srv.admin_password)}
    done = subprocess.run(
        [sys.executable, "-m", "phidb", "load-fhir", *map(str, files), "--db", db, "--quiet"]
        + ["--tlsCAFile", str(srv.certs.ca)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr


def add_marked_patient(srv: PhidbServer) -> None:
    db = srv.admin_client()["clinic"]
    db["people"].insert_one({"_id": 1, "ssn": SSN, "name": {"family": FAMILY, "given": ["Ann"]}})
    db["people"].create_index("ssn")
    db["people"].create_index("name.family")


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory, certs: DevCerts) -> Iterator[PhidbServer]:
    srv = make_server(tmp_path_factory.mktemp("encrypted"), certs).start()
    srv.create_admin()
    load_fhir(srv, PATIENT_FILES)
    add_marked_patient(srv)
    srv.admin_client()["fhir"]["Patient"].create_index("identifier.value")
    try:
        yield srv
    finally:
        srv.stop()


def with_key(args: list[str], key: Path) -> list[str]:
    at = args.index("--encryptionKeyFile")
    return [*args[: at + 1], str(key), *args[at + 2 :]]


def fingerprint(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_no_file_holds_a_name_or_ssn_while_serving_or_after_stop(loaded: PhidbServer) -> None:
    values = [SSN, FAMILY, *sample_secrets()]
    db = loaded.admin_client()
    assert db["clinic"]["people"].find_one({"ssn": SSN}, {"_id": 1}) == {"_id": 1}
    sample_ssn = sample_secrets()[1]
    assert db["fhir"]["Patient"].count_documents({"identifier.value": sample_ssn}) == 1

    names = {str(p.relative_to(loaded.root)) for p in scanned(loaded)}
    assert {"audit.json", "db/clinic.phidb-wal", "db/fhir.phidb-wal"} <= names
    assert files_holding(loaded, values) == []
    loaded.stop()
    try:
        names = {str(p.relative_to(loaded.root)) for p in scanned(loaded)}
        assert {"audit.json", "db/clinic.phidb", "db/fhir.phidb", "db/phidb.keystore"} <= names
        assert files_holding(loaded, values) == []
    finally:
        loaded.start()


def test_a_different_master_key_is_refused_and_the_data_is_left_intact(
    loaded: PhidbServer, tmp_path: Path
) -> None:
    other_key = tmp_path / "other.key"
    generate_key_file(str(other_key))
    loaded.stop()
    try:
        before = fingerprint(loaded.dbpath)
        refused = serve_once(with_key(loaded.args, other_key), loaded.root)
        assert refused.returncode == 1
        assert "encryption key does not match" in refused.stderr
        assert fingerprint(loaded.dbpath) == before
    finally:
        loaded.start()
    people = loaded.admin_client()["clinic"]["people"]
    assert people.find_one({"ssn": SSN})["name"]["family"] == FAMILY  # type: ignore[index]


def test_a_key_file_readable_by_others_is_refused_at_start(make_phidb: Any) -> None:
    srv: PhidbServer = make_phidb(start=False)
    srv.key_file.chmod(0o644)

    refused = serve_once(srv.args, srv.root)

    assert refused.returncode == 1
    assert f"permissions on encryption key file {srv.key_file} are too open" in refused.stderr
    assert "mode 644" in refused.stderr
    assert not srv.dbpath.exists() or not any(srv.dbpath.iterdir())


def test_without_encryption_the_same_scan_finds_the_ssn(make_phidb: Any) -> None:
    srv: PhidbServer = make_phidb(start=False)
    at = srv.args.index("--encryptionKeyFile")
    srv.args[at : at + 2] = ["--noEncryption"]
    srv.start()
    srv.create_admin()
    add_marked_patient(srv)

    assert files_holding(srv, [SSN, FAMILY]) == [
        ("db/clinic.phidb-wal", SSN),
        ("db/clinic.phidb-wal", FAMILY),
    ]
    srv.stop()
    assert files_holding(srv, [SSN, FAMILY]) == [
        ("db/clinic.phidb", SSN),
        ("db/clinic.phidb", FAMILY),
    ]

"""Encryption at rest: no plaintext byte of a document anywhere under dbpath (main files,
WAL, keystore), and a wrong master key refuses to open."""

from __future__ import annotations

import os

import bson
import pytest

from phidb.query.order import sort_key
from phidb.security.keys import KeystoreError, MasterKeyMismatch
from phidb.storage.sqlite import SQLiteEngine

SSN = "987-65-4321"
FAMILY = "Zwierzchowski"


def _patient(i: int) -> dict:
    return {
        "_id": f"patient-{i}",
        "name": [{"family": FAMILY, "given": ["Quintessa"]}],
        "identifier": [{"system": "http://hl7.org/fhir/sid/us-ssn", "value": SSN}],
        "note": f"{FAMILY} {SSN} visit {i}",
    }


def _needles() -> list[bytes]:
    doc = _patient(0)
    return [
        SSN.encode(),
        FAMILY.encode(),
        bson.encode({"value": SSN})[4:-1],  # the BSON element as stored
        bson.encode({"family": FAMILY})[4:-1],
        bson.encode(doc),
        sort_key(SSN),  # the index key encoding
        sort_key(FAMILY),
    ]


def _write_patients(path: str, key: bytes | None) -> SQLiteEngine:
    engine = SQLiteEngine(path, key)
    engine.create_indexes(
        "clinic",
        "patients",
        [{"key": {"identifier.value": 1}}, {"key": {"name.family": -1, "note": 1}}],
    )
    assert engine.insert("clinic", "patients", [_patient(0)], ordered=True).errors == []
    engine.checkpoint()  # the first document now lives in the main file
    # The next writes stay in the WAL: the engine is still open, nothing checkpoints them.
    assert engine.insert("clinic", "patients", [_patient(1)], ordered=True).errors == []
    rid = next(r for r, _ in engine.find("clinic", "patients", {"_id": "patient-1"}))
    engine.replace("clinic", "patients", rid, {**_patient(1), "note": FAMILY * 3})
    return engine


def _files_containing(path: str, needles: list[bytes]) -> list[tuple[str, bytes]]:
    found = []
    for root, _, files in os.walk(path):
        for name in files:
            data = open(os.path.join(root, name), "rb").read()
            found.extend((name, n) for n in needles if n in data)
    return found


def test_no_plaintext_of_a_document_under_dbpath(tmp_path):
    path = str(tmp_path / "db")
    engine = _write_patients(path, os.urandom(32))
    try:
        wal = os.path.join(path, "clinic.phidb-wal")
        assert os.path.getsize(wal) > 0  # the un-checkpointed writes are there
        assert _files_containing(path, _needles()) == []
        # The data is really there and readable through the engine.
        found = list(engine.find("clinic", "patients", {"identifier.value": SSN}))
        assert [d["_id"] for _, d in found] == ["patient-0", "patient-1"]
    finally:
        engine.close()
    assert _files_containing(path, _needles()) == []


def test_the_grep_finds_plaintext_when_encryption_is_off(tmp_path):
    # Proves the check above can fail: the same writes unencrypted are found.
    path = str(tmp_path / "db")
    engine = _write_patients(path, None)
    try:
        names = {name for name, _ in _files_containing(path, _needles())}
        assert "clinic.phidb" in names and "clinic.phidb-wal" in names
    finally:
        engine.close()


def test_each_database_gets_its_own_key(tmp_path):
    path = str(tmp_path / "db")
    engine = SQLiteEngine(path, os.urandom(32))
    engine.insert("a", "c", [{"_id": 1}], ordered=True)
    engine.insert("b", "c", [{"_id": 1}], ordered=True)
    keystore = engine._keystore
    assert keystore.get("a") != keystore.get("b")
    engine.close()


def test_wrong_master_key_refuses_to_open_and_leaves_data_intact(tmp_path):
    path = str(tmp_path / "db")
    key = os.urandom(32)
    engine = SQLiteEngine(path, key)
    engine.insert("clinic", "patients", [_patient(0)], ordered=True)
    engine.close()
    before = {n: open(os.path.join(path, n), "rb").read() for n in os.listdir(path)}
    with pytest.raises(MasterKeyMismatch) as info:
        SQLiteEngine(path, os.urandom(32))
    assert "the encryption key does not match the one" in str(info.value)
    after = {n: open(os.path.join(path, n), "rb").read() for n in os.listdir(path)}
    assert after == before
    engine = SQLiteEngine(path, key)
    assert engine.count("clinic", "patients") == 1
    engine.close()


def test_damaged_data_key_is_refused_not_served(tmp_path):
    path = str(tmp_path / "db")
    key = os.urandom(32)
    engine = SQLiteEngine(path, key)
    engine.insert("clinic", "patients", [_patient(0)], ordered=True)
    engine.close()
    # Swap in another database's file: its key cannot decrypt it.
    other = SQLiteEngine(str(tmp_path / "other"), os.urandom(32))
    other.insert("clinic", "patients", [{"_id": 1}], ordered=True)
    other.close()
    os.replace(tmp_path / "other" / "clinic.phidb", tmp_path / "db" / "clinic.phidb")
    with pytest.raises(KeystoreError, match="cannot be read with its key"):
        SQLiteEngine(path, key)


def test_database_files_are_owner_only(tmp_path):
    path = str(tmp_path / "db")
    engine = SQLiteEngine(path, os.urandom(32))
    engine.insert("clinic", "patients", [{"_id": 1}], ordered=True)
    for name in os.listdir(path):
        assert os.stat(os.path.join(path, name)).st_mode & 0o077 == 0, name
    engine.close()

"""`phidb load-fhir`'s loader against a real secure phidb: TLS, SCRAM, upserts by `_id`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pymongo import MongoClient

import phidb.commands  # noqa: F401 - registers every command, for the check below
from harness import PhidbServer
from phidb.commands.registry import lookup
from phidb.fhir.loader import load_paths

SAMPLE = Path(__file__).resolve().parent.parent / "phidb" / "sample_data" / "synthea-r4"
FILES = [
    SAMPLE / "hospitalInformation1559319163815.json",
    SAMPLE / "practitionerInformation1559319163815.json",
    SAMPLE / "Brent_Beer_7dc94cc0-8c2e-4835-9994-cecbe894bcbf.json",
]

pytestmark = pytest.mark.skipif(
    lookup("update") is None, reason="the loader's ReplaceOne upserts need the update command"
)


def test_loading_twice_over_tls_leaves_one_copy_with_resolved_references(
    server: PhidbServer, admin: MongoClient[Any]
) -> None:
    uri = server.uri(server.admin_user, server.admin_password)
    paths = [str(p) for p in FILES]

    first = load_paths(paths, uri, "fhir_e2e", tls_ca_file=str(server.certs.ca), progress=False)
    second = load_paths(paths, uri, "fhir_e2e", tls_ca_file=str(server.certs.ca), progress=False)

    assert first.counts == second.counts
    assert first.counts["Organization"] == 102
    assert first.counts["Patient"] == 1
    db = admin["fhir_e2e"]
    stored = {
        name: [doc["_id"] for doc in db[name].find({}, {"_id": 1})]
        for name in ("Organization", "Practitioner", "Patient", "Encounter")
    }
    assert {name: len(ids) for name, ids in stored.items()} == {
        "Organization": 102,
        "Practitioner": 102,
        "Patient": 1,
        "Encounter": first.counts["Encounter"],
    }
    assert all(len(set(ids)) == len(ids) for ids in stored.values())
    encounter = db["Encounter"].find_one({"_id": "1dfff3f8-3d77-474b-94fa-4c5ef2cc9aa3"})
    assert encounter is not None
    assert encounter["subject"] == {"reference": "Patient/d0368972-8517-4623-907e-920b04f003b6"}
    assert encounter["serviceProvider"] == {
        "reference": "Organization/5e765f2b-e908-3888-9fc7-df2cb87beb58"
    }

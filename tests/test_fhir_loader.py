"""FHIR Bundle loading: ids, collections, references and batching, on the shipped sample.

The loading tests drive `load_into` with a real pymongo Database on a real phidb server.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from pymongo import MongoClient, monitoring
from pymongo.database import Database

from harness import PhidbServer
from phidb.fhir.bundle import (
    BundleError,
    bundle_entries,
    derived_id,
    read_bundle,
    reference_map,
    stored_documents,
)
from phidb.fhir.loader import find_bundle_files, load_into

SAMPLE = Path(__file__).resolve().parent.parent / "phidb" / "sample_data" / "synthea-r4"
PATIENT = SAMPLE / "Brent_Beer_7dc94cc0-8c2e-4835-9994-cecbe894bcbf.json"
HOSPITALS = SAMPLE / "hospitalInformation1559319163815.json"
PRACTITIONERS = SAMPLE / "practitionerInformation1559319163815.json"

# The sample's resource counts (/work/shared/data/README.md), except that patient bundles repeat
# the Organization and Practitioner they cite: 162 entries each, 102 distinct ids each.
SAMPLE_COUNTS = {
    "Observation": 2998,
    "Claim": 711,
    "Encounter": 586,
    "ExplanationOfBenefit": 586,
    "Immunization": 482,
    "Procedure": 219,
    "Condition": 170,
    "Organization": 102,
    "Practitioner": 102,
    "DiagnosticReport": 143,
    "MedicationRequest": 125,
    "CarePlan": 54,
    "Patient": 40,
    "Goal": 25,
    "AllergyIntolerance": 8,
    "ImagingStudy": 5,
}
# Every entry is sent as one upsert, so the copies count too: 162 - 102 extra of each type.
SAMPLE_ENTRIES = sum(SAMPLE_COUNTS.values()) + 2 * (162 - 102)


def references_in(value: Any) -> list[str]:
    if isinstance(value, dict):
        found = [v for k, v in value.items() if k == "reference" and isinstance(v, str)]
        return found + [r for v in value.values() for r in references_in(v)]
    if isinstance(value, list):
        return [r for v in value for r in references_in(v)]
    return []


class UpdateRecorder(monitoring.CommandListener):
    """Notes each `update` command the client sends: (database, collection, statements, ordered)."""

    def __init__(self) -> None:
        self.updates: list[tuple[str, str, list[dict[str, Any]], bool]] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command_name == "update":
            cmd = event.command
            self.updates.append(
                (event.database_name, cmd["update"], list(cmd["updates"]), cmd["ordered"])
            )

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


@pytest.fixture(scope="module")
def recorder() -> UpdateRecorder:
    return UpdateRecorder()


@pytest.fixture(scope="module")
def client(server: PhidbServer, recorder: UpdateRecorder) -> MongoClient[Any]:
    return server.admin_client(event_listeners=[recorder])


@pytest.fixture
def db(client: MongoClient[Any]) -> Database[Any]:
    """A database of its own for each test, on the module's shared server."""
    return client[f"fhir_{uuid.uuid4().hex[:12]}"]


def batches_for(recorder: UpdateRecorder, db: Database[Any]) -> list[tuple[str, int, bool]]:
    return [
        (coll, len(ops), ordered)
        for name, coll, ops, ordered in recorder.updates
        if name == db.name
    ]


def stored_counts(db: Database[Any]) -> dict[str, int]:
    return {name: db[name].count_documents({}) for name in db.list_collection_names()}


def update_opcount(admin: MongoClient[Any]) -> int:
    return int(admin.admin.command("serverStatus")["opcounters"]["update"])


def test_patient_bundle_entries_keep_resource_ids_and_types() -> None:
    entries = bundle_entries(read_bundle(PATIENT))

    assert len(entries) == 191
    assert entries[0].resource_type == "Patient"
    assert entries[0].resource_id == "d0368972-8517-4623-907e-920b04f003b6"
    assert entries[0].reference == "Patient/d0368972-8517-4623-907e-920b04f003b6"
    assert all(e.full_url == f"urn:uuid:{e.resource_id}" for e in entries)


def test_references_within_a_bundle_become_type_slash_id() -> None:
    entries = bundle_entries(read_bundle(PATIENT))
    documents = list(stored_documents(entries, reference_map(entries)))

    encounter = next(doc for coll, doc, _ in documents if coll == "Encounter")
    assert encounter["subject"] == {"reference": "Patient/d0368972-8517-4623-907e-920b04f003b6"}
    assert encounter["_id"] == encounter["id"]
    # Synthea's patient bundle carries copies of the hospital and practitioners it cites.
    assert sum(unresolved for _, _, unresolved in documents) == 0


def test_references_across_bundles_resolve_with_a_global_map() -> None:
    references: dict[str, str] = {}
    for path in (HOSPITALS, PRACTITIONERS, PATIENT):
        references.update(reference_map(bundle_entries(read_bundle(path))))
    entries = bundle_entries(read_bundle(PATIENT))
    documents = list(stored_documents(entries, references))

    assert sum(unresolved for _, _, unresolved in documents) == 0
    encounter = next(doc for coll, doc, _ in documents if coll == "Encounter")
    assert encounter["serviceProvider"] == {
        "reference": "Organization/5e765f2b-e908-3888-9fc7-df2cb87beb58"
    }
    assert encounter["participant"][0]["individual"]["reference"].startswith("Practitioner/")
    every = [r for _, doc, _ in documents for r in references_in(doc)]
    assert not [r for r in every if r.startswith("urn:uuid:")]
    # Contained-resource references are local to the resource and stay as they are.
    assert "#coverage" in every


def test_reference_to_a_later_file_resolves_through_the_first_pass(
    tmp_path: Path, db: Database[Any]
) -> None:
    patient = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": "urn:uuid:p1",
                "resource": {
                    "resourceType": "Patient",
                    "id": "p1",
                    "managingOrganization": {"reference": "urn:uuid:o1"},
                    "generalPractitioner": [{"reference": "urn:uuid:missing"}],
                },
            }
        ],
    }
    hospital = {
        "resourceType": "Bundle",
        "entry": [
            {"fullUrl": "urn:uuid:o1", "resource": {"resourceType": "Organization", "id": "o1"}}
        ],
    }
    (tmp_path / "a_patient.json").write_text(json.dumps(patient))
    (tmp_path / "b_hospital.json").write_text(json.dumps(hospital))

    report = load_into(db, find_bundle_files([str(tmp_path)]), 1000, progress=False)

    stored = db["Patient"].find_one({"_id": "p1"})
    assert stored is not None
    assert stored["managingOrganization"] == {"reference": "Organization/o1"}
    assert stored["generalPractitioner"] == [{"reference": "urn:uuid:missing"}]
    assert report.unresolved_references == 1
    assert report.counts == {"Patient": 1, "Organization": 1}
    assert stored_counts(db) == {"Patient": 1, "Organization": 1}


def test_rewriting_does_not_change_the_parsed_bundle() -> None:
    entries = bundle_entries(read_bundle(PATIENT))
    before = json.dumps(entries[3].resource, sort_keys=True)
    list(stored_documents(entries, reference_map(entries)))
    assert json.dumps(entries[3].resource, sort_keys=True) == before


def test_missing_id_is_derived_from_full_url_deterministically() -> None:
    bundle = {
        "resourceType": "Bundle",
        "entry": [
            {"fullUrl": "urn:uuid:1234", "resource": {"resourceType": "Patient"}},
            {"fullUrl": "http://x/Patient/9", "resource": {"resourceType": "Patient"}},
            {"resource": {"resourceType": "Observation", "status": "final"}},
            {"request": {"method": "DELETE", "url": "Patient/1"}},
        ],
    }
    first = bundle_entries(bundle)
    again = bundle_entries(json.loads(json.dumps(bundle)))

    assert [e.resource_id for e in first] == [e.resource_id for e in again]
    assert first[0].resource_id == "1234"
    assert first[1].resource_id == derived_id("http://x/Patient/9", {}) != "http://x/Patient/9"
    assert len(first) == 3
    documents = list(stored_documents(first, reference_map(first)))
    assert documents[0][1] == {"resourceType": "Patient", "id": "1234", "_id": "1234"}


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("{not json", "not valid JSON"),
        ('{"resourceType": "Patient", "id": "p"}', "not a FHIR Bundle (resourceType 'Patient')"),
        ("[1, 2]", "not a FHIR Bundle (resourceType None)"),
        ('{"resourceType": "Bundle", "entry": {}}', "Bundle.entry is not a list"),
    ],
)
def test_malformed_files_are_refused_with_a_reason(
    tmp_path: Path, content: str, reason: str
) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(BundleError) as info:
        read_bundle(path)
    assert str(info.value).startswith(reason)


def test_entry_without_valid_resource_type_is_refused() -> None:
    bundle = {"resourceType": "Bundle", "entry": [{"resource": {"resourceType": "x.y"}}]}
    with pytest.raises(BundleError, match="^entry 0 has no valid resourceType$"):
        bundle_entries(bundle)


def test_find_bundle_files_walks_folders_recursively(tmp_path: Path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    for name in ("a/one.json", "a/b/two.json", "a/notes.txt", "three.json"):
        (tmp_path / name).write_text("{}")

    found = find_bundle_files([str(tmp_path / "a"), str(tmp_path / "three.json")])
    assert found == [tmp_path / "a/b/two.json", tmp_path / "a/one.json", tmp_path / "three.json"]


def test_loading_the_sample_writes_every_resource_once_in_batches(
    tmp_path: Path, db: Database[Any], recorder: UpdateRecorder, admin: MongoClient[Any]
) -> None:
    bad = tmp_path / "broken.json"
    bad.write_text("{")
    before = update_opcount(admin)

    report = load_into(db, [*find_bundle_files([str(SAMPLE)]), bad], 1000, progress=False)

    assert report.counts == SAMPLE_COUNTS
    assert stored_counts(db) == SAMPLE_COUNTS
    assert report.skipped == [(str(bad), report.skipped[0][1])]
    assert report.skipped[0][1].startswith("not valid JSON")
    assert report.unresolved_references == 0
    # Every entry went to the server as one upsert by _id, in unordered batches of <= 1000.
    batches = batches_for(recorder, db)
    assert all(size <= 1000 and ordered is False for _, size, ordered in batches)
    assert Counter(name for name, _, _ in batches)["Observation"] == 3
    statements = [op for name, _, ops, _ in recorder.updates if name == db.name for op in ops]
    assert len(statements) == sum(size for _, size, _ in batches) == SAMPLE_ENTRIES
    assert all(op["q"] == {"_id": op["u"]["_id"]} and op["upsert"] is True for op in statements)
    # The server counts each statement it ran; nothing else in this module updates meanwhile.
    assert update_opcount(admin) - before == SAMPLE_ENTRIES


def test_loading_twice_leaves_one_copy(db: Database[Any]) -> None:
    files = [HOSPITALS, PRACTITIONERS, PATIENT]

    first = load_into(db, files, 50, progress=False)
    second = load_into(db, files, 50, progress=False)

    assert first.counts == second.counts
    # The patient bundle repeats one hospital and one practitioner of the other two files.
    assert sum(stored_counts(db).values()) == 102 + 102 + 191 - 2
    assert sum(first.counts.values()) == 393
    assert stored_counts(db) == first.counts

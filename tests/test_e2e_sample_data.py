"""The whole shipped Synthea sample loaded with `phidb load-fhir` into a real server, then
queried as an application would: counts, a patient by SSN with and without an index, a
patient's claims, EOBs per insurer, a $lookup, and a patient's latest observations. The
expected answers are computed here from the shipped JSON, not taken from phidb."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pymongo import ASCENDING, DESCENDING
from pymongo.database import Database

from harness import PhidbServer, make_server
from phidb.certs import DevCerts

SAMPLE = Path(__file__).resolve().parent.parent / "phidb" / "sample_data" / "synthea-r4"
SSN_SYSTEM = "http://hl7.org/fhir/sid/us-ssn"
URN = "urn:uuid:"
# Resource counts stated in /work/shared/data/README.md for fhir/synthea-r4 (each resource
# once; Organization and Practitioner are listed there with their repeats across files).
README_COUNTS = {
    "Patient": 40,
    "Observation": 2998,
    "Claim": 711,
    "ExplanationOfBenefit": 586,
    "Encounter": 586,
    "Immunization": 482,
    "Procedure": 219,
    "Condition": 170,
    "DiagnosticReport": 143,
    "MedicationRequest": 125,
    "CarePlan": 54,
    "Goal": 25,
    "AllergyIntolerance": 8,
    "ImagingStudy": 5,
}


@dataclass
class Sample:
    """The shipped bundles as plain JSON: resources by type and id, references resolved."""

    by_type: dict[str, dict[str, dict[str, Any]]]
    by_patient_file: dict[str, list[dict[str, Any]]]  # patient id -> resources of its file

    def of_type(self, resource_type: str) -> list[dict[str, Any]]:
        return list(self.by_type[resource_type].values())


def resolve(value: Any, references: dict[str, str]) -> Any:
    if isinstance(value, dict):
        return {
            k: references.get(v, v)
            if k == "reference" and isinstance(v, str)
            else resolve(v, references)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [resolve(v, references) for v in value]
    return value


def read_sample() -> Sample:
    bundles = [json.loads(p.read_text(encoding="utf-8")) for p in sorted(SAMPLE.glob("*.json"))]
    references = {}
    for bundle in bundles:
        for entry in bundle["entry"]:
            resource = entry["resource"]
            references[entry["fullUrl"]] = f"{resource['resourceType']}/{resource['id']}"
    by_type: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    by_patient_file: dict[str, list[dict[str, Any]]] = {}
    for bundle in bundles:
        resources = [resolve(entry["resource"], references) for entry in bundle["entry"]]
        for resource in resources:
            by_type[resource["resourceType"]][resource["id"]] = resource
        patients = [r["id"] for r in resources if r["resourceType"] == "Patient"]
        if patients:
            by_patient_file[patients[0]] = resources
    return Sample(dict(by_type), by_patient_file)


@pytest.fixture(scope="module")
def sample() -> Sample:
    return read_sample()


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory, certs: DevCerts) -> Iterator[PhidbServer]:
    srv = make_server(tmp_path_factory.mktemp("sample"), certs).start()
    srv.create_admin()
    assert srv.admin_password is not None
    env = {**os.environ, "PHIDB_URI": srv.uri(srv.admin_user, srv.admin_password)}
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "phidb", "load-fhir", str(SAMPLE), "--db", "fhir", "--quiet"]
        + ["--tlsCAFile", str(srv.certs.ca)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    elapsed = time.perf_counter() - started
    assert done.returncode == 0, done.stderr
    print(f"\nphidb load-fhir loaded the whole sample in {elapsed:.1f} s:\n{done.stdout}")
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def fhir(loaded: PhidbServer) -> Database[Any]:
    return loaded.admin_client()["fhir"]


def ssn_of(patient: dict[str, Any]) -> str:
    values = [i["value"] for i in patient["identifier"] if i.get("system") == SSN_SYSTEM]
    assert len(values) == 1
    value: str = values[0]
    return value


def stored(resource: dict[str, Any]) -> dict[str, Any]:
    return {**resource, "_id": resource["id"]}


def test_every_collection_holds_each_resource_once(fhir: Database[Any], sample: Sample) -> None:
    expected = {name: len(ids) for name, ids in sample.by_type.items()}
    for name, count in README_COUNTS.items():
        assert expected[name] == count, name

    assert sorted(fhir.list_collection_names()) == sorted(expected)
    actual = {name: fhir[name].count_documents({}) for name in expected}
    assert actual == expected
    assert sum(actual.values()) == 6356


def test_a_patient_is_found_by_ssn_with_and_without_an_index(
    fhir: Database[Any], sample: Sample
) -> None:
    patient = sample.of_type("Patient")[7]
    ssn = ssn_of(patient)
    by_value = {"identifier.value": ssn}
    by_system_and_value = {"identifier": {"$elemMatch": {"system": SSN_SYSTEM, "value": ssn}}}

    assert list(fhir["Patient"].find(by_value)) == [stored(patient)]
    assert list(fhir["Patient"].find(by_system_and_value)) == [stored(patient)]
    scan = fhir["Patient"].find(by_value).explain()["queryPlanner"]["winningPlan"]
    assert "COLLSCAN" in repr(scan)

    fhir["Patient"].create_index("identifier.value")
    try:
        assert list(fhir["Patient"].find(by_value)) == [stored(patient)]
        assert list(fhir["Patient"].find(by_system_and_value)) == [stored(patient)]
        plan = fhir["Patient"].find(by_value).explain()["queryPlanner"]["winningPlan"]
        ixscan = find_stage(plan, "IXSCAN")
        assert ixscan["indexName"] == "identifier.value_1"
        assert ixscan["keyPattern"] == {"identifier.value": 1}
        assert ixscan["isMultiKey"] is True
        assert ixscan["indexBounds"] == {"identifier.value": [f'["{ssn}", "{ssn}"]']}
        plan = fhir["Patient"].find(by_system_and_value).explain()["queryPlanner"]["winningPlan"]
        assert find_stage(plan, "IXSCAN")["indexName"] == "identifier.value_1"
        # Another identifier's value, in an element that is not the SSN's.
        other = next(i["value"] for i in patient["identifier"] if i["system"] != SSN_SYSTEM)
        crossed = {"identifier": {"$elemMatch": {"system": SSN_SYSTEM, "value": other}}}
        assert list(fhir["Patient"].find(crossed)) == []
        assert fhir["Patient"].count_documents({"identifier.value": other}) == 1
        assert fhir["Patient"].find_one(by_value, {"_id": 1}) == {"_id": patient["id"]}
        fhir["Patient"].create_index("gender")
        scalar = fhir["Patient"].find({"gender": "male"}).explain()["queryPlanner"]["winningPlan"]
        assert find_stage(scalar, "IXSCAN")["isMultiKey"] is False
    finally:
        fhir["Patient"].drop_index("identifier.value_1")
        fhir["Patient"].drop_index("gender_1")


def find_stage(plan: dict[str, Any], name: str) -> dict[str, Any]:
    while plan.get("stage") != name:
        assert "inputStage" in plan, f"no {name} in {plan}"
        plan = plan["inputStage"]
    return plan


def test_the_claims_of_a_patient_are_those_of_its_bundle(
    fhir: Database[Any], sample: Sample
) -> None:
    patient_id, resources = sorted(sample.by_patient_file.items())[3]
    expected = sorted(
        (stored(r) for r in resources if r["resourceType"] == "Claim"), key=lambda c: c["_id"]
    )
    assert expected

    claims = list(fhir["Claim"].find({"patient.reference": f"Patient/{patient_id}"}).sort("_id"))

    assert claims == expected


def test_eob_counts_per_insurer_category(fhir: Database[Any], sample: Sample) -> None:
    expected = Counter(eob["insurer"]["display"] for eob in sample.of_type("ExplanationOfBenefit"))
    assert set(expected) <= {"private", "medicaid", "medicare", "no_insurance"}

    groups = fhir["ExplanationOfBenefit"].aggregate(
        [
            {"$group": {"_id": "$insurer.display", "count": {"$sum": 1}}},
            {"$sort": {"count": -1, "_id": 1}},
        ]
    )

    assert list(groups) == [
        {"_id": name, "count": count}
        for name, count in sorted(expected.items(), key=lambda kv: (-kv[1], kv[0]))
    ]


def test_count_documents_with_a_filter(fhir: Database[Any], sample: Sample) -> None:
    women = sum(p["gender"] == "female" for p in sample.of_type("Patient"))
    heights = sum(
        any(c["code"] == "8302-2" for c in o["code"]["coding"])
        for o in sample.of_type("Observation")
    )
    assert 0 < women < 40 and heights > 0

    assert fhir["Patient"].count_documents({"gender": "female"}) == women
    assert fhir["Observation"].count_documents({"code.coding.code": "8302-2"}) == heights
    assert fhir["Observation"].count_documents({"code.coding.code": "8302-2"}, limit=3) == 3


def test_lookup_joins_claims_to_their_patient(fhir: Database[Any], sample: Sample) -> None:
    chosen = sorted(sample.by_patient_file)[:2]
    references = [f"Patient/{pid}" for pid in chosen]
    expected = sorted(
        (c["id"], c["patient"]["reference"].removeprefix("Patient/"))
        for c in sample.of_type("Claim")
        if c["patient"]["reference"] in references
    )

    joined = list(
        fhir["Claim"].aggregate(
            [
                {"$match": {"patient.reference": {"$in": references}}},
                {
                    "$addFields": {
                        "patientId": {"$arrayElemAt": [{"$split": ["$patient.reference", "/"]}, 1]}
                    }
                },
                {
                    "$lookup": {
                        "from": "Patient",
                        "localField": "patientId",
                        "foreignField": "_id",
                        "as": "who",
                    }
                },
                {"$project": {"who._id": 1, "who.name": 1}},
                {"$sort": {"_id": 1}},
            ]
        )
    )

    assert sorted((j["_id"], j["who"][0]["_id"]) for j in joined) == expected
    patients = sample.by_type["Patient"]
    for j in joined:
        assert j["who"] == [
            {"_id": j["who"][0]["_id"], "name": patients[j["who"][0]["_id"]]["name"]}
        ]


def test_latest_observations_of_a_patient_sorted_by_date(
    fhir: Database[Any], sample: Sample
) -> None:
    counts = Counter(o["subject"]["reference"] for o in sample.of_type("Observation"))
    reference, total = counts.most_common(1)[0]
    assert total > 50
    mine = [o for o in sample.of_type("Observation") if o["subject"]["reference"] == reference]
    by_id = sorted(mine, key=lambda o: o["id"])
    newest_first = sorted(by_id, key=lambda o: o.get("effectiveDateTime", ""), reverse=True)

    cursor = (
        fhir["Observation"]
        .find({"subject.reference": reference})
        .sort([("effectiveDateTime", DESCENDING), ("_id", ASCENDING)])
        .limit(50)
    )

    assert list(cursor) == [stored(o) for o in newest_first[:50]]
    dates = [
        o["effectiveDateTime"]
        for o in fhir["Observation"]
        .find({"subject.reference": reference}, {"effectiveDateTime": 1, "_id": 0})
        .sort("effectiveDateTime", DESCENDING)
        .limit(50)
    ]
    assert dates == [o["effectiveDateTime"] for o in newest_first[:50]]

"""The benchmark's data: the shipped Synthea patients scaled up to N patients.

Copy `i` of a template patient gets new ids for the patient and every resource of its bundle,
a new SSN and a new name; references between its resources follow the new ids, while the
shared hospital and practitioner resources (Organization, Practitioner) are stored once.
Documents look like phidb's FHIR loader stores them: `_id` is the resource id and references
read `ResourceType/id`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SSN_SYSTEM = "http://hl7.org/fhir/sid/us-ssn"
SHARED_TYPES = frozenset({"Organization", "Practitioner", "Location", "PractitionerRole"})
# The collections the workloads read; the "queried" profile stores only these.
QUERIED_TYPES = frozenset({"Patient", "Observation"})
_UUID = re.compile(r"[0-9a-f]{8}(-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})")
_GIVEN = ["Ava", "Ben", "Cleo", "Dev", "Eli", "Fay", "Gus", "Hana", "Ivo", "Jia", "Kai", "Lea"]
_FAMILY = ["Abbott", "Baker", "Chen", "Diaz", "Evans", "Ford", "Gupta", "Hale", "Ito", "Jones"]


@dataclass
class Template:
    """One shipped patient: its resources as JSON text with references already rewritten."""

    patient_id: str
    ssn: str
    resources: list[tuple[str, str]]  # (resourceType, JSON text)


@dataclass
class Corpus:
    templates: list[Template]
    shared: list[tuple[str, dict[str, Any]]] = field(default_factory=list)


@dataclass(frozen=True)
class PatientKeys:
    """What the workloads need to address patient `i` without reading the data back."""

    patient_id: str
    ssn: str


def default_sample_dir() -> Path:
    return Path(__file__).resolve().parents[2] / "phidb" / "sample_data" / "synthea-r4"


def read_corpus(sample_dir: Path | None = None) -> Corpus:
    """Parse the shipped bundles once into templates (one per patient) and shared resources."""
    folder = sample_dir or default_sample_dir()
    bundles = [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))]

    references: dict[str, str] = {}
    for bundle in bundles:
        for entry in bundle.get("entry", []):
            resource = entry["resource"]
            if "fullUrl" in entry:
                references[entry["fullUrl"]] = f"{resource['resourceType']}/{resource['id']}"

    corpus = Corpus(templates=[])
    shared_seen: set[str] = set()
    for bundle in bundles:
        patient: dict[str, Any] | None = None
        resources: list[tuple[str, dict[str, Any]]] = []
        for entry in bundle.get("entry", []):
            document = _rewrite(entry["resource"], references)
            document["_id"] = document["id"]
            kind = document["resourceType"]
            if kind in SHARED_TYPES:
                if document["_id"] not in shared_seen:
                    shared_seen.add(document["_id"])
                    corpus.shared.append((kind, document))
                continue
            if kind == "Patient":
                patient = document
            resources.append((kind, document))
        if patient is None:
            continue
        ssn = next(i["value"] for i in patient["identifier"] if i.get("system") == SSN_SYSTEM)
        corpus.templates.append(
            Template(patient["id"], ssn, [(k, json.dumps(d)) for k, d in resources])
        )
    return corpus


def _rewrite(value: Any, references: dict[str, str]) -> Any:
    if isinstance(value, dict):
        return {
            k: references.get(v, v)
            if k == "reference" and isinstance(v, str)
            else _rewrite(v, references)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_rewrite(v, references) for v in value]
    return value


def patient_keys(i: int, corpus: Corpus) -> PatientKeys:
    template = corpus.templates[i % len(corpus.templates)]
    return PatientKeys(_new_id(i, template.patient_id), ssn_for(i))


def ssn_for(i: int) -> str:
    """A unique SSN-shaped string for patient `i` (in the 9xx range, never issued)."""
    return f"{900 + i // 1_000_000 % 100:03d}-{i // 10_000 % 100:02d}-{i % 10_000:04d}"


def _new_id(i: int, old: str) -> str:
    # The template ids are random UUIDs, so replacing the first group keeps copies distinct.
    return f"{i:08x}{old[8:]}"


def patient_documents(
    i: int, corpus: Corpus, types: frozenset[str] | None = None
) -> Iterator[tuple[str, str]]:
    """(resourceType, JSON text) of copy `i`: its Patient first, then its other resources."""
    template = corpus.templates[i % len(corpus.templates)]
    prefix = f"{i:08x}"
    shared = {d["_id"] for _, d in corpus.shared}

    def renumber(match: re.Match[str]) -> str:
        old = match.group(0)
        return old if old in shared else prefix + match.group(1)

    for kind, text in template.resources:
        if types is not None and kind not in types:
            continue
        text = _UUID.sub(renumber, text)
        if kind == "Patient":
            text = _personalise(json.loads(text), i, template.ssn)
        yield kind, text


def _personalise(patient: dict[str, Any], i: int, old_ssn: str) -> str:
    for identifier in patient.get("identifier", []):
        if identifier.get("value") == old_ssn:
            identifier["value"] = ssn_for(i)
    given = _GIVEN[i % len(_GIVEN)]
    family = f"{_FAMILY[i // len(_GIVEN) % len(_FAMILY)]}{i}"
    patient["name"] = [{"use": "official", "family": family, "given": [given]}]
    patient.pop("text", None)  # the narrative names the template patient
    patient.setdefault("meta", {})["lastUpdated"] = "2024-01-01T00:00:00.000000+00:00"
    return json.dumps(patient)


def generate(
    n_patients: int, corpus: Corpus, types: frozenset[str] | None = None
) -> Iterator[tuple[str, str]]:
    """Every document of an `n_patients` data set: the shared resources, then each copy's."""
    for kind, document in corpus.shared:
        if types is None or kind in types:
            yield kind, json.dumps(document)
    for i in range(n_patients):
        yield from patient_documents(i, corpus, types)

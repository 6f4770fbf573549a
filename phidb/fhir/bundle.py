"""FHIR Bundles as documents to store: ids, collections, and references between resources.

Pure functions, no database: a Bundle's entries become `(collection, document)` pairs whose
`urn:uuid:` references are rewritten to the stored form `ResourceType/id`.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# FHIR resource type names are letters only, which also makes them safe collection names.
_RESOURCE_TYPE = re.compile(r"[A-Z][A-Za-z]{0,63}")
_URN_UUID = "urn:uuid:"


class BundleError(ValueError):
    """A file that is not a FHIR Bundle phidb can load; the message says why."""


@dataclass(frozen=True)
class Entry:
    full_url: str | None
    resource_type: str
    resource_id: str
    resource: dict[str, Any]

    @property
    def reference(self) -> str:
        """How other resources refer to this one once stored: `ResourceType/id`."""
        return f"{self.resource_type}/{self.resource_id}"


def read_bundle(path: str | Path) -> dict[str, Any]:
    """Parse a file as a FHIR Bundle, or raise BundleError naming what is wrong."""
    try:
        with open(path, encoding="utf-8") as f:
            document = json.load(f)
    except OSError as e:
        raise BundleError(f"cannot read: {e.strerror}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise BundleError(f"not valid JSON ({e})") from None

    if not isinstance(document, dict) or document.get("resourceType") != "Bundle":
        kind = document.get("resourceType") if isinstance(document, dict) else None
        raise BundleError(f"not a FHIR Bundle (resourceType {kind!r})")
    if not isinstance(document.get("entry", []), list):
        raise BundleError("Bundle.entry is not a list")
    return document


def bundle_entries(bundle: Mapping[str, Any]) -> list[Entry]:
    """The Bundle's resources with their ids settled; entries without a resource are skipped."""
    entries = []
    for position, raw in enumerate(bundle.get("entry", [])):
        if not isinstance(raw, dict) or "resource" not in raw:
            continue
        resource = raw["resource"]
        full_url = raw.get("fullUrl")
        if not isinstance(resource, dict):
            raise BundleError(f"entry {position} has a resource that is not an object")
        resource_type = resource.get("resourceType")
        if not isinstance(resource_type, str) or not _RESOURCE_TYPE.fullmatch(resource_type):
            raise BundleError(f"entry {position} has no valid resourceType")
        if full_url is not None and not isinstance(full_url, str):
            raise BundleError(f"entry {position} has a fullUrl that is not a string")

        resource_id = resource.get("id")
        if not isinstance(resource_id, str) or not resource_id:
            resource_id = derived_id(full_url, resource)
        entries.append(Entry(full_url, resource_type, resource_id, resource))
    return entries


def derived_id(full_url: str | None, resource: Mapping[str, Any]) -> str:
    """A deterministic id for a resource without one, so loading twice finds the same record.

    A `urn:uuid:` fullUrl already is an id; another fullUrl is hashed to a name-based UUID; with
    neither, the resource's own content is hashed.
    """
    if full_url is not None and full_url.startswith(_URN_UUID) and len(full_url) > len(_URN_UUID):
        return full_url[len(_URN_UUID) :]
    if full_url:
        return str(uuid.uuid5(uuid.NAMESPACE_URL, full_url))
    canonical = json.dumps(resource, sort_keys=True, separators=(",", ":")).encode()
    return str(uuid.UUID(bytes=hashlib.sha256(canonical).digest()[:16], version=5))


def reference_map(entries: list[Entry]) -> dict[str, str]:
    """fullUrl -> `ResourceType/id` for every entry that has a fullUrl."""
    return {e.full_url: e.reference for e in entries if e.full_url}


def stored_documents(
    entries: list[Entry], references: Mapping[str, str]
) -> Iterator[tuple[str, dict[str, Any], int]]:
    """(collection, document with `_id`, references left unresolved) for each entry."""
    for entry in entries:
        unresolved = [0]
        document = _rewrite(entry.resource, references, unresolved)
        document["id"] = entry.resource_id
        document["_id"] = entry.resource_id
        yield entry.resource_type, document, unresolved[0]


def _rewrite(value: Any, references: Mapping[str, str], unresolved: list[int]) -> Any:
    """A copy of `value` whose `reference` strings that name a fullUrl now name the resource."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if key == "reference" and isinstance(item, str):
                out[key] = references.get(item, item)
                if item.startswith(_URN_UUID) and item not in references:
                    unresolved[0] += 1
            else:
                out[key] = _rewrite(item, references, unresolved)
        return out
    if isinstance(value, list):
        return [_rewrite(item, references, unresolved) for item in value]
    return value

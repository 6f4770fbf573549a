"""Load FHIR Bundle files into a MongoDB-compatible server with pymongo.

Two passes: the first reads every file for its fullUrls (so a patient bundle can point at the
hospital and practitioner bundles), the second rewrites references and upserts by `_id`.
"""

from __future__ import annotations

import sys
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pymongo
from pymongo.errors import BulkWriteError, PyMongoError
from tqdm import tqdm

from phidb.fhir.bundle import (
    BundleError,
    bundle_entries,
    read_bundle,
    reference_map,
    stored_documents,
)

DEFAULT_BATCH_SIZE = 1000


class LoadError(RuntimeError):
    """The server could not be reached or refused the writes; the message says which."""


@dataclass
class LoadReport:
    counts: dict[str, int] = field(default_factory=dict)  # collection -> distinct ids loaded
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file, reason)
    unresolved_references: int = 0


def find_bundle_files(paths: list[str]) -> list[Path]:
    """The files named, and every *.json under the folders named, in a stable order."""
    found: list[Path] = []
    for name in paths:
        path = Path(name)
        found.extend(sorted(path.rglob("*.json")) if path.is_dir() else [path])
    return found


def load_paths(
    paths: list[str],
    uri: str,
    db_name: str,
    *,
    tls_ca_file: str | None = None,
    tls_certificate_key_file: str | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: bool = True,
) -> LoadReport:
    """Load every Bundle found under `paths` into database `db_name` at `uri`."""
    options: dict[str, Any] = {"serverSelectionTimeoutMS": 10_000}
    if tls_ca_file is not None:
        options.update(tls=True, tlsCAFile=tls_ca_file)
    if tls_certificate_key_file is not None:
        options.update(tls=True, tlsCertificateKeyFile=tls_certificate_key_file)

    client: pymongo.MongoClient[dict[str, Any]] = pymongo.MongoClient(uri, **options)
    try:
        client.admin.command("ping")
        return load_into(client[db_name], find_bundle_files(paths), batch_size, progress)
    except BulkWriteError as e:
        first = (e.details.get("writeErrors") or [{}])[0]
        raise LoadError(
            f"the server refused a write: {first.get('errmsg', e)} (code {first.get('code')})"
        ) from None
    except PyMongoError as e:
        raise LoadError(f"cannot load into {db_name}: {e}") from None
    finally:
        client.close()


def load_into(db: Any, files: list[Path], batch_size: int, progress: bool) -> LoadReport:
    """Upsert every resource of `files` into `db` (a pymongo Database), one collection a type."""
    report = LoadReport()
    references: dict[str, str] = {}
    readable: list[Path] = []
    total = 0
    for path in files:
        try:
            entries = bundle_entries(read_bundle(path))
        except BundleError as e:
            report.skipped.append((str(path), str(e)))
            continue
        references.update(reference_map(entries))
        readable.append(path)
        total += len(entries)

    # Patient bundles repeat the hospital and practitioner they cite, so count distinct ids.
    loaded: dict[str, set[str]] = defaultdict(set)
    pending: dict[str, list[pymongo.ReplaceOne[dict[str, Any]]]] = defaultdict(list)
    with tqdm(total=total, unit="res", file=sys.stderr, disable=not progress) as bar:
        for path in readable:
            # Re-read rather than hold every parsed file from the first pass in memory.
            try:
                entries = bundle_entries(read_bundle(path))
            except BundleError as e:  # changed or removed since the first pass
                report.skipped.append((str(path), str(e)))
                continue
            # A bundle's own fullUrls win over another file's, as FHIR resolves them locally.
            local = {**references, **reference_map(entries)}
            for collection, document, unresolved in stored_documents(entries, local):
                report.unresolved_references += unresolved
                loaded[collection].add(document["_id"])
                pending[collection].append(
                    pymongo.ReplaceOne({"_id": document["_id"]}, document, upsert=True)
                )
                if len(pending[collection]) >= batch_size:
                    db[collection].bulk_write(pending.pop(collection), ordered=False)
            bar.update(len(entries))
        for collection, ops in pending.items():
            db[collection].bulk_write(ops, ordered=False)

    report.counts = {collection: len(ids) for collection, ids in loaded.items()}
    return report

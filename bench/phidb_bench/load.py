"""Load a generated data set into a system, in parallel processes, then build its indexes.

MongoDB-protocol systems get `insert_many` batches of 1,000 through pymongo; PostgreSQL gets
`COPY` into one `(id text primary key, doc jsonb)` table per resource type. Indexes are built
after the load, as an expert would for a bulk import:

- PostgreSQL: the primary key on `id`; a GIN `jsonb_path_ops` index on `doc->'identifier'`
  (serves `@>` containment, the exact equivalent of matching any `identifier.value`); a
  B-tree on `(doc->'subject'->>'reference', doc->>'effectiveDateTime' DESC)` for a patient's
  latest Observations.
- MongoDB protocol: `_id`; `{"identifier.value": 1}`; `{"subject.reference": 1,
  "effectiveDateTime": -1}`.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from phidb_bench import dataset
from phidb_bench.runner import context
from phidb_bench.servers import Target
from phidb_bench.workloads import BULK_COLLECTION

LOAD_BATCH = 1000

PG_INDEXES = (
    """CREATE INDEX patient_identifier ON "Patient" """
    """USING gin ((doc->'identifier') jsonb_path_ops)""",
    """CREATE INDEX observation_subject_date ON "Observation" """
    """((doc->'subject'->>'reference'), (doc->>'effectiveDateTime') DESC)""",
)
MONGO_INDEXES: tuple[tuple[str, list[tuple[str, int]], str], ...] = (
    ("Patient", [("identifier.value", 1)], "identifier_value"),
    ("Observation", [("subject.reference", 1), ("effectiveDateTime", -1)], "subject_date"),
)


@dataclass
class LoadResult:
    documents: int
    load_s: float
    index_s: float


def _load_part(
    target: Target,
    corpus: dataset.Corpus,
    part: int,
    parts: int,
    n_patients: int,
    types: frozenset[str] | None,
) -> int:
    written = 0
    if target.protocol == "postgres":
        import psycopg

        with psycopg.connect(target.pg_conninfo()) as conn:
            by_type: dict[str, list[tuple[str, str]]] = defaultdict(list)

            def flush(kind: str) -> None:
                rows = by_type.pop(kind, [])
                with conn.cursor().copy(f'COPY "{kind}" (id, doc) FROM STDIN') as copy:
                    for row in rows:
                        copy.write_row(row)
                conn.commit()

            for kind, text in _documents(corpus, part, parts, n_patients, types):
                by_type[kind].append((_id_of(text), text))
                written += 1
                if len(by_type[kind]) >= LOAD_BATCH * 5:
                    flush(kind)
            for kind in list(by_type):
                flush(kind)
        return written

    import json

    from pymongo import MongoClient

    client: MongoClient[Any] = MongoClient(target.mongo_uri(), **target.mongo_options(1))
    try:
        db = client[target.dbname]
        pending: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for kind, text in _documents(corpus, part, parts, n_patients, types):
            pending[kind].append(json.loads(text))
            written += 1
            if len(pending[kind]) >= LOAD_BATCH:
                db[kind].insert_many(pending.pop(kind), ordered=False)
        for kind, docs in pending.items():
            db[kind].insert_many(docs, ordered=False)
    finally:
        client.close()
    return written


def _id_of(text: str) -> str:
    # Every generated document starts with resourceType then id; read the id without parsing.
    start = text.index('"id": "') + 7
    return text[start : text.index('"', start)]


def _documents(
    corpus: dataset.Corpus, part: int, parts: int, n_patients: int, types: frozenset[str] | None
) -> Any:
    if part == 0:
        for kind, document in corpus.shared:
            if types is None or kind in types:
                yield kind, json_dumps(document)
    for i in range(part, n_patients, parts):
        yield from dataset.patient_documents(i, corpus, types)


def json_dumps(document: dict[str, Any]) -> str:
    import json

    return json.dumps(document)


def _part_entry(
    args: tuple[Target, dataset.Corpus, int, int, int, frozenset[str] | None],
) -> int:
    return _load_part(*args)


def create_schema(target: Target, kinds: list[str]) -> None:
    if target.protocol != "postgres":
        return
    import psycopg

    with psycopg.connect(target.pg_conninfo(), autocommit=True) as conn:
        for kind in sorted(set(kinds) | {BULK_COLLECTION}):
            conn.execute(f'CREATE TABLE "{kind}" (id text PRIMARY KEY, doc jsonb NOT NULL)')


def build_indexes(target: Target) -> None:
    if target.protocol == "postgres":
        import psycopg

        with psycopg.connect(target.pg_conninfo(), autocommit=True) as conn:
            for statement in PG_INDEXES:
                conn.execute(statement)
            conn.execute("ANALYZE")
        return
    from pymongo import MongoClient

    client: MongoClient[Any] = MongoClient(target.mongo_uri(), **target.mongo_options(1))
    try:
        for collection, keys, name in MONGO_INDEXES:
            client[target.dbname][collection].create_index(keys, name=name)
    finally:
        client.close()


def load(
    target: Target,
    corpus: dataset.Corpus,
    n_patients: int,
    types: frozenset[str] | None,
    parallel: int = 2,
) -> LoadResult:
    """Load `n_patients` patients (and the shared resources) with `parallel` processes."""
    corpus_kinds = {kind for t in corpus.templates for kind, _ in t.resources}
    kinds = sorted(
        (corpus_kinds | set(dataset.SHARED_TYPES)) if types is None else corpus_kinds & types
    )
    create_schema(target, kinds)
    began = time.monotonic()
    ctx = context()
    jobs = [(target, corpus, k, parallel, n_patients, types) for k in range(parallel)]
    with ctx.Pool(parallel) as pool:
        written = sum(pool.map(_part_entry, jobs))
    loaded = time.monotonic()
    build_indexes(target)
    return LoadResult(written, loaded - began, time.monotonic() - loaded)

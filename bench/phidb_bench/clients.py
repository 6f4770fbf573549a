"""What an application sends: pymongo against the MongoDB-protocol systems, psycopg 3 with
prepared statements against PostgreSQL. One session per client thread.

Each session's `run(op, i, counter)` performs one operation on patient `i` and returns how many
documents it moved; a missing result raises, so a silently empty answer never counts as work.
"""

from __future__ import annotations

import json
from typing import Any, Protocol

from phidb_bench.servers import Target
from phidb_bench.workloads import BULK_BATCH, BULK_COLLECTION, KeySpace, timestamp


class Session(Protocol):
    def run(self, op: str, i: int, counter: int) -> int: ...

    def close(self) -> None: ...


class BulkDocuments:
    """Batches of Observations with fresh ids, from a few template documents."""

    def __init__(self, templates: list[str], tag: str) -> None:
        self.bodies = [json.loads(t) for t in templates]
        for body in self.bodies:
            body.pop("_id", None)
            body.pop("id", None)
        self.texts = [json.dumps(b)[1:] for b in self.bodies]  # without the opening brace
        self.tag = tag

    def ids(self, counter: int) -> list[str]:
        return [f"bulk-{self.tag}-{counter}-{k}" for k in range(BULK_BATCH)]

    def documents(self, counter: int) -> list[dict[str, Any]]:
        n = len(self.bodies)
        return [{"_id": x, "id": x, **self.bodies[k % n]} for k, x in enumerate(self.ids(counter))]

    def json_texts(self, counter: int) -> tuple[list[str], list[str]]:
        ids = self.ids(counter)
        n = len(self.texts)
        texts = [f'{{"_id": "{x}", "id": "{x}", {self.texts[k % n]}' for k, x in enumerate(ids)]
        return ids, texts


class MongoSession:
    """pymongo calls an application would make; the MongoClient is shared by a process."""

    def __init__(self, client: Any, keys: KeySpace, bulk: BulkDocuments) -> None:
        db = client["fhir"]
        self.patients = db["Patient"]
        self.observations = db["Observation"]
        self.bulk_coll = db[BULK_COLLECTION]
        self.keys = keys
        self.bulk = bulk

    def run(self, op: str, i: int, counter: int) -> int:
        if op == "read":
            found = self.patients.find_one({"_id": self.keys.patient_id(i)})
            if found is None:
                raise LookupError("point read found nothing")
            return 1
        if op == "indexed":
            patient = self.patients.find_one({"identifier.value": self.keys.ssn(i)})
            if patient is None:
                raise LookupError("SSN lookup found nothing")
            latest = list(
                self.observations.find({"subject.reference": f"Patient/{patient['_id']}"})
                .sort("effectiveDateTime", -1)
                .limit(50)
            )
            if not latest:
                raise LookupError("the patient has no Observations")
            return 1 + len(latest)
        if op == "update":
            result = self.patients.update_one(
                {"_id": self.keys.patient_id(i)}, {"$set": {"meta.lastUpdated": timestamp(counter)}}
            )
            if result.matched_count != 1:
                raise LookupError("update matched nothing")
            return 1
        if op == "bulk":
            inserted = self.bulk_coll.insert_many(self.bulk.documents(counter), ordered=False)
            return len(inserted.inserted_ids)
        raise ValueError(op)

    def close(self) -> None:
        pass


PG_SQL = {
    "read": 'SELECT doc FROM "Patient" WHERE id = %s',
    "ssn": """SELECT id, doc FROM "Patient" WHERE doc->'identifier' @> %s::jsonb LIMIT 1""",
    "latest": (
        """SELECT doc FROM "Observation" WHERE doc->'subject'->>'reference' = %s"""
        """ ORDER BY doc->>'effectiveDateTime' DESC LIMIT 50"""
    ),
    "update": (
        """UPDATE "Patient" SET doc = jsonb_set(doc, '{meta,lastUpdated}', to_jsonb(%s::text))"""
        """ WHERE id = %s"""
    ),
    "bulk": (
        f'INSERT INTO "{BULK_COLLECTION}" (id, doc) SELECT * FROM unnest(%s::text[], %s::jsonb[])'
    ),
}


class PgSession:
    """psycopg 3, one connection a client, autocommit, every statement prepared."""

    def __init__(self, target: Target, keys: KeySpace, bulk: BulkDocuments) -> None:
        import psycopg

        self.conn = psycopg.connect(target.pg_conninfo(), autocommit=True, prepare_threshold=0)
        self.keys = keys
        self.bulk = bulk
        self.backend_pid = self.conn.info.backend_pid

    def _one(self, sql: str, params: tuple[Any, ...]) -> Any:
        return self.conn.execute(sql, params, prepare=True).fetchone()

    def run(self, op: str, i: int, counter: int) -> int:
        if op == "read":
            if self._one(PG_SQL["read"], (self.keys.patient_id(i),)) is None:
                raise LookupError("point read found nothing")
            return 1
        if op == "indexed":
            probe = json.dumps([{"value": self.keys.ssn(i)}])
            row = self._one(PG_SQL["ssn"], (probe,))
            if row is None:
                raise LookupError("SSN lookup found nothing")
            latest = self.conn.execute(
                PG_SQL["latest"], (f"Patient/{row[0]}",), prepare=True
            ).fetchall()
            if not latest:
                raise LookupError("the patient has no Observations")
            return 1 + len(latest)
        if op == "update":
            cur = self.conn.execute(
                PG_SQL["update"], (timestamp(counter), self.keys.patient_id(i)), prepare=True
            )
            if cur.rowcount != 1:
                raise LookupError("update matched nothing")
            return 1
        if op == "bulk":
            ids, texts = self.bulk.json_texts(counter)
            cur = self.conn.execute(PG_SQL["bulk"], (ids, texts), prepare=True)
            return cur.rowcount
        raise ValueError(op)

    def close(self) -> None:
        self.conn.close()

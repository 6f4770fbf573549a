"""`bench/run --smoke` still runs end to end and writes the JSON the issue specifies.

Skipped when PostgreSQL 15 with pgaudit is not installed (scripts/test installs `postgresql`
and `postgresql-15-pgaudit`), or on purpose with PHIDB_BENCH_SMOKE=0.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PG = Path("/usr/lib/postgresql/15/bin/postgres")
PGAUDIT = Path("/usr/lib/postgresql/15/lib/pgaudit.so")
FIELDS = {
    "name": str,
    "system": str,
    "client": str,
    "clients": int,
    "ops_per_s": float,
    "p50_ms": float,
    "p95_ms": float,
    "p99_ms": float,
    "server_cpu_us_per_op": float,
    "client_cpu_us_per_op": float,
    "server_rss_mb": float,
}
NUMBERS = [k for k, kind in FIELDS.items() if kind is float]

needs_postgres = pytest.mark.skipif(
    not (PG.exists() and PGAUDIT.exists()) or os.environ.get("PHIDB_BENCH_SMOKE") == "0",
    reason="PostgreSQL 15 and postgresql-15-pgaudit are not installed (or PHIDB_BENCH_SMOKE=0)",
)


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("bench") / "smoke.json"
    result = subprocess.run(
        [str(ROOT / "bench" / "run"), "--smoke", "--json", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=280,
        env={**os.environ, "PHIDB_BENCH_PYTHON": sys.executable},
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return json.loads(out.read_text())


@pytest.mark.timeout(300)
@needs_postgres
def test_smoke_json_has_machine_commit_and_rows(smoke: dict) -> None:
    assert smoke["machine"]["cores"] >= 1
    assert len(smoke["commit"]) >= 40
    assert smoke["failures"] == []
    for row in smoke["workloads"]:
        for field, kind in FIELDS.items():
            assert isinstance(row[field], kind), (field, row)


@needs_postgres
def test_smoke_numbers_are_positive_and_ordered(smoke: dict) -> None:
    for row in smoke["workloads"]:
        for field in NUMBERS:
            assert math.isfinite(row[field]) and row[field] > 0, (field, row)
        assert row["p50_ms"] <= row["p95_ms"] <= row["p99_ms"], row


@needs_postgres
def test_smoke_covers_every_workload_on_phidb_postgres_and_the_lean_client(smoke: dict) -> None:
    seen = {(r["system"], r["client"], r["name"]) for r in smoke["workloads"]}
    workloads = {"bulk_load", "point_read", "indexed_query", "update", "mixed_50_50", "mixed_95_5"}
    for workload in workloads:
        assert ("phidb", "pymongo", workload) in seen
        assert ("phidb-insecure", "pymongo", workload) in seen
        assert ("postgres", "psycopg", workload) in seen
    for workload in workloads - {"bulk_load"}:
        assert ("phidb", "raw", workload) in seen


@needs_postgres
def test_smoke_records_secantusdb_as_measured_or_unavailable_with_a_reason(smoke: dict) -> None:
    measured = {r["name"] for r in smoke["workloads"] if r["system"] == "secantusdb"}
    reasons = [u["reason"] for u in smoke["unavailable"] if u["system"] == "secantusdb"]
    assert measured == {
        "bulk_load",
        "point_read",
        "indexed_query",
        "update",
        "mixed_50_50",
        "mixed_95_5",
    } or (not measured and reasons and all(reasons))

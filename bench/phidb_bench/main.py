"""The benchmark's driver: start each system in turn, load it, run its rows, stop it.

One system runs at a time, so none steals CPU from another's measurement. A system that
cannot be installed or started is recorded under `unavailable` with the reason, and the run
goes on with the others.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

from phidb_bench import dataset, procstat
from phidb_bench.load import load
from phidb_bench.plan import Plan, build_plan
from phidb_bench.runner import Measured, RowSpec, percentile, run_row
from phidb_bench.servers import (
    Certs,
    Features,
    Target,
    Unavailable,
    make_certs,
    project_root,
    start_phidb,
    start_postgres,
    start_secantus,
)
from phidb_bench.workloads import KeySpace


class Results:
    def __init__(self, plan: Plan) -> None:
        self.data: dict[str, Any] = {
            "machine": machine(),
            "commit": commit(),
            "mode": plan.mode,
            "resources": plan.resources,
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "workloads": [],
            "loads": [],
            "connections_rss": [],
            "unavailable": [],
            "failures": [],
            "profile": None,
        }

    def row(self, **row: Any) -> None:
        self.data["workloads"].append(row)
        print(
            f"  {row['system']:>24} {row['client']:>7} {row['name']:>13} c={row['clients']:<3}"
            f" {row['ops_per_s']:>9.0f}/s p50={row['p50_ms']:.2f} p99={row['p99_ms']:.2f}ms"
            f" srv={row['server_cpu_us_per_op']:.0f}us cli={row['client_cpu_us_per_op']:.0f}us"
            f" rss={row['server_rss_mb']:.0f}MB"
            + (f" errors={row['errors']}" if row["errors"] else ""),
            flush=True,
        )

    def fail(self, what: str, error: str) -> None:
        print(f"  FAILED {what}: {error}", flush=True)
        self.data["failures"].append({"what": what, "error": error})


def machine() -> dict[str, Any]:
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    memory_kb = 0
    with contextlib.suppress(OSError):
        memory_kb = int(Path("/proc/meminfo").read_text().split()[1])
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "memory_gb": round(memory_kb / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
    }


def commit() -> str:
    root = project_root()
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "phidb"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("-dirty" if dirty else "")


def clients_for(target: Target, raw: bool) -> list[str]:
    if target.protocol == "postgres":
        return ["psycopg"]
    return ["pymongo", "raw"] if raw else ["pymongo"]


def record(
    results: Results, target: Target, spec: RowSpec, m: Measured, patients: int, phase: str
) -> None:
    latencies = sorted(m.latencies_ms)
    bulk = spec.workload == "bulk_load"
    units = m.documents if bulk else m.ops
    per_unit = 1e6 / units if units else float("nan")
    results.row(
        name=spec.workload,
        system=target.system,
        client=spec.client,
        clients=spec.clients,
        patients=patients,
        phase=phase,
        unit="document" if bulk else "operation",
        ops_per_s=units / m.window_s,
        p50_ms=percentile(latencies, 50),
        p95_ms=percentile(latencies, 95),
        p99_ms=percentile(latencies, 99),
        server_cpu_us_per_op=m.server_cpu_s * per_unit,
        client_cpu_us_per_op=m.client_cpu_s * per_unit,
        server_rss_mb=m.server_rss_mb,
        errors=m.errors,
        first_error=m.first_error,
        window_s=m.window_s,
    )


def row_spec(plan: Plan, workload: str, client: str, clients: int) -> RowSpec:
    if workload != "bulk_load":
        return RowSpec(workload, client, clients, plan.warmup_s, plan.duration_s)
    # Every client has a 1,000-document batch in flight: the window must hold several
    # rounds of them, and the warm-up must fill the pipeline first.
    window = max(plan.duration_s, 2.0, 0.4 * clients)
    return RowSpec(workload, client, clients, window / 2, window)


def run_rows(
    results: Results,
    plan: Plan,
    target: Target,
    keys: KeySpace,
    bulk: list[str],
    workloads: list[str],
    clients: list[int],
    phase: str,
    raw: bool = True,
) -> None:
    for workload in workloads:
        for client in clients_for(target, raw):
            if client == "raw" and workload == "bulk_load":
                continue  # insert batches are client-encoded work; pymongo already shows them
            for n in clients:
                spec = row_spec(plan, workload, client, n)
                try:
                    m = run_row(target, spec, keys, bulk)
                except Exception as e:
                    results.fail(f"{target.system}/{client}/{workload}/{n}", f"{e}")
                    continue
                if m.ops == 0:
                    results.fail(
                        f"{target.system}/{client}/{workload}/{n}",
                        f"no operation completed ({m.errors} errors; {m.first_error})",
                    )
                    continue
                record(results, target, spec, m, keys.n_patients, phase)


def start(
    stack: contextlib.ExitStack, system: str, work: Path, certs: Certs, features: Features
) -> Target:
    if system == "postgres":
        return start_postgres(stack, work, certs)
    if system == "secantusdb":
        return start_secantus(stack, work, certs)
    return start_phidb(stack, work, certs, features)


def measure_open_connections(results: Results, target: Target, n: int, patients: int) -> None:
    """Server memory with `n` idle authenticated connections open."""
    held: list[Any] = []
    try:
        if target.protocol == "postgres":
            import psycopg

            held = [psycopg.connect(target.pg_conninfo()) for _ in range(n)]
        else:
            from phidb_bench.rawwire import RawConnection

            held = [RawConnection(target) for _ in range(n)]
        time.sleep(0.3)
        rss = procstat.snapshot(target.pid).pss_mb
        results.data["connections_rss"].append(
            {"system": target.system, "patients": patients, "connections": n, "server_rss_mb": rss}
        )
        print(f"  {target.system}: {n} open connections, server {rss:.0f} MB", flush=True)
    except Exception as e:
        results.fail(f"{target.system}/{n} connections", str(e))
    finally:
        for c in held:
            with contextlib.suppress(Exception):
                c.close()


def bench_system(
    results: Results,
    plan: Plan,
    work: Path,
    certs: Certs,
    corpus: dataset.Corpus,
    system: str,
    features: Features,
    patients: int,
    workloads: list[str],
    clients: list[int],
    phase: str,
) -> None:
    label = features.name() if system == "phidb" else system
    print(f"== {label}, {patients} patients ({phase})", flush=True)
    folder = work / f"{phase}-{patients}"
    folder.mkdir(exist_ok=True)
    types = dataset.QUERIED_TYPES if plan.resources == "queried" else None
    keys = KeySpace(patients, tuple(t.patient_id for t in corpus.templates))
    bulk = [text for kind, text in corpus.templates[0].resources if kind == "Observation"][:100]
    with contextlib.ExitStack() as stack:
        try:
            target = start(stack, system, folder, certs, features)
        except Unavailable as e:
            results.data["unavailable"].append({"system": label, "reason": str(e)})
            print(f"  unavailable: {e}", flush=True)
            return
        try:
            loaded = load(target, corpus, patients, types, plan.load_parallel)
        except Exception as e:
            results.fail(f"{label} load", f"{type(e).__name__}: {e}")
            return
        rss = procstat.snapshot(target.pid).pss_mb
        results.data["loads"].append(
            {
                "system": label,
                "patients": patients,
                "documents": loaded.documents,
                "load_s": loaded.load_s,
                "documents_per_s": loaded.documents / loaded.load_s,
                "index_s": loaded.index_s,
                "server_rss_mb": rss,
            }
        )
        print(
            f"  loaded {loaded.documents} documents in {loaded.load_s:.1f}s"
            f" ({loaded.documents / loaded.load_s:.0f}/s), indexes {loaded.index_s:.1f}s",
            flush=True,
        )
        run_rows(results, plan, target, keys, bulk, workloads, clients, phase, raw=plan.raw)
        if phase != "tax":
            measure_open_connections(results, target, plan.open_connections, patients)
        if phase == "main" and label == "phidb" and plan.profile_s > 0:
            from phidb_bench.profile import profile_phidb

            results.data["profile"] = profile_phidb(
                target, keys, bulk, plan.profile_s, work / "profile"
            )


def run(plan: Plan, work: Path) -> Results:
    results = Results(plan)
    certs = make_certs(work / "pki")
    corpus = dataset.read_corpus()
    all_on = Features()
    for system in plan.systems:
        bench_system(
            results,
            plan,
            work,
            certs,
            corpus,
            system,
            all_on,
            plan.patients,
            plan.workloads,
            plan.clients,
            "main",
        )
    for features in plan.tax_features:
        bench_system(
            results,
            plan,
            work,
            certs,
            corpus,
            "phidb",
            features,
            plan.patients,
            plan.workloads,
            plan.tax_clients,
            "tax",
        )
    scale_workloads: list[str] = [w for w in ("point_read", "indexed_query") if w in plan.workloads]
    for size in plan.scale_sizes:
        for system in plan.systems:
            bench_system(
                results,
                plan,
                work,
                certs,
                corpus,
                system,
                all_on,
                size,
                scale_workloads,
                [plan.scale_clients],
                "scale",
            )
    return results


def _terminate(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)  # unwinds every ExitStack, so the servers stop


def main(argv: list[str] | None = None) -> int:
    plan, args = build_plan(argv)
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGHUP, _terminate)
    work = Path(tempfile.mkdtemp(prefix="phidb-bench-"))
    work.chmod(0o755)  # PostgreSQL runs as postgres and must reach its folder
    began = time.monotonic()
    try:
        results = run(plan, work)
    except Exception:
        traceback.print_exc()
        return 1
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    results.data["elapsed_s"] = time.monotonic() - began
    if args.json:
        Path(args.json).write_text(json.dumps(results.data, indent=1, default=str) + "\n")
    if args.markdown or args.plots:
        from phidb_bench.report import write_markdown, write_plots

        if args.plots:
            write_plots(results.data, Path(args.plots))
        if args.markdown:
            Path(args.markdown).write_text(write_markdown(results.data))
    print(f"done in {results.data['elapsed_s']:.0f}s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

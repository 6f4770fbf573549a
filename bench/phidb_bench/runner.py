"""Run one workload row: client processes with threads, a warm-up, then a measured window.

The coordinator waits until every client is connected, fixes the window on the shared
monotonic clock, and snapshots the server's process tree at both ends while every connection
is still open. Operations count, with their latency, if they complete inside the window.
"""

from __future__ import annotations

import math
import multiprocessing as mp
import random
import threading
import time
from array import array
from dataclasses import dataclass
from typing import Any

from phidb_bench import procstat
from phidb_bench.servers import Target
from phidb_bench.workloads import KeySpace, choose


@dataclass(frozen=True)
class RowSpec:
    workload: str
    client: str  # "pymongo", "psycopg" or "raw"
    clients: int
    warmup_s: float
    duration_s: float


@dataclass
class Measured:
    ops: int
    documents: int
    errors: int
    first_error: str | None
    latencies_ms: list[float]
    client_cpu_s: float
    server_cpu_s: float
    server_rss_mb: float
    window_s: float


def processes_for(clients: int) -> int:
    """Several client processes, so one client's GIL never caps the load (at most 4)."""
    return min(clients, 4)


def _make_session(
    target: Target, client: str, keys: KeySpace, bulk_templates: list[str], tag: str, seed: int
) -> Any:
    from phidb_bench.clients import BulkDocuments, PgSession

    bulk = BulkDocuments(bulk_templates, tag)
    if client == "psycopg":
        return PgSession(target, keys, bulk)
    if client == "raw":
        from phidb_bench.rawwire import RawSession

        return RawSession(target, keys, bulk, seed)
    raise ValueError(client)


def _worker(
    index: int,
    threads: int,
    target: Target,
    spec: RowSpec,
    keys: KeySpace,
    bulk_templates: list[str],
    inbox: Any,
    outbox: Any,
) -> None:
    sessions: list[Any] = []
    shared_client: Any = None
    try:
        if spec.client == "pymongo":
            from pymongo import MongoClient

            from phidb_bench.clients import BulkDocuments, MongoSession

            shared_client = MongoClient(target.mongo_uri(), **target.mongo_options(threads))
            for t in range(threads):
                bulk = BulkDocuments(bulk_templates, f"{index}.{t}.{random.getrandbits(32)}")
                sessions.append(MongoSession(shared_client, keys, bulk))
        else:
            for t in range(threads):
                tag = f"{index}.{t}.{random.getrandbits(32)}"
                sessions.append(
                    _make_session(target, spec.client, keys, bulk_templates, tag, index * 64 + t)
                )
        # Open the pool's connections before the clock starts: one warm call a thread.
        warm = [threading.Thread(target=_warm, args=(s, keys)) for s in sessions]
        for w in warm:
            w.start()
        for w in warm:
            w.join()
    except Exception as e:
        outbox.put(("failed", index, f"{type(e).__name__}: {e}"))
        return
    outbox.put(("ready", index, [getattr(s, "backend_pid", None) for s in sessions]))

    start, window_from, window_to = inbox.get()
    results: list[tuple[array[float], int, int, int, str | None]] = [
        (array("d"), 0, 0, 0, None) for _ in sessions
    ]
    cpu_marks: list[float] = []

    def mark_cpu() -> None:
        for moment in (window_from, window_to):
            time.sleep(max(0.0, moment - time.monotonic()))
            cpu_marks.append(time.process_time())

    def drive(slot: int, session: Any) -> None:
        rng = random.Random(index * 1000 + slot)
        latencies: array[float] = array("d")
        ops = documents = errors = 0
        first_error: str | None = None
        counter = rng.getrandbits(40)
        time.sleep(max(0.0, start - time.monotonic()))
        while True:
            began = time.monotonic()
            if began >= window_to:
                break
            op = choose(spec.workload, rng)
            counter += 1
            try:
                moved = session.run(op, keys.pick(rng), counter)
            except Exception as e:
                errors += 1
                first_error = first_error or f"{op}: {type(e).__name__}: {e}"
                if errors > 100:
                    break
                continue
            ended = time.monotonic()
            # An operation counts where it completes: a 1,000-document batch may outlast
            # a short window's start, and still belongs to its throughput.
            if window_from <= ended <= window_to:
                latencies.append((ended - began) * 1000.0)
                ops += 1
                documents += moved
        results[slot] = (latencies, ops, documents, errors, first_error)

    marker = threading.Thread(target=mark_cpu)
    marker.start()
    drivers = [threading.Thread(target=drive, args=(k, s)) for k, s in enumerate(sessions)]
    for d in drivers:
        d.start()
    for d in drivers:
        d.join()
    marker.join()

    latencies: array[float] = array("d")
    for r in results:
        latencies.extend(r[0])
    errors = [r[4] for r in results if r[4]]
    outbox.put(
        (
            "done",
            index,
            latencies.tobytes(),
            sum(r[1] for r in results),
            sum(r[2] for r in results),
            sum(r[3] for r in results),
            errors[0] if errors else None,
            cpu_marks[1] - cpu_marks[0] if len(cpu_marks) == 2 else 0.0,
        )
    )
    inbox.get()  # keep the connections open until the coordinator has read the server
    for s in sessions:
        s.close()
    if shared_client is not None:
        shared_client.close()


def _warm(session: Any, keys: KeySpace) -> None:
    session.run("read", 0, 0)


def context() -> Any:
    """A forkserver that has imported the drivers once, so each client process starts fast."""
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(
        ["phidb_bench.runner", "phidb_bench.clients", "phidb_bench.rawwire", "pymongo", "psycopg"]
    )
    return ctx


def run_row(target: Target, spec: RowSpec, keys: KeySpace, bulk_templates: list[str]) -> Measured:
    ctx = context()
    n_proc = processes_for(spec.clients)
    per_proc = [
        spec.clients // n_proc + (1 if k < spec.clients % n_proc else 0) for k in range(n_proc)
    ]
    outbox = ctx.Queue()
    inboxes = [ctx.Queue() for _ in range(n_proc)]
    procs = [
        ctx.Process(
            target=_worker,
            args=(k, per_proc[k], target, spec, keys, bulk_templates, inboxes[k], outbox),
            daemon=True,
        )
        for k in range(n_proc)
    ]
    for p in procs:
        p.start()
    try:
        return _coordinate(target, spec, procs, inboxes, outbox)
    finally:
        for q in inboxes:
            q.put(None)
        for p in procs:
            p.join(30)
            if p.is_alive():
                p.kill()


def _coordinate(
    target: Target, spec: RowSpec, procs: list[Any], inboxes: list[Any], outbox: Any
) -> Measured:
    for _ in procs:
        message = outbox.get(timeout=180)
        if message[0] == "failed":
            raise RuntimeError(f"a client could not start: {message[2]}")

    start = time.monotonic() + 0.2
    window_from = start + spec.warmup_s
    window_to = window_from + spec.duration_s
    for q in inboxes:
        q.put((start, window_from, window_to))

    time.sleep(max(0.0, window_from - time.monotonic()))
    before = procstat.snapshot(target.pid)
    time.sleep(max(0.0, window_to - time.monotonic()))
    after = procstat.snapshot(target.pid)
    measured_s = spec.duration_s

    latencies: list[float] = []
    ops = documents = errors = 0
    first_error: str | None = None
    client_cpu = 0.0
    for _ in procs:
        message = outbox.get(timeout=120 + spec.duration_s)
        if message[0] == "failed":
            raise RuntimeError(message[2])
        _, _, raw, n, docs, errs, err, cpu = message
        chunk: array[float] = array("d")
        chunk.frombytes(raw)
        latencies.extend(chunk)
        ops += n
        documents += docs
        errors += errs
        first_error = first_error or err
        client_cpu += cpu
    return Measured(
        ops,
        documents,
        errors,
        first_error,
        latencies,
        client_cpu,
        procstat.cpu_between(before, after),
        after.pss_mb,
        measured_s,
    )


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(q / 100.0 * len(sorted_values)))
    return sorted_values[rank - 1]

"""Durability and concurrency: every acknowledged write survives kill -9, and a long scan
does not hold up other threads' reads and writes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from phidb.storage.sqlite import SQLiteEngine

_CHILD = textwrap.dedent(
    """
    import sys
    from phidb.storage.sqlite import SQLiteEngine
    engine = SQLiteEngine(sys.argv[1], bytes.fromhex(sys.argv[2]))
    engine.create_indexes("test", "c", [{"key": {"n": 1}}])
    i = 0
    while True:
        engine.insert("test", "c", [{"_id": i, "n": i, "pad": "x" * 200}], ordered=True)
        print("acked", i, flush=True)
        i += 1
    """
)


def test_acknowledged_inserts_survive_kill_9(tmp_path):
    path, key = str(tmp_path / "db"), os.urandom(32)
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, path, key.hex()],
        stdout=subprocess.PIPE,
        text=True,
    )
    acked = []
    try:
        assert child.stdout is not None
        deadline = time.monotonic() + 60
        while len(acked) < 40 and time.monotonic() < deadline:
            line = child.stdout.readline()
            if not line:
                break
            acked.append(int(line.split()[1]))
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    # Lines printed before the kill but not read yet are acknowledged writes too.
    assert child.stdout is not None
    acked.extend(int(line.split()[1]) for line in child.stdout.read().splitlines())
    assert len(acked) >= 40

    engine = SQLiteEngine(path, key)
    try:
        stored = {doc["_id"] for _, doc in engine.find("test", "c", {})}
        assert set(acked) <= stored
        last = acked[-1]
        assert [d["_id"] for _, d in engine.find("test", "c", {"n": last})] == [last]
    finally:
        engine.close()


@pytest.fixture
def engine(tmp_path):
    eng = SQLiteEngine(str(tmp_path / "db"), os.urandom(32))
    yield eng
    eng.close()


def test_slow_scan_does_not_block_other_threads(engine):
    engine.insert("test", "big", [{"_id": i, "v": i} for i in range(3000)], ordered=True)
    engine.insert("test", "small", [{"_id": 0, "n": 0}], ordered=True)
    scan_started = threading.Event()
    scan_done = threading.Event()
    scanned = []

    def slow_scan() -> None:
        for _, doc in engine.find("test", "big", {"v": {"$gte": 0}}):
            scanned.append(doc["_id"])
            scan_started.set()
            time.sleep(0.0005)  # a slow consumer: the scan takes well over a second
        scan_done.set()

    scanner = threading.Thread(target=slow_scan)
    scanner.start()
    assert scan_started.wait(10)

    # Meanwhile another thread reads and writes quickly, in a different and the same
    # collection.
    latencies = []
    for i in range(1, 51):
        t0 = time.monotonic()
        engine.insert("test", "small", [{"_id": i, "n": i}], ordered=True)
        engine.insert("test", "big", [{"_id": 10_000 + i, "v": -i}], ordered=True)
        assert [d["n"] for _, d in engine.find("test", "small", {"_id": i})] == [i]
        latencies.append(time.monotonic() - t0)
    assert not scan_done.is_set(), "the scan should still be running"
    scanner.join(60)
    assert scan_done.is_set()
    assert max(latencies) < 0.5
    assert scanned[:3000] == list(range(3000))
    assert engine.count("test", "small") == 51


def test_concurrent_writers_from_many_threads(engine):
    engine.create_indexes("test", "c", [{"key": {"t": 1, "i": 1}}])
    errors = []

    def writer(t: int) -> None:
        try:
            for i in range(50):
                result = engine.insert("test", "c", [{"_id": f"{t}-{i}", "t": t, "i": i}], True)
                assert result.errors == []
                assert engine.count("test", "c") >= 1
        except Exception as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(t,)) for t in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert engine.count("test", "c") == 300
    assert len(list(engine.find("test", "c", {"t": 3}))) == 50

"""Where phidb's time goes: py-spy samples the server while a mixed workload runs.

Idle samples (threads waiting for work) are set aside; the report lists, as % of the busy
samples, the functions most often on top of the stack (own time) and the phidb functions most often
anywhere on it (inclusive time), as `file:function`.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path
from typing import Any

from phidb_bench.runner import RowSpec, run_row
from phidb_bench.servers import Target
from phidb_bench.workloads import KeySpace

TOP = 15
# Leaves where a thread waits rather than works (py-spy attributes a C-level wait to the
# Python frame that called it): the worker pool's queue and the event loop's epoll.
IDLE_LEAVES = ("concurrent/futures/thread.py:_worker", "asyncio/runners.py:Runner.run")


def py_spy() -> str | None:
    local = Path(sys.executable).parent / "py-spy"
    return str(local) if local.exists() else shutil.which("py-spy")


def profile_phidb(
    target: Target, keys: KeySpace, bulk: list[str], seconds: float, folder: Path
) -> dict[str, Any]:
    """Sample `target` for `seconds` under mixed_50_50 at 8 pymongo clients."""
    exe = py_spy()
    if exe is None:
        return {"error": "py-spy is not installed"}
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / "phidb.collapsed"
    command = [
        exe,
        "record",
        "--pid",
        str(target.pid),
        "--duration",
        str(int(seconds)),
        "--rate",
        "200",
        "--format",
        "raw",
        "--output",
        str(out),
    ]
    done: dict[str, Any] = {}

    def record() -> None:
        done["run"] = subprocess.run(command, capture_output=True, text=True)

    sampler = threading.Thread(target=record)
    sampler.start()
    spec = RowSpec("mixed_50_50", "pymongo", 8, 0.5, seconds + 1.0)
    run_row(target, spec, keys, bulk)
    sampler.join()
    result = done["run"]
    if result.returncode != 0 or not out.exists():
        return {"error": f"py-spy failed: {result.stderr.strip()[-500:]}"}
    return summarise(out.read_text(), workload="mixed_50_50", clients=8, seconds=seconds)


def _frame_name(frame: str) -> str:
    # py-spy's raw frames read "function (path/to/file.py:line)".
    name, _, where = frame.rpartition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    short = path.split("site-packages/")[-1]
    if "/phidb/" in short:
        short = "phidb/" + short.split("/phidb/", 1)[1]
    return f"{short}:{name}"


def summarise(collapsed: str, **about: Any) -> dict[str, Any]:
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = idle = 0
    for line in collapsed.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [f for f in stack.split(";") if "(" in f]
        total += count
        if not frames:
            continue
        leaf = _frame_name(frames[-1])
        if leaf in IDLE_LEAVES or leaf.endswith(("selectors.py:select", "threading.py:wait")):
            idle += count
            continue
        own[leaf] += count
        for name in {_frame_name(f) for f in frames}:
            if name.startswith("phidb/"):
                inclusive[name] += count
    busy = total - idle
    if busy == 0:
        return {"error": "py-spy recorded no samples", **about}

    def top(counter: Counter[str]) -> list[dict[str, Any]]:
        return [
            {"function": name, "percent": round(100.0 * n / busy, 1)}
            for name, n in counter.most_common(TOP)
        ]

    return {
        **about,
        "samples": total,
        "busy_samples": busy,  # the percentages below are of these
        "own": top(own),
        "inclusive_phidb": top(inclusive),
    }

"""What a server costs, read from /proc: CPU time and memory of a process and its descendants.

CPU is utime+stime of every process in the tree, plus the children's time the root has reaped
(cutime+cstime), so a worker that exits between two snapshots is still counted. Memory is
the sum of PSS (proportional set size), so PostgreSQL's shared buffers count once, not once
per backend.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Snapshot:
    cpu_s: dict[int, float]  # pid -> CPU seconds of that process (the root with its reaped)
    pss_mb: float


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name may hold spaces and parentheses; the fields follow the last ')'.
    return raw[raw.rindex(")") + 2 :].split()


def descendants(root: int) -> list[int]:
    """`root` and every process below it."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        fields = _stat_fields(int(entry))
        if fields is not None:
            children.setdefault(int(fields[1]), []).append(int(entry))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def cpu_seconds(pid: int, include_reaped: bool) -> float | None:
    fields = _stat_fields(pid)
    if fields is None:
        return None
    # After ')' the fields are numbered from 3 (state): utime is 14, stime 15, cutime 16.
    ticks = int(fields[11]) + int(fields[12])
    if include_reaped:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / _TICKS


def pss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def snapshot(root: int) -> Snapshot:
    cpu: dict[int, float] = {}
    memory = 0.0
    for pid in descendants(root):
        seconds = cpu_seconds(pid, include_reaped=pid == root)
        if seconds is not None:
            cpu[pid] = seconds
            memory += pss_mb(pid)
    return Snapshot(cpu, memory)


def cpu_between(before: Snapshot, after: Snapshot) -> float:
    """CPU seconds the tree spent between two snapshots; processes born since count from 0."""
    return sum(seconds - before.cpu_s.get(pid, 0.0) for pid, seconds in after.cpu_s.items())

"""The workloads: which operations each one sends, and the keys they address.

An operation is one of `read` (a Patient by `_id`), `indexed` (a Patient by SSN, then that
patient's 50 latest Observations), `update` (`$set` of `meta.lastUpdated` by `_id`) and
`bulk` (one insert of 1,000 Observations). A workload is a mix of them.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

BULK_BATCH = 1000
BULK_COLLECTION = "BulkObservation"

MIXES: dict[str, tuple[tuple[str, float], ...]] = {
    "bulk_load": (("bulk", 1.0),),
    "point_read": (("read", 1.0),),
    "indexed_query": (("indexed", 1.0),),
    "update": (("update", 1.0),),
    "mixed_50_50": (("read", 0.5), ("update", 0.5)),
    "mixed_95_5": (("read", 0.95), ("update", 0.05)),
}
WORKLOADS = tuple(MIXES)


def choose(workload: str, rng: random.Random) -> str:
    mix = MIXES[workload]
    if len(mix) == 1:
        return mix[0][0]
    draw = rng.random()
    for op, share in mix:
        draw -= share
        if draw < 0:
            return op
    return mix[-1][0]


@dataclass(frozen=True)
class KeySpace:
    """Patient ids and SSNs of a generated data set, computed rather than read back."""

    n_patients: int
    template_ids: tuple[str, ...]

    def patient_id(self, i: int) -> str:
        return f"{i:08x}{self.template_ids[i % len(self.template_ids)][8:]}"

    def ssn(self, i: int) -> str:
        return f"{900 + i // 1_000_000 % 100:03d}-{i // 10_000 % 100:02d}-{i % 10_000:04d}"

    def pick(self, rng: random.Random) -> int:
        return rng.randrange(self.n_patients)


def timestamp(counter: int) -> str:
    """A fixed-width ISO timestamp that differs for every update, so none is a no-op."""
    seconds, micros = divmod(counter, 1_000_000)
    minutes, second = divmod(seconds, 60)
    hours, minute = divmod(minutes, 60)
    return f"2025-01-01T{hours % 24:02d}:{minute:02d}:{second:02d}.{micros:06d}+00:00"

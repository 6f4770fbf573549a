"""Expressions that could grow without bound from a small input end quickly with MongoDB's
result or error, and never stall the server for another client that pings meanwhile."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from pymongo import MongoClient
from pymongo.errors import OperationFailure

from harness import PhidbServer

DB = "e2e_expression_limits"


class Pinger:
    """Pings the server every 50 ms from its own client and records the slowest round trip."""

    def __init__(self, client: MongoClient[Any]) -> None:
        self.client = client
        self.slowest = 0.0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        while not self.stop.is_set():
            started = time.monotonic()
            self.client.admin.command("ping")
            self.slowest = max(self.slowest, time.monotonic() - started)
            self.stop.wait(0.05)

    def __enter__(self) -> Pinger:
        self.client.admin.command("ping")
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(5)


def _aggregate(admin: MongoClient[Any], project: dict[str, Any]) -> Any:
    reply = admin[DB].command(
        {
            "aggregate": 1,
            "pipeline": [{"$documents": [{}]}, {"$project": {"_id": 0, "r": project}}],
            "cursor": {},
            "maxTimeMS": 500,
        }
    )
    return reply["cursor"]["firstBatch"][0]["r"]


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ({"$pow": [10, 10_000_000]}, float("inf")),
        ({"$pow": [{"$toLong": 10}, {"$toLong": 10_000}]}, float("inf")),
        ({"$pow": [2, 62]}, 4611686018427387904),
    ],
)
def test_huge_powers_return_a_double_quickly_while_pings_stay_fast(
    server: PhidbServer, admin: MongoClient[Any], expression: Any, expected: Any
) -> None:
    with Pinger(server.admin_client()) as pinger:
        started = time.monotonic()
        assert _aggregate(admin, expression) == expected
        assert time.monotonic() - started < 2.0
    assert pinger.slowest < 1.0


@pytest.mark.parametrize(
    ("expression", "code"),
    [
        ({"$range": [0, 100_000_000]}, 146),
        (
            {
                "$reduce": {
                    "input": {"$range": [0, 64]},
                    "initialValue": "ab",
                    "in": {"$concat": ["$$value", "$$value"]},
                }
            },
            10334,
        ),
        (
            {
                "$reduce": {
                    "input": {"$range": [0, 4_000_000]},
                    "initialValue": 0,
                    "in": {"$add": ["$$value", "$$this"]},
                }
            },
            50,
        ),
    ],
)
def test_runaway_expressions_fail_with_mongodb_errors_while_pings_stay_fast(
    server: PhidbServer, admin: MongoClient[Any], expression: Any, code: int
) -> None:
    with Pinger(server.admin_client()) as pinger:
        started = time.monotonic()
        with pytest.raises(OperationFailure) as info:
            _aggregate(admin, expression)
        assert info.value.code == code
        assert time.monotonic() - started < 2.0
    assert pinger.slowest < 1.0


def test_expr_filter_with_a_huge_power_matches_quickly(
    server: PhidbServer, admin: MongoClient[Any]
) -> None:
    collection = admin[DB]["expr_pow"]
    collection.drop()
    collection.insert_one({"_id": 1})
    with Pinger(server.admin_client()) as pinger:
        started = time.monotonic()
        found = list(collection.find({"$expr": {"$gt": [{"$pow": [10, 5_000_000]}, 1]}}))
        assert found == [{"_id": 1}]
        assert time.monotonic() - started < 2.0
    assert pinger.slowest < 1.0


def test_out_before_the_last_stage_fails_with_40601(admin: MongoClient[Any]) -> None:
    with pytest.raises(OperationFailure) as info:
        list(admin[DB]["out_src"].aggregate([{"$out": "elsewhere"}, {"$match": {}}]))
    assert info.value.code == 40601
    assert "$out can only be the final stage in the pipeline" in str(info.value)

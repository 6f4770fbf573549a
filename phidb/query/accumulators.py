"""`$group` accumulators: each is a small object fed one evaluated value per document."""

from __future__ import annotations

import math
from typing import Any

from phidb.errors import MongoError
from phidb.query import limits, numbers
from phidb.query.expr_core import MISSING, compare, nullish
from phidb.query.order import sort_key


class Accumulator:
    def add(self, value: Any) -> None:
        raise NotImplementedError

    def result(self) -> Any:
        raise NotImplementedError


class Sum(Accumulator):
    def __init__(self) -> None:
        self.total: Any = 0

    def add(self, value: Any) -> None:
        if numbers.is_number(value):
            self.total = numbers.add(self.total, value)

    def result(self) -> Any:
        return self.total


class Count(Sum):
    def add(self, value: Any) -> None:
        super().add(1)


class Avg(Accumulator):
    def __init__(self) -> None:
        self.total: Any = 0
        self.count = 0

    def add(self, value: Any) -> None:
        if numbers.is_number(value):
            self.total = numbers.add(self.total, value)
            self.count += 1

    def result(self) -> Any:
        if self.count == 0:
            return None
        if numbers.kind(self.total) == numbers.DECIMAL:
            return numbers.divide(self.total, self.count)
        return numbers.to_float(self.total) / self.count


class Extreme(Accumulator):
    def __init__(self, sign: int) -> None:
        self.sign = sign
        self.best: Any = MISSING

    def add(self, value: Any) -> None:
        if nullish(value):
            return
        if self.best is MISSING or self.sign * compare(value, self.best) > 0:
            self.best = value

    def result(self) -> Any:
        return None if self.best is MISSING else self.best


class First(Accumulator):
    def __init__(self) -> None:
        self.value: Any = MISSING
        self.seen = False

    def add(self, value: Any) -> None:
        if not self.seen:
            self.value, self.seen = value, True

    def result(self) -> Any:
        return None if self.value is MISSING else self.value


class Last(First):
    def add(self, value: Any) -> None:
        self.value, self.seen = value, True


def _used_too_much(name: str) -> MongoError:
    return MongoError(
        limits.EXCEEDED_MEMORY_LIMIT,
        f"{name} used too much memory and cannot spill to disk. "
        f"Memory limit: {limits.MAX_GROUP_ARRAY_BYTES} bytes",
    )


class Push(Accumulator):
    def __init__(self) -> None:
        self.values: list[Any] = []
        self.bytes = 0

    def add(self, value: Any) -> None:
        if value is not MISSING:
            self.bytes += limits.value_size(value, limits.MAX_GROUP_ARRAY_BYTES)
            if self.bytes > limits.MAX_GROUP_ARRAY_BYTES:
                raise _used_too_much("$push")
            self.values.append(value)

    def result(self) -> Any:
        return self.values


class AddToSet(Accumulator):
    def __init__(self) -> None:
        self.values: dict[bytes, Any] = {}
        self.bytes = 0

    def add(self, value: Any) -> None:
        if value is MISSING:
            return
        size = limits.value_size(value, limits.MAX_GROUP_ARRAY_BYTES)
        key = sort_key(value)
        if key not in self.values:
            self.bytes += size
            if self.bytes > limits.MAX_GROUP_ARRAY_BYTES:
                raise _used_too_much("$addToSet")
            self.values[key] = value

    def result(self) -> Any:
        return list(self.values.values())


class MergeObjects(Accumulator):
    def __init__(self) -> None:
        self.merged: dict[str, Any] = {}

    def add(self, value: Any) -> None:
        if nullish(value):
            return
        if not isinstance(value, dict):
            raise MongoError(
                40400, "$mergeObjects requires object inputs, but input is of a different type"
            )
        self.merged.update(value)

    def result(self) -> Any:
        return self.merged


class StdDev(Accumulator):
    def __init__(self, sample: bool) -> None:
        self.sample = sample
        self.values: list[float] = []

    def add(self, value: Any) -> None:
        if numbers.is_number(value):
            self.values.append(numbers.to_float(value))

    def result(self) -> Any:
        n = len(self.values)
        if n == 0 or (self.sample and n == 1):
            return None
        mean = sum(self.values) / n
        squares = sum((v - mean) ** 2 for v in self.values)
        return math.sqrt(squares / (n - 1 if self.sample else n))


FACTORIES: dict[str, Any] = {
    "$sum": Sum,
    "$count": Count,
    "$avg": Avg,
    "$min": lambda: Extreme(-1),
    "$max": lambda: Extreme(1),
    "$first": First,
    "$last": Last,
    "$push": Push,
    "$addToSet": AddToSet,
    "$mergeObjects": MergeObjects,
    "$stdDevPop": lambda: StdDev(False),
    "$stdDevSamp": lambda: StdDev(True),
}


def make(name: str) -> Accumulator:
    factory = FACTORIES.get(name)
    if factory is None:
        raise MongoError(15952, f"unknown group operator '{name}'")
    accumulator = factory()
    assert isinstance(accumulator, Accumulator)
    return accumulator

"""Aggregation expressions evaluate as MongoDB's do: values, numeric types and error codes."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from bson.decimal128 import Decimal128
from bson.int64 import Int64
from bson.objectid import ObjectId
from hypothesis import given
from hypothesis import strategies as st

from phidb.errors import MongoError
from phidb.query.expressions import MISSING, evaluate, truthy

D = datetime.datetime(2024, 3, 5, 14, 7, 9, 123000)


def ev(expr: Any, doc: Any = None, **variables: Any) -> Any:
    return evaluate(expr, doc if doc is not None else {}, variables or None)


def code_of(expr: Any, doc: Any = None) -> int:
    with pytest.raises(MongoError) as info:
        ev(expr, doc)
    return info.value.code


def test_field_path_maps_over_arrays_and_skips_missing() -> None:
    doc = {"a": [{"b": 1}, {"c": 2}, {"b": [3]}, 7, [{"b": 4}]]}
    assert ev("$a.b", doc) == [1, [3], [4]]


def test_missing_field_is_missing_not_null() -> None:
    assert ev("$nope", {"a": 1}) is MISSING
    assert ev({"$eq": ["$nope", None]}, {}) is False
    assert ev({"$lt": ["$nope", None]}, {}) is True
    assert ev({"$ifNull": ["$nope", "x"]}, {}) == "x"


def test_root_current_remove_and_user_variables() -> None:
    doc = {"a": {"b": 2}}
    assert ev("$$ROOT", doc) == doc
    assert ev("$$CURRENT.a.b", doc) == 2
    assert ev("$$REMOVE", doc) is MISSING
    assert ev("$$x.y", doc, x={"y": 5}) == 5
    assert code_of("$$undefinedVar") == 17276


def test_array_literal_turns_missing_into_null() -> None:
    assert ev(["$nope", 1, "lit"], {}) == [None, 1, "lit"]


def test_object_expression_drops_missing_fields() -> None:
    assert ev({"x": "$a", "y": "$nope", "z": {"$literal": "$a"}}, {"a": 1}) == {"x": 1, "z": "$a"}


def test_unknown_operator_is_invalid_pipeline_operator() -> None:
    with pytest.raises(MongoError) as info:
        ev({"$foo": 1})
    assert info.value.code == 168
    assert info.value.message == "Unrecognized expression '$foo'"
    assert info.value.code_name == "InvalidPipelineOperator"


def test_comparisons_use_bson_cross_type_order() -> None:
    assert ev({"$eq": [1, 1.0]}) is True
    assert ev({"$gt": ["a", 5]}) is True  # strings sort after numbers
    assert ev({"$cmp": [2, 10]}) == -1
    assert ev({"$cmp": ["b", "a"]}) == 1
    assert ev({"$ne": [[1, 2], [1, 2]]}) is False
    assert code_of({"$eq": [1]}) == 16020


def test_boolean_operators_use_aggregation_truthiness() -> None:
    assert ev({"$and": [1, "x", []]}) is True
    assert ev({"$and": [1, 0]}) is False
    assert ev({"$or": [None, "$nope", 0.0]}) is False
    assert ev({"$not": [Decimal128("0")]}) is True
    assert truthy(MISSING) is False


def test_int32_addition_overflows_to_int64_then_double() -> None:
    result = ev({"$add": [2**31 - 1, 1]})
    assert result == 2**31 and isinstance(result, Int64)
    big = ev({"$add": [Int64(2**63 - 1), 1]})
    assert isinstance(big, float)
    assert ev({"$add": [1, 2]}) == 3 and type(ev({"$add": [1, 2]})) is int
    assert ev({"$add": [1, 2.5]}) == 3.5


def test_decimal_arithmetic_stays_decimal() -> None:
    assert ev({"$add": [Decimal128("1.1"), 1]}) == Decimal128("2.1")
    assert ev({"$multiply": [Decimal128("1.5"), 2]}) == Decimal128("3.0")


def test_add_and_subtract_dates() -> None:
    assert ev({"$add": [D, 1000]}) == D + datetime.timedelta(seconds=1)
    later = D + datetime.timedelta(hours=1)
    diff = ev({"$subtract": [later, D]})
    assert diff == 3_600_000 and isinstance(diff, Int64)
    assert ev({"$subtract": [D, 123]}) == datetime.datetime(2024, 3, 5, 14, 7, 9)
    assert code_of({"$add": [D, D]}) == 16612
    assert code_of({"$add": [1, "x"]}) == 16554


def test_arithmetic_with_null_is_null() -> None:
    assert ev({"$add": [1, None]}) is None
    assert ev({"$multiply": [2, "$nope"]}) is None
    assert ev({"$divide": [None, 2]}) is None


def test_divide_mod_and_errors() -> None:
    assert ev({"$divide": [7, 2]}) == 3.5
    assert code_of({"$divide": [1, 0]}) == 16608
    assert ev({"$mod": [-7, 3]}) == -1
    assert ev({"$mod": [7.5, 2]}) == 1.5
    assert code_of({"$mod": [1, 0]}) == 16610
    assert code_of({"$multiply": [2, "x"]}) == 16555


def test_abs_ceil_floor_round_trunc() -> None:
    assert ev({"$abs": -5}) == 5
    assert ev({"$abs": -(2**31)}) == 2**31
    assert ev({"$ceil": 1.2}) == 2.0
    assert ev({"$floor": -1.2}) == -2.0
    assert ev({"$round": [2.5]}) == 2.0
    assert ev({"$round": [3.5]}) == 4.0
    assert ev({"$round": [1.2345, 2]}) == 1.23
    assert ev({"$round": [1234, -2]}) == 1200
    assert ev({"$trunc": [-1.7]}) == -1.0
    assert ev({"$trunc": [1.789, 1]}) == 1.7
    assert code_of({"$abs": "x"}) == 28765


def test_cond_if_null_switch() -> None:
    assert ev({"$cond": [{"$gt": ["$a", 1]}, "big", "small"]}, {"a": 2}) == "big"
    assert ev({"$cond": {"if": False, "then": 1, "else": 2}}) == 2
    assert code_of({"$cond": {"if": True, "then": 1}}) == 17082
    assert ev({"$ifNull": [None, "$nope", 3]}) == 3
    switch = {
        "$switch": {"branches": [{"case": {"$eq": ["$a", 1]}, "then": "one"}], "default": "other"}
    }
    assert ev(switch, {"a": 1}) == "one"
    assert ev(switch, {"a": 2}) == "other"
    assert code_of({"$switch": {"branches": [{"case": False, "then": 1}]}}) == 40066


def test_string_operators() -> None:
    assert ev({"$concat": ["a", "b", "c"]}) == "abc"
    assert ev({"$concat": ["a", None]}) is None
    assert code_of({"$concat": ["a", 1]}) == 16702
    assert ev({"$toLower": "AbÇ"}) == "abÇ"
    assert ev({"$toUpper": "abc"}) == "ABC"
    assert ev({"$toUpper": None}) == ""
    assert ev({"$substr": ["hello", 1, 3]}) == "ell"
    assert ev({"$substr": ["hello", 2, -1]}) == "llo"
    assert ev({"$substrCP": ["héllo", 1, 2]}) == "él"
    assert ev({"$strLenCP": "héllo"}) == 5
    assert code_of({"$strLenCP": 1}) == 34471
    assert ev({"$split": ["a,b,,c", ","]}) == ["a", "b", "", "c"]
    assert ev({"$trim": {"input": "  x y  "}}) == "x y"
    assert ev({"$ltrim": {"input": "xxabxx", "chars": "x"}}) == "abxx"


def test_array_operators() -> None:
    doc = {"a": [1, 2, 3, 4]}
    assert ev({"$size": "$a"}, doc) == 4
    assert code_of({"$size": "$nope"}, doc) == 17124
    assert ev({"$arrayElemAt": ["$a", -1]}, doc) == 4
    assert ev({"$arrayElemAt": ["$a", 10]}, doc) is MISSING
    assert ev({"$in": [2.0, "$a"]}, doc) is True
    assert code_of({"$in": [1, "x"]}) == 40081
    assert ev({"$filter": {"input": "$a", "as": "n", "cond": {"$gt": ["$$n", 2]}}}, doc) == [3, 4]
    assert ev({"$filter": {"input": "$a", "cond": {"$lt": ["$$this", 3]}, "limit": 1}}, doc) == [1]
    assert ev({"$map": {"input": "$a", "in": {"$multiply": ["$$this", 10]}}}, doc) == [
        10,
        20,
        30,
        40,
    ]
    assert ev({"$first": "$a"}, doc) == 1
    assert ev({"$last": "$a"}, doc) == 4
    assert ev({"$concatArrays": ["$a", [5]]}, doc) == [1, 2, 3, 4, 5]
    assert ev({"$isArray": ["$a"]}, doc) is True
    assert ev({"$isArray": "$nope"}, doc) is False
    assert ev({"$sum": "$a"}, doc) == 10
    assert ev({"$avg": "$a"}, doc) == 2.5
    assert ev({"$max": "$a"}, doc) == 4


def test_type_and_conversions() -> None:
    assert ev({"$type": "$nope"}) == "missing"
    assert ev({"$type": [[1]]}) == "array"
    assert ev({"$type": Int64(1)}) == "long"
    assert ev({"$type": True}) == "bool"
    assert ev({"$toString": 1.0}) == "1"
    assert ev({"$toString": 2.5}) == "2.5"
    assert ev({"$toString": D}) == "2024-03-05T14:07:09.123Z"
    assert ev({"$toInt": "42"}) == 42
    assert ev({"$toInt": 4.9}) == 4
    assert ev({"$toLong": D}) == Int64(1709647629123)
    assert ev({"$toDouble": "1.5"}) == 1.5
    assert ev({"$toDate": Int64(0)}) == datetime.datetime(1970, 1, 1)
    assert ev({"$toDate": "2024-03-05T14:07:09.123Z"}) == D
    oid = ObjectId("65e7254d0000000000000000")
    assert ev({"$toObjectId": "65e7254d0000000000000000"}) == oid
    assert code_of({"$toInt": "x1"}) == 241
    assert ev({"$convert": {"input": "x", "to": "int", "onError": -1}}) == -1
    assert ev({"$convert": {"input": None, "to": "int", "onNull": 0}}) == 0


def test_date_parts_and_date_to_string() -> None:
    doc = {"d": D}
    assert ev({"$year": "$d"}, doc) == 2024
    assert ev({"$month": "$d"}, doc) == 3
    assert ev({"$dayOfMonth": "$d"}, doc) == 5
    assert ev({"$hour": "$d"}, doc) == 14
    assert ev({"$hour": {"date": "$d", "timezone": "+02:00"}}, doc) == 16
    assert ev({"$hour": {"date": "$d", "timezone": "America/New_York"}}, doc) == 9
    assert ev({"$dayOfWeek": "$d"}, doc) == 3  # a Tuesday
    assert ev({"$dateToString": {"date": "$d"}}, doc) == "2024-03-05T14:07:09.123Z"
    assert ev({"$dateToString": {"date": "$d", "format": "%Y/%m/%d %j %%"}}, doc) == (
        "2024/03/05 065 %"
    )
    assert ev({"$dateToString": {"date": "$nope", "onNull": "n/a"}}, doc) == "n/a"
    assert code_of({"$year": "x"}) == 16006
    assert code_of({"$dateToString": {"date": D, "format": "%Q"}}) == 18536


def test_let_merge_objects_object_to_array_round_trip() -> None:
    assert ev({"$let": {"vars": {"x": 2}, "in": {"$multiply": ["$$x", "$a"]}}}, {"a": 3}) == 6
    assert ev({"$mergeObjects": [{"a": 1, "b": 1}, None, {"b": 2}]}) == {"a": 1, "b": 2}
    assert code_of({"$mergeObjects": [1]}) == 40400
    pairs = ev({"$objectToArray": {"a": 1, "b": 2}})
    assert pairs == [{"k": "a", "v": 1}, {"k": "b", "v": 2}]
    assert ev({"$arrayToObject": [pairs]}) == {"a": 1, "b": 2}
    assert ev({"$arrayToObject": [[["x", 1]]]}) == {"x": 1}


def test_multi_key_operator_object_is_rejected() -> None:
    assert code_of({"$add": [1], "$sum": [2]}) == 15983


@given(st.lists(st.integers(min_value=-(2**31), max_value=2**31 - 1), max_size=20))
def test_sum_of_int32_values_equals_python_sum(values: list[int]) -> None:
    assert ev({"$sum": [values]}) == sum(values)
    assert ev({"$add": values or [0]}) == sum(values)


# -- resource limits: no expression may build an unbounded value or raise a Python error -----


def _timed(expr: Any) -> Any:
    import time

    started = time.monotonic()
    try:
        return ev(expr)
    finally:
        assert time.monotonic() - started < 1.0


def test_pow_of_integers_past_a_double_is_infinity_without_building_a_big_int() -> None:
    assert _timed({"$pow": [10, 10_000_000]}) == float("inf")
    assert _timed({"$pow": [Int64(10), Int64(10_000)]}) == float("inf")
    assert _timed({"$pow": [-2, 10_000_001]}) == float("-inf")
    assert ev({"$pow": [10, 400]}) == float("inf")


def test_pow_keeps_the_integer_type_that_fits_then_a_double() -> None:
    result = ev({"$pow": [2, 62]})
    assert type(result) is Int64 and result == 4611686018427387904
    widened = ev({"$pow": [2, 31]})
    assert type(widened) is Int64 and widened == 2147483648
    small = ev({"$pow": [3, 4]})
    assert type(small) is int and small == 81
    too_big = ev({"$pow": [2, 63]})
    assert type(too_big) is float and too_big == 2.0**63
    assert ev({"$pow": [Int64(2), 3]}) == Int64(8) and type(ev({"$pow": [Int64(2), 3]})) is Int64


def test_pow_with_negative_exponents_and_doubles() -> None:
    assert ev({"$pow": [2, -1]}) == 0.5
    one = ev({"$pow": [-1, -3]})
    assert type(one) is int and one == -1
    assert code_of({"$pow": [0, -1]}) == 28764
    assert ev({"$pow": [10.0, 400]}) == float("inf")
    nan = ev({"$pow": [-8, 0.5]})
    assert nan != nan
    assert code_of({"$pow": [2, "x"]}) == 28763


def test_pow_of_decimals_overflows_to_decimal_infinity() -> None:
    assert ev({"$pow": [Decimal128("10"), Decimal128("100000000")]}) == Decimal128("Infinity")
    assert ev({"$pow": [Decimal128("2"), 10]}) == Decimal128("1024")


def test_exp_overflows_to_infinity() -> None:
    assert ev({"$exp": 1000}) == float("inf")


def test_range_over_the_memory_limit_fails_before_building_anything() -> None:
    with pytest.raises(MongoError) as info:
        _timed({"$range": [0, 100_000_000]})
    assert info.value.code == 146
    assert info.value.code_name == "ExceededMemoryLimit"
    assert info.value.message == (
        "$range would use too much memory (1600000000 bytes) and cannot spill to disk. "
        "Memory limit: 67108864 bytes"
    )
    assert code_of({"$range": [0, 2_000_000_000, 10]}) == 146
    assert len(ev({"$range": [0, 4_194_304]})) == 4_194_304


def test_reduce_that_doubles_a_shared_array_fails_with_bson_object_too_large() -> None:
    doubling = {
        "$reduce": {
            "input": {"$range": [0, 200]},
            "initialValue": [1],
            "in": ["$$value", "$$value"],
        }
    }
    with pytest.raises(MongoError) as info:
        _timed(doubling)
    assert info.value.code == 10334


def test_concat_and_concat_arrays_refuse_results_past_16_mib() -> None:
    growing = {
        "$reduce": {
            "input": {"$range": [0, 40]},
            "initialValue": "ab",
            "in": {"$concat": ["$$value", "$$value"]},
        }
    }
    with pytest.raises(MongoError) as info:
        _timed(growing)
    assert info.value.code == 10334
    arrays = {
        "$reduce": {
            "input": {"$range": [0, 40]},
            "initialValue": [1, 2],
            "in": {"$concatArrays": ["$$value", "$$value"]},
        }
    }
    with pytest.raises(MongoError) as again:
        _timed(arrays)
    assert again.value.code == 10334


def test_map_checks_the_deadline_inside_its_loop() -> None:
    class Expired:
        def check(self) -> None:
            raise MongoError(50, "operation exceeded time limit")

    with pytest.raises(MongoError) as info:
        evaluate({"$map": {"input": [1, 2], "in": "$$this"}}, {}, deadline=Expired())
    assert info.value.code == 50


def test_infinite_or_nan_positions_are_mongodb_errors_not_python_ones() -> None:
    inf, nan = float("inf"), float("nan")
    assert code_of({"$arrayElemAt": [[1], inf]}) == 28691
    assert code_of({"$range": [0, nan]}) == 28691
    assert code_of({"$round": [1.5, inf]}) == 51083
    assert code_of({"$substrCP": ["abc", inf, 1]}) == 34451
    assert ev({"$substrBytes": ["abc", inf, 1]}) == ""
    assert ev({"$indexOfCP": ["abc", "b", nan]}) == 1

"""Query filter semantics and errors, as MongoDB matches and rejects them."""

from __future__ import annotations

import datetime
import re
import time
from typing import Any

import pytest
from bson.decimal128 import Decimal128
from bson.int64 import Int64
from bson.max_key import MaxKey
from bson.min_key import MinKey
from bson.objectid import ObjectId
from bson.regex import Regex
from hypothesis import given, settings
from hypothesis import strategies as st

from phidb.errors import MongoError
from phidb.query.filter import compile_filter
from phidb.query.order import canonical_type, compare


def matches(spec: dict[str, Any], doc: dict[str, Any]) -> bool:
    return compile_filter(spec)(doc)


def error_of(spec: Any) -> tuple[int, str]:
    with pytest.raises(MongoError) as info:
        compile_filter(spec)
    return info.value.code, info.value.message


PATIENT = {
    "_id": 1,
    "name": [{"family": "Smith", "given": ["John"]}, {"family": "Jones"}],
    "identifier": [{"system": "urn:mrn", "value": "123"}],
    "code": {"coding": [{"system": "icd10", "code": "E11"}]},
    "tags": ["a", "b"],
    "age": 42,
    "nothing": None,
}


# -- equality and arrays ------------------------------------------------------------------


def test_scalar_matches_array_element_and_array_matches_whole_array() -> None:
    assert matches({"tags": "a"}, PATIENT)
    assert matches({"tags": ["a", "b"]}, PATIENT)
    assert not matches({"tags": ["b", "a"]}, PATIENT)
    assert not matches({"tags": "c"}, PATIENT)


def test_fhir_paths_through_arrays_of_documents() -> None:
    assert matches({"name.family": "Jones"}, PATIENT)
    assert matches({"identifier.value": "123"}, PATIENT)
    assert matches({"code.coding.code": "E11"}, PATIENT)
    assert matches({"name.0.family": "Smith"}, PATIENT)
    assert not matches({"name.1.family": "Smith"}, PATIENT)
    assert matches({"name.given": "John"}, PATIENT)


def test_null_matches_missing_and_null_and_ne_null_is_the_inverse() -> None:
    assert matches({"nothing": None}, PATIENT)
    assert matches({"absent": None}, PATIENT)
    assert not matches({"age": None}, PATIENT)
    assert matches({"name.given": None}, PATIENT)  # the second name has no given
    assert not matches({"absent": {"$ne": None}}, PATIENT)
    assert matches({"age": {"$ne": None}}, PATIENT)
    assert not matches({"a": None}, {"a": []})


def test_numbers_of_different_types_are_equal() -> None:
    for value in (42, Int64(42), 42.0, Decimal128("42.00")):
        assert matches({"age": value}, PATIENT)
        assert matches({"age": value}, {"age": value})
    assert not matches({"age": True}, {"age": 1})
    assert not matches({"flag": 1}, {"flag": True})


def test_document_equality_is_field_order_sensitive() -> None:
    doc = {"a": {"x": 1, "y": 2}}
    assert matches({"a": {"x": 1, "y": 2}}, doc)
    assert not matches({"a": {"y": 2, "x": 1}}, doc)
    assert not matches({"a": {"x": 1}}, doc)


# -- comparisons ------------------------------------------------------------------------------


def test_comparisons_are_type_bracketed() -> None:
    assert matches({"age": {"$gt": 5}}, PATIENT)
    assert not matches({"a": {"$gt": 5}}, {"a": "x"})
    assert not matches({"a": {"$lt": "z"}}, {"a": 1})
    assert matches({"a": {"$gte": "b", "$lt": "c"}}, {"a": "bob"})
    assert matches(
        {"a": {"$gt": datetime.datetime(2000, 1, 1)}}, {"a": datetime.datetime(2020, 1, 1)}
    )


def test_comparison_through_array_elements() -> None:
    doc = {"a": [1, 10]}
    assert matches({"a": {"$gt": 5, "$lt": 2}}, doc)  # different elements may satisfy each
    assert not matches({"a": {"$elemMatch": {"$gt": 5, "$lt": 2}}}, doc)
    assert matches({"a": {"$gt": [0]}}, doc)  # array bracket compares the whole array


def test_minkey_and_maxkey_bound_every_type() -> None:
    assert matches({"a": {"$gt": MinKey()}}, {"a": "x"})
    assert matches({"a": {"$lt": MaxKey()}}, {"a": {"b": 1}})
    assert not matches({"a": {"$gt": MaxKey()}}, {"a": 1})


def test_nan_equals_nan_and_orders_with_nothing() -> None:
    nan = float("nan")
    assert matches({"a": nan}, {"a": Decimal128("NaN")})
    assert matches({"a": {"$gte": nan}}, {"a": nan})
    assert not matches({"a": {"$lt": 5}}, {"a": nan})
    assert not matches({"a": {"$gt": nan}}, {"a": 1})


def test_gte_null_matches_missing() -> None:
    assert matches({"a": {"$gte": None}}, {})
    assert not matches({"a": {"$gt": None}}, {})


def test_large_int64_compares_exactly_with_double() -> None:
    assert matches({"a": {"$gt": 2.0**53}}, {"a": Int64(2**53 + 1)})
    assert not matches({"a": 2.0**53}, {"a": Int64(2**53 + 1)})


# -- $in, $nin, $all, $size, $exists, $type, $mod -------------------------------------------


def test_in_with_values_regexes_and_null() -> None:
    assert matches({"tags": {"$in": ["x", "b"]}}, PATIENT)
    assert matches({"name.family": {"$in": [re.compile("^Jo")]}}, PATIENT)
    assert matches({"absent": {"$in": [None, 5]}}, PATIENT)
    assert matches({"tags": {"$in": [["a", "b"]]}}, PATIENT)
    assert not matches({"tags": {"$nin": ["a"]}}, PATIENT)
    assert matches({"absent": {"$nin": ["a"]}}, PATIENT)


def test_all_needs_every_value_and_all_with_elem_match() -> None:
    assert matches({"tags": {"$all": ["b", "a"]}}, PATIENT)
    assert not matches({"tags": {"$all": ["a", "c"]}}, PATIENT)
    assert not matches({"tags": {"$all": []}}, PATIENT)
    doc = {"a": [{"x": 1, "y": 2}, {"x": 3}]}
    spec = {"a": {"$all": [{"$elemMatch": {"x": 1}}, {"$elemMatch": {"x": 3}}]}}
    assert matches(spec, doc)
    assert not matches({"a": {"$all": [{"$elemMatch": {"x": 9}}]}}, doc)


def test_size_exists_and_type() -> None:
    assert matches({"tags": {"$size": 2}}, PATIENT)
    assert not matches({"tags": {"$size": 1}}, PATIENT)
    assert matches({"code.coding.code": {"$exists": True}}, PATIENT)
    assert matches({"absent": {"$exists": False}}, PATIENT)
    assert not matches({"nothing": {"$exists": False}}, PATIENT)
    assert matches({"age": {"$type": "int"}}, PATIENT)
    assert matches({"age": {"$type": "number"}}, PATIENT)
    assert matches({"a": {"$type": 18}}, {"a": Int64(1)})
    assert matches({"tags": {"$type": "array"}}, PATIENT)
    assert matches({"tags": {"$type": "string"}}, PATIENT)
    assert matches({"a": {"$type": ["bool", "objectId"]}}, {"a": ObjectId()})
    assert not matches({"a": {"$type": "int"}}, {"a": True})
    assert not matches({"absent": {"$type": "null"}}, PATIENT)


def test_mod_truncates_and_keeps_the_dividend_sign() -> None:
    assert matches({"age": {"$mod": [5, 2]}}, PATIENT)
    assert matches({"a": {"$mod": [4, -1]}}, {"a": -5})
    assert matches({"a": {"$mod": [4.9, 1]}}, {"a": 9.7})
    assert not matches({"a": {"$mod": [4, 1]}}, {"a": "9"})


# -- logical, $not, $elemMatch, $regex, $expr -----------------------------------------------


def test_logical_operators() -> None:
    assert matches({"$or": [{"age": 1}, {"tags": "a"}]}, PATIENT)
    assert not matches({"$and": [{"age": 42}, {"tags": "z"}]}, PATIENT)
    assert matches({"$nor": [{"age": 1}, {"tags": "z"}]}, PATIENT)
    assert matches({"$comment": "why", "age": 42}, PATIENT)


def test_not_inverts_including_missing_fields() -> None:
    assert matches({"absent": {"$not": {"$gt": 5}}}, PATIENT)
    assert not matches({"age": {"$not": {"$gt": 5}}}, PATIENT)
    assert matches({"name.family": {"$not": re.compile("^X")}}, PATIENT)


def test_elem_match_object_form_needs_one_element_to_match_all() -> None:
    doc = {"identifier": [{"system": "a", "value": "1"}, {"system": "b", "value": "2"}]}
    assert matches({"identifier": {"$elemMatch": {"system": "b", "value": "2"}}}, doc)
    assert not matches({"identifier": {"$elemMatch": {"system": "b", "value": "1"}}}, doc)
    # Without $elemMatch a document value is whole-document equality.
    assert not matches({"identifier": {"system": "b"}}, doc)
    assert matches({"identifier": {"system": "b", "value": "2"}}, doc)


def test_regex_forms_and_options() -> None:
    assert matches({"name.family": {"$regex": "^sm", "$options": "i"}}, PATIENT)
    assert not matches({"name.family": {"$regex": "^sm"}}, PATIENT)
    assert matches({"name.family": Regex("^SM", "i")}, PATIENT)
    assert matches({"name.family": re.compile("th$")}, PATIENT)
    assert matches({"a": {"$regex": "^b.c$", "$options": "s"}}, {"a": "b\nc"})
    assert matches({"a": {"$regex": "^c", "$options": "m"}}, {"a": "b\nc"})
    assert matches({"a": {"$regex": " b # comment", "$options": "x"}}, {"a": "ab"})
    assert not matches({"age": {"$regex": "4"}}, PATIENT)


def test_regex_timeout_raises_max_time_ms_expired() -> None:
    class ShortDeadline:
        def __init__(self) -> None:
            self.expires = time.monotonic() + 0.2

        def remaining(self) -> float | None:
            return max(0.0, self.expires - time.monotonic())

        def check(self) -> None:
            pass

    matcher = compile_filter({"a": {"$regex": "(x+x+)+y"}}, deadline=ShortDeadline())
    started = time.monotonic()
    with pytest.raises(MongoError) as info:
        matcher({"a": "x" * 5000})
    assert info.value.code == 50
    assert info.value.message == "operation exceeded time limit"
    assert time.monotonic() - started < 3


def test_expr_uses_aggregation_truthiness() -> None:
    assert matches({"$expr": {"$gt": ["$age", 40]}}, PATIENT)
    assert not matches({"$expr": {"$lt": ["$age", 40]}}, PATIENT)
    assert not matches({"$expr": "$absent"}, PATIENT)
    assert not matches({"$expr": 0}, PATIENT)
    assert matches({"$expr": "$tags"}, PATIENT)


# -- errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "code", "message"),
    [
        ({"a": {"$foo": 1}}, 2, "unknown operator: $foo"),
        ({"$foo": 1}, 2, "unknown top level operator: $foo"),
        ({"a": {"$in": 1}}, 2, "$in needs an array"),
        ({"a": {"$nin": {}}}, 2, "$nin needs an array"),
        ({"$and": []}, 2, "$and/$or/$nor must be a nonempty array"),
        ({"$or": {}}, 2, "$or must be an array"),
        ({"$nor": [1]}, 2, "$or/$and/$nor entries need to be full objects"),
        ({"a": {"$regex": 5}}, 2, "$regex has to be a string"),
        ({"a": {"$options": "i"}}, 2, "$options needs a $regex"),
        ({"a": {"$regex": "a", "$options": "z"}}, 51108, "invalid flag in regex options: z"),
        ({"a": {"$not": 5}}, 2, "$not needs a regex or a document"),
        ({"a": {"$not": {}}}, 2, "$not cannot be empty"),
        ({"a": {"$size": "x"}}, 2, "$size needs a number"),
        ({"a": {"$size": -1}}, 2, "$size may not be negative"),
        ({"a": {"$size": 1.5}}, 2, "$size must be a whole number"),
        ({"a": {"$mod": 5}}, 2, "malformed mod, needs to be an array"),
        ({"a": {"$mod": [5]}}, 2, "malformed mod, not enough elements"),
        ({"a": {"$mod": [1, 2, 3]}}, 2, "malformed mod, too many elements"),
        ({"a": {"$mod": [0, 1]}}, 2, "divisor cannot be 0"),
        ({"a": {"$type": "foo"}}, 2, "Unknown type name alias: foo"),
        ({"a": {"$type": 99}}, 2, "Invalid numerical type code: 99"),
        ({"a": {"$elemMatch": 1}}, 2, "$elemMatch needs an Object"),
        ({"a": {"$all": 1}}, 2, "$all needs an array"),
        ({"a": {"$all": [{"$elemMatch": {}}, 1]}}, 2, "$all/$elemMatch has to be consistent"),
        ({"a": {"$in": [{"$gt": 1}]}}, 2, "cannot nest $ under $in"),
        ({"a": {"$regex": "("}}, 51091, None),
        ({"$where": "true"}, 238, "$where is not supported"),
    ],
)
def test_malformed_filters_raise_mongodb_errors(
    spec: dict[str, Any], code: int, message: str | None
) -> None:
    got_code, got_message = error_of(spec)
    assert got_code == code
    if message is not None:
        assert got_message == message


# -- properties -------------------------------------------------------------------------------

scalars = st.one_of(
    st.integers(-5, 5),
    st.integers(-5, 5).map(Int64),
    st.floats(-5, 5, allow_nan=False).map(lambda f: round(f, 1)),
    st.sampled_from([Decimal128("1.0"), Decimal128("-2.5"), float("nan")]),
    st.sampled_from(["", "a", "b", "ab"]),
    st.none(),
    st.booleans(),
)
field_values = st.one_of(scalars, st.lists(scalars, max_size=3))
docs = st.fixed_dictionaries({}, optional={"a": field_values, "b": field_values})
comparison = st.sampled_from(["$gt", "$gte", "$lt", "$lte", "$eq", "$ne"])


@settings(max_examples=150)
@given(docs, comparison, scalars)
def test_not_equals_nor_of_the_same_predicate(doc: Any, op: str, value: Any) -> None:
    inner = {"a": {op: value}}
    assert matches({"a": {"$not": {op: value}}}, doc) == matches({"$nor": [inner]}, doc)
    assert matches({"$nor": [inner]}, doc) == (not matches(inner, doc))


@settings(max_examples=150)
@given(docs, st.lists(scalars, min_size=1, max_size=3))
def test_in_equals_or_of_equalities(doc: Any, values: list[Any]) -> None:
    either = {"$or": [{"a": v} for v in values]}
    assert matches({"a": {"$in": values}}, doc) == matches(either, doc)
    assert matches({"a": {"$nin": values}}, doc) == (not matches(either, doc))


@settings(max_examples=150)
@given(scalars, scalars)
def test_gt_and_lte_partition_one_type_bracket(stored: Any, bound: Any) -> None:
    doc = {"a": stored}
    same_bracket = canonical_type(stored) == canonical_type(bound)
    nan = any(isinstance(v, float) and v != v for v in (stored, bound)) or any(
        isinstance(v, Decimal128) and v.to_decimal().is_nan() for v in (stored, bound)
    )
    gt, lte = matches({"a": {"$gt": bound}}, doc), matches({"a": {"$lte": bound}}, doc)
    if same_bracket and not nan:
        assert gt != lte
        assert gt == (compare(stored, bound) > 0)
    elif not same_bracket:
        assert not gt and not lte


@settings(max_examples=150)
@given(docs, scalars)
def test_equality_on_scalars_agrees_with_bson_order(doc: Any, value: Any) -> None:
    stored = doc.get("a", None)
    if isinstance(stored, list):
        expected = any(compare(v, value) == 0 for v in stored)
    else:
        expected = compare(stored, value) == 0
    assert matches({"a": value}, doc) == expected

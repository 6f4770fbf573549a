"""BSON cross-type order: sort_key agrees with an independent reference comparison."""

from __future__ import annotations

import datetime
import math
from fractions import Fraction
from typing import Any

from bson.binary import Binary
from bson.code import Code
from bson.decimal128 import Decimal128
from bson.int64 import Int64
from bson.max_key import MaxKey
from bson.min_key import MinKey
from bson.objectid import ObjectId
from bson.regex import Regex
from bson.timestamp import Timestamp
from hypothesis import given, settings
from hypothesis import strategies as st

from phidb.query.order import (
    canonical_type,
    compare,
    descending_key,
    sort_key,
    type_bracket,
)

# -- an independent reference comparison ------------------------------------------------

_RANK = [
    (MinKey, 0),
    (type(None), 1),
    (bool, 8),
    (Code, 12),
    (str, 3),
    (dict, 4),
    (list, 5),
    (bytes, 6),
    (ObjectId, 7),
    (datetime.datetime, 9),
    (Timestamp, 10),
    (Regex, 11),
    (MaxKey, 13),
]


def _rank(v: Any) -> int:
    if isinstance(v, (int, float, Decimal128)) and not isinstance(v, bool):
        return 2
    for cls, rank in _RANK:
        if isinstance(v, cls):
            return rank
    raise AssertionError(type(v))


def _exact(v: Any) -> tuple[int, Fraction]:
    """(class, value): class orders NaN < -inf < finite < +inf."""
    if isinstance(v, Decimal128):
        d = v.to_decimal()
        if d.is_nan():
            return (0, Fraction(0))
        if d.is_infinite():
            return (1 if d < 0 else 3, Fraction(0))
        return (2, Fraction(d))
    if isinstance(v, float):
        if math.isnan(v):
            return (0, Fraction(0))
        if math.isinf(v):
            return (1 if v < 0 else 3, Fraction(0))
    return (2, Fraction(v))


def _cmp(a: Any, b: Any) -> int:
    return (a > b) - (a < b)


def ref_compare(a: Any, b: Any) -> int:
    ra, rb = _rank(a), _rank(b)
    if ra != rb:
        return _cmp(ra, rb)
    if ra == 2:
        return _cmp(_exact(a), _exact(b))
    if ra == 3 or ra == 12:
        return _cmp(a.encode(), b.encode())
    if ra == 4:
        for (ka, va), (kb, vb) in zip(a.items(), b.items(), strict=False):
            c = _cmp(_rank(va), _rank(vb)) or _cmp(ka.encode(), kb.encode()) or ref_compare(va, vb)
            if c:
                return c
        return _cmp(len(a), len(b))
    if ra == 5:
        for va, vb in zip(a, b, strict=False):
            c = ref_compare(va, vb)
            if c:
                return c
        return _cmp(len(a), len(b))
    if ra == 6:
        sa = a.subtype if isinstance(a, Binary) else 0
        sb = b.subtype if isinstance(b, Binary) else 0
        return _cmp((len(a), sa, bytes(a)), (len(b), sb, bytes(b)))
    if ra == 7:
        return _cmp(a.binary, b.binary)
    if ra in (8, 9):
        return _cmp(a, b)
    if ra == 10:
        return _cmp((a.time, a.inc), (b.time, b.inc))
    if ra == 11:
        return _cmp((a.pattern.encode(), a.flags), (b.pattern.encode(), b.flags))
    return 0


# -- strategies -------------------------------------------------------------------------

INT64_EDGES = [-(2**63), -(2**63) + 1, -(2**53) - 1, -1, 0, 1, 2**53, 2**53 + 1, 2**63 - 1]

numbers = st.one_of(
    st.integers(-(2**31), 2**31 - 1),
    st.sampled_from(INT64_EDGES).map(Int64),
    st.integers(-(2**63), 2**63 - 1).map(Int64),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([2.0**63, -(2.0**63), 2.0**53, 9007199254740993.0, 5e-324, -0.0]),
    st.builds(
        lambda c, e: Decimal128(f"{c}E{e}"),
        st.integers(-(10**34) + 1, 10**34 - 1),
        st.integers(-400, 400),
    ),
    st.sampled_from(["NaN", "Infinity", "-Infinity", "1E+6144", "1.0", "-0", "0.1"]).map(
        Decimal128
    ),
)
texts = st.text(alphabet=st.sampled_from(["a", "b", "\x00", "\x01", "é", "€", "😀", "Z"]))
scalars = st.one_of(
    numbers,
    texts,
    st.none(),
    st.booleans(),
    st.just(MinKey()),
    st.just(MaxKey()),
    st.binary(max_size=4),
    st.builds(Binary, st.binary(max_size=4), st.sampled_from([0, 4, 5])),
    st.binary(min_size=12, max_size=12).map(ObjectId),
    st.datetimes(min_value=datetime.datetime(1900, 1, 1)).map(
        lambda d: d.replace(microsecond=d.microsecond // 1000 * 1000)
    ),
    st.builds(Timestamp, st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1)),
    st.builds(Regex, texts, st.sampled_from(["", "i", "im"])),
    texts.map(Code),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.sampled_from(["a", "b", "ab", "é"]), inner, max_size=3),
    ),
    max_leaves=8,
)


# -- properties -------------------------------------------------------------------------


@settings(max_examples=300)
@given(numbers, numbers)
def test_number_keys_order_exactly_like_rationals(a: Any, b: Any) -> None:
    assert _cmp(sort_key(a), sort_key(b)) == ref_compare(a, b)


@settings(max_examples=300)
@given(values, values)
def test_sort_key_order_matches_reference_across_types(a: Any, b: Any) -> None:
    assert _cmp(sort_key(a), sort_key(b)) == ref_compare(a, b)
    assert compare(a, b) == ref_compare(a, b)


@settings(max_examples=200)
@given(values, values)
def test_descending_key_reverses_order(a: Any, b: Any) -> None:
    ka, kb = sort_key(a), sort_key(b)
    assert _cmp(descending_key(ka), descending_key(kb)) == -_cmp(ka, kb)


@settings(max_examples=200)
@given(values, values)
def test_no_key_is_a_proper_prefix_of_another(a: Any, b: Any) -> None:
    ka, kb = sort_key(a), sort_key(b)
    if ka != kb:
        assert not ka.startswith(kb) and not kb.startswith(ka)


@settings(max_examples=200)
@given(st.lists(values, min_size=2, max_size=3), st.lists(values, min_size=2, max_size=3))
def test_concatenated_keys_order_like_tuples(a: list[Any], b: list[Any]) -> None:
    # Compound index keys are concatenations; prefix-freedom makes them order as tuples.
    ka = b"".join(map(sort_key, a))
    kb = b"".join(map(sort_key, b))
    assert _cmp(ka, kb) == ref_compare(a, b)


@settings(max_examples=200)
@given(st.integers(-(2**63), 2**63 - 1))
def test_equal_numbers_of_every_type_share_one_key(n: int) -> None:
    keys = {sort_key(Int64(n)), sort_key(Decimal128(str(n)))}
    if -(2**31) <= n < 2**31:
        keys.add(sort_key(n))
    if float(n) == n:
        keys.add(sort_key(float(n)))
        keys.add(sort_key(Decimal128(f"{n}.000")))
    assert len(keys) == 1


@settings(max_examples=200)
@given(values)
def test_type_bracket_encloses_exactly_its_type(v: Any) -> None:
    lo, hi = type_bracket(v)
    assert lo <= sort_key(v) < hi


# -- fixed examples ---------------------------------------------------------------------


def test_canonical_order_of_types() -> None:
    ordered = [
        MinKey(),
        None,
        1,
        "a",
        {"a": 1},
        [1],
        b"\x00",
        ObjectId(),
        False,
        datetime.datetime(2020, 1, 1),
        Timestamp(1, 1),
        Regex("a"),
        MaxKey(),
    ]
    keys = [sort_key(v) for v in ordered]
    assert keys == sorted(keys)
    assert [canonical_type(v) for v in ordered] == [
        -1,
        5,
        10,
        15,
        20,
        25,
        30,
        35,
        40,
        45,
        47,
        50,
        127,
    ]


def test_bool_is_not_the_number_one() -> None:
    assert sort_key(True) != sort_key(1)
    assert compare(True, 1000) == 1


def test_large_int64_compares_exactly_against_double() -> None:
    assert compare(Int64(2**53 + 1), float(2**53)) == 1
    assert compare(Int64(2**63 - 1), 2.0**63) == -1
    assert compare(Decimal128("0.1"), 0.1) == -1
    assert sort_key(Decimal128("NaN")) == sort_key(float("nan"))
    assert compare(float("nan"), float("-inf")) == -1
    assert sort_key(-0.0) == sort_key(0) == sort_key(Decimal128("-0E+10"))


def test_strings_compare_by_utf8_bytes() -> None:
    # U+FF5E sorts below U+1F600 in UTF-8 bytes but above it in UTF-16 code units.
    assert compare("\uff5e", "\U0001f600") == -1
    assert compare("a", "a\x00") == -1
    assert compare("a\x00", "a\x01") == -1


def test_documents_compare_by_type_then_name_then_value() -> None:
    assert compare({"a": "x"}, {"b": 1}) == 1  # string value type beats number first
    assert compare({"a": 1}, {"b": 1}) == -1
    assert compare({"a": 1, "b": 2}, {"b": 2, "a": 1}) == -1
    assert compare({"a": 1}, {"a": 1, "b": 0}) == -1


def test_binary_compares_length_before_bytes() -> None:
    assert compare(b"\xff", b"\x00\x00") == -1
    assert compare(Binary(b"\x00", 5), b"\x01") == 1

"""Property tests through a real server with pymongo: every BSON type comes back exactly as
it went in (field order and Python type of each value, recursively), and `find` selects
exactly what `compile_filter` selects, by collection scan and through an index alike."""

from __future__ import annotations

import datetime
import decimal
import math
from typing import Any

import pytest
from bson import Binary, Decimal128, Int64, ObjectId, Regex, Timestamp
from bson.max_key import MaxKey
from bson.min_key import MinKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pymongo import ASCENDING, MongoClient

from phidb.query.filter import compile_filter

DB = "e2e_bson_roundtrip"
PROPERTY = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

# -- BSON values -------------------------------------------------------------

# Keys starting with "$" are left out: pymongo decodes {"$ref", "$id"} as a DBRef, so
# such documents would not come back as dicts for reasons that are the driver's.
# BSON strings are UTF-8 (no lone surrogates); keys are C strings (no NUL).
text_chars = st.characters(codec="utf-8")
key_chars = st.characters(codec="utf-8", exclude_characters="\x00")
keys = st.text(key_chars, min_size=1, max_size=8).filter(lambda k: not k.startswith("$"))
INT64_EDGES = [-(2**63), 2**63 - 1, -(2**31) - 1, 2**31, 0, -1]
int32s = st.integers(-(2**31), 2**31 - 1)
int64s = st.one_of(st.sampled_from(INT64_EDGES), st.integers(-(2**63), 2**63 - 1)).map(Int64)
doubles = st.one_of(st.floats(), st.sampled_from([-0.0, 0.0, math.inf, -math.inf, math.nan]))
decimals = st.one_of(
    st.sampled_from(["NaN", "Infinity", "-Infinity", "-0", "0E-6176", "1E+6144"]),
    st.builds(
        lambda digits, exponent: f"{digits}E{exponent}",
        st.integers(-(10**33), 10**33),
        st.integers(-6000, 6000),
    ),
).map(Decimal128)
datetimes = st.datetimes(
    min_value=datetime.datetime(1, 1, 1), max_value=datetime.datetime(9999, 12, 31)
).map(lambda d: d.replace(microsecond=d.microsecond // 1000 * 1000))
object_ids = st.binary(min_size=12, max_size=12).map(ObjectId)
# pymongo decodes binary subtype 0 as bytes and subtype 4 (UUID) as Binary.
binaries = st.one_of(
    st.binary(max_size=32), st.binary(min_size=16, max_size=16).map(lambda b: Binary(b, 4))
)
regexes = st.builds(
    Regex,
    st.text(key_chars, max_size=10),
    st.sets(st.sampled_from("ilmsux")).map(lambda flags: "".join(sorted(flags))),
)
# Timestamp(0, 0) at the top level is the one value MongoDB replaces on insert.
timestamps = st.builds(Timestamp, st.integers(1, 2**32 - 1), st.integers(0, 2**32 - 1))

scalars = st.one_of(
    st.text(text_chars, max_size=12),
    int32s,
    int64s,
    doubles,
    decimals,
    datetimes,
    object_ids,
    binaries,
    st.booleans(),
    st.none(),
    regexes,
    timestamps,
    st.just(MinKey()),
    st.just(MaxKey()),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(keys, inner, max_size=4)),
    max_leaves=16,
)
ids = st.one_of(object_ids, int32s, st.text(text_chars, max_size=8))
documents = st.builds(
    lambda _id, body: {"_id": _id, **body},
    ids,
    st.dictionaries(keys.filter(lambda k: k != "_id"), values, max_size=6),
)


def assert_identical(got: Any, want: Any, where: str = "$") -> None:
    """Same Python type at every level, same field order, same value (NaN equals NaN and
    -0.0 differs from 0.0)."""
    assert type(got) is type(want), f"{where}: {type(got).__name__} != {type(want).__name__}"
    if isinstance(want, dict):
        assert list(got) == list(want), f"{where}: field order {list(got)} != {list(want)}"
        for key in want:
            assert_identical(got[key], want[key], f"{where}.{key}")
    elif isinstance(want, list):
        assert len(got) == len(want), f"{where}: {len(got)} items != {len(want)}"
        for i, (g, w) in enumerate(zip(got, want)):
            assert_identical(g, w, f"{where}.{i}")
    elif isinstance(want, float):
        assert (math.isnan(got) and math.isnan(want)) or (
            got == want and math.copysign(1, got) == math.copysign(1, want)
        ), f"{where}: {got!r} != {want!r}"
    elif isinstance(want, Decimal128):
        assert got.bid == want.bid, f"{where}: {got!r} != {want!r}"
    else:
        assert got == want, f"{where}: {got!r} != {want!r}"


@pytest.fixture(scope="module")
def db(admin: MongoClient[Any]) -> Any:
    admin.drop_database(DB)
    return admin[DB]


@PROPERTY
@given(doc=documents)
def test_every_bson_type_comes_back_identical(db: Any, doc: dict[str, Any]) -> None:
    coll = db.roundtrip
    coll.delete_many({})
    coll.insert_one(doc)
    assert_identical(coll.find_one({"_id": doc["_id"]}), doc)


@PROPERTY
@given(docs=st.lists(st.dictionaries(keys, values, max_size=4), min_size=2, max_size=6))
def test_a_batch_comes_back_identical_through_get_more(db: Any, docs: list[dict[str, Any]]):
    coll = db.roundtrip_batch
    coll.delete_many({})
    sent = [{"_id": i, **{k: v for k, v in d.items() if k != "_id"}} for i, d in enumerate(docs)]
    coll.insert_many(sent)
    got = list(coll.find({}, batch_size=1).sort("_id", ASCENDING))
    assert len(got) == len(sent)
    for g, w in zip(got, sent):
        assert_identical(g, w)


def test_edge_values_come_back_with_their_types(db: Any) -> None:
    doc = {
        "_id": 1,
        "int32": 2**31 - 1,
        "int64_min": Int64(-(2**63)),
        "int64_small": Int64(1),
        "neg_zero": -0.0,
        "nan": math.nan,
        "inf": -math.inf,
        "dec": Decimal128(decimal.Decimal("-0.000")),
        "when": datetime.datetime(1969, 12, 31, 23, 59, 59, 999000),
        "uuid": Binary(b"\x01" * 16, 4),
        "raw": b"\x00\xff",
        "re": Regex("^a.c$", "im"),
        "ts": Timestamp(2**32 - 1, 7),
        "lo": MinKey(),
        "hi": MaxKey(),
        "nested": {"z": [[], {}, [None, True]], "a": "é\u2603\U0001f600"},
    }
    db.edges.drop()
    db.edges.insert_one(doc)
    assert_identical(db.edges.find_one({"_id": 1}), doc)


# -- filters: the server versus compile_filter ---------------------------------

FIELD_NAMES = ["a", "b", "c"]
PATHS = ["a", "b", "a.b", "b.a", "a.0", "a.0.b", "c.a"]
small_scalars = st.one_of(
    st.integers(-2, 3),
    st.sampled_from([1.5, -0.0, 2.0, math.inf]),
    st.sampled_from([Int64(2), Decimal128("1.5"), Decimal128("3")]),
    st.sampled_from(["", "a", "b", "B"]),
    st.none(),
    st.booleans(),
    st.sampled_from([datetime.datetime(2020, 1, 1), MinKey(), MaxKey()]),
)
small_values = st.recursive(
    small_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.sampled_from(FIELD_NAMES), inner, max_size=2),
    ),
    max_leaves=6,
)
small_docs = st.lists(
    st.dictionaries(st.sampled_from(FIELD_NAMES), small_values, max_size=3), max_size=8
)
TYPE_NAMES = ["double", "string", "object", "array", "bool", "null", "int", "long", "decimal"]
TYPE_NAMES += ["date", "minKey", "maxKey", "number"]
conditions = st.one_of(
    st.builds(lambda op, v: {op: v}, st.sampled_from(["$eq", "$gt", "$lt"]), small_values),
    st.builds(lambda vs: {"$in": vs}, st.lists(small_values, max_size=3)),
    st.builds(lambda b: {"$exists": b}, st.booleans()),
    st.builds(
        lambda t: {"$type": t},
        st.one_of(st.sampled_from(TYPE_NAMES), st.sampled_from([1, 2, 4, 16])),
    ),
)
filters = st.builds(lambda path, cond: {path: cond}, st.sampled_from(PATHS), conditions)


def index_name(path: str) -> str:
    return f"{path}_1"


@pytest.fixture(scope="module")
def indexed(db: Any) -> Any:
    coll = db.filters
    coll.drop()
    coll.create_indexes([_index(path) for path in PATHS])
    return coll


def _index(path: str) -> Any:
    from pymongo import IndexModel

    return IndexModel([(path, ASCENDING)], name=index_name(path))


@PROPERTY
@given(docs=small_docs, specs=st.lists(filters, min_size=1, max_size=4))
def test_find_selects_what_compile_filter_selects_with_and_without_an_index(
    indexed: Any, docs: list[dict[str, Any]], specs: list[dict[str, Any]]
) -> None:
    indexed.delete_many({})
    if docs:
        indexed.insert_many([{"_id": i, **d} for i, d in enumerate(docs)])
    stored = list(indexed.find({}, hint=[("$natural", 1)]))
    for spec in specs:
        matcher = compile_filter(spec)
        want = sorted(d["_id"] for d in stored if matcher(d))
        path = next(iter(spec))
        scanned = [d["_id"] for d in indexed.find(spec, hint=[("$natural", 1)])]
        through_index = [d["_id"] for d in indexed.find(spec, hint=index_name(path))]
        planned = [d["_id"] for d in indexed.find(spec)]
        assert sorted(scanned) == want, spec
        assert sorted(through_index) == want, spec
        assert sorted(planned) == want, spec
        assert len(through_index) == len(set(through_index)), spec

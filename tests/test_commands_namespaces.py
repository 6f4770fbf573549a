"""Argument parsing shared by the data commands: MongoDB's codes and wording."""

from __future__ import annotations

import pytest
from bson.decimal128 import Decimal128
from bson.int64 import Int64

from phidb.commands.namespaces import (
    bson_type_name,
    collection_argument,
    get_bool,
    get_int,
    reject_unknown_fields,
    require,
    split_namespace,
    writable_collection,
)
from phidb.errors import MongoError


def error_of(fn, *args, **kwargs) -> MongoError:
    with pytest.raises(MongoError) as info:
        fn(*args, **kwargs)
    return info.value


def test_limit_of_the_wrong_type_is_type_mismatch_in_idl_wording():
    err = error_of(get_int, {"find": "c", "limit": "3"}, "find", "limit")
    assert err.code == 14
    assert err.message == (
        "BSON field 'find.limit' is the wrong type 'string', expected types"
        " '[long, int, decimal, double]'"
    )


def test_whole_numbers_of_every_numeric_type_are_accepted():
    for value in (3, Int64(3), 3.0, Decimal128("3")):
        assert get_int({"limit": value}, "find", "limit") == 3


def test_fractional_limit_fails_to_parse():
    assert error_of(get_int, {"limit": 2.5}, "find", "limit").code == 9


def test_negative_skip_is_out_of_range_51024():
    err = error_of(get_int, {"skip": -1}, "find", "skip", minimum=0)
    assert err.code == 51024
    assert err.message == "BSON field 'skip' value must be >= 0, actual value '-1'"


def test_bool_fields_accept_numbers_and_reject_strings():
    assert get_bool({"singleBatch": 1}, "find", "singleBatch") is True
    assert get_bool({"singleBatch": 0.0}, "find", "singleBatch") is False
    assert get_bool({}, "find", "singleBatch", True) is True
    err = error_of(get_bool, {"singleBatch": "yes"}, "find", "singleBatch")
    assert err.code == 14
    assert err.message.endswith("expected type 'bool'")


def test_unknown_top_level_field_is_40415_but_generic_fields_pass():
    reject_unknown_fields({"find": "c", "lsid": {}, "$db": "x", "filter": {}}, "find", ["filter"])
    err = error_of(reject_unknown_fields, {"find": "c", "foo": 1}, "find", ["filter"])
    assert err.code == 40415
    assert err.message == "BSON field 'find.foo' is an unknown field."


def test_invalid_collection_names_are_invalid_namespace():
    for name in ("", "a$b", "a\x00b", ".a"):
        assert error_of(collection_argument, {"find": name}, "find", "db").code == 73
    assert error_of(collection_argument, {"find": 1.0}, "find", "db").message == (
        "collection name has invalid type double"
    )
    assert collection_argument({"find": "patients"}, "find", "db") == "patients"


def test_system_collections_are_not_writable():
    err = error_of(writable_collection, {"insert": "system.users"}, "insert", "admin")
    assert err.code == 73


def test_split_namespace():
    assert split_namespace("db.a.b", "renameCollection", "to") == ("db", "a.b")
    assert error_of(split_namespace, "nodot", "renameCollection", "to").code == 73


def test_missing_required_field_is_40414():
    err = error_of(require, {"insert": "c"}, "insert", "documents")
    assert err.code == 40414
    assert err.message == "BSON field 'insert.documents' is missing but a required field"


def test_type_names_match_mongodb_aliases():
    assert [bson_type_name(v) for v in (None, True, 1, 2**40, Int64(1), 1.5, "s", [], {})] == [
        "null",
        "bool",
        "int",
        "long",
        "long",
        "double",
        "string",
        "array",
        "object",
    ]

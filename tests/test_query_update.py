"""Update operators, replacements and upsert seeds behave as MongoDB's, codes and all."""

from __future__ import annotations

from typing import Any

import pytest
from bson.decimal128 import Decimal128
from bson.int64 import Int64
from hypothesis import given
from hypothesis import strategies as st

from phidb.errors import MongoError
from phidb.query.update import compile_update, is_replacement, upsert_seed


def apply(spec: Any, doc: dict[str, Any], **kw: Any) -> dict[str, Any]:
    filters = kw.pop("array_filters", None)
    return compile_update(spec, filters).apply(doc, **kw)[0]


def error(spec: Any, doc: dict[str, Any] | None = None, **kw: Any) -> MongoError:
    with pytest.raises(MongoError) as info:
        filters = kw.pop("array_filters", None)
        compile_update(spec, filters).apply(doc or {"_id": 1}, **kw)
    return info.value


def test_set_appends_new_fields_in_lexicographic_order_and_keeps_existing_positions() -> None:
    doc = {"_id": 1, "z": 0, "m": 1}
    result = apply({"$set": {"b": 1, "m": 5, "a.y": 2, "a.x": 3}}, doc)
    assert list(result) == ["_id", "z", "m", "a", "b"]
    assert result == {"_id": 1, "z": 0, "m": 5, "a": {"x": 3, "y": 2}, "b": 1}
    assert doc == {"_id": 1, "z": 0, "m": 1}  # the input is never mutated


def test_changed_is_false_when_the_value_is_identical_but_true_on_type_change() -> None:
    update = compile_update({"$set": {"a": 1}})
    assert update.apply({"_id": 1, "a": 1}) == ({"_id": 1, "a": 1}, False)
    assert update.apply({"_id": 1, "a": 1.0}) == ({"_id": 1, "a": 1}, True)


def test_unset_removes_fields_and_nulls_array_elements() -> None:
    assert apply({"$unset": {"a": "", "b.c": 1, "x": 1}}, {"_id": 1, "a": 1, "b": {"c": 2}}) == {
        "_id": 1,
        "b": {},
    }
    assert apply({"$unset": {"a.1": 1}}, {"_id": 1, "a": [1, 2, 3]}) == {
        "_id": 1,
        "a": [1, None, 3],
    }


def test_inc_promotes_numeric_types() -> None:
    result = apply({"$inc": {"a": 1}}, {"_id": 1, "a": 2**31 - 1})
    assert result["a"] == 2**31 and isinstance(result["a"], Int64)
    assert apply({"$inc": {"a": 1.5}}, {"_id": 1, "a": 1})["a"] == 2.5
    assert apply({"$inc": {"a": Decimal128("0.1")}}, {"_id": 1, "a": 1})["a"] == Decimal128("1.1")
    assert apply({"$inc": {"new": 5}}, {"_id": 1}) == {"_id": 1, "new": 5}


def test_inc_errors() -> None:
    e = error({"$inc": {"a": 1}}, {"_id": 1, "a": "x"})
    assert e.code == 14
    assert e.message == (
        "Cannot apply $inc to a value of non-numeric type. {_id: 1} has the field 'a' of "
        "non-numeric type string"
    )
    assert error({"$inc": {"a": "x"}}).code == 14
    assert error({"$inc": {"a": 1}}, {"_id": 1, "a": Int64(2**63 - 1)}).code == 2


def test_mul_min_max() -> None:
    assert apply({"$mul": {"a": 3}}, {"_id": 1, "a": 2}) == {"_id": 1, "a": 6}
    assert apply({"$mul": {"b": 3}}, {"_id": 1}) == {"_id": 1, "b": 0}
    assert apply({"$min": {"a": 1}}, {"_id": 1, "a": 2}) == {"_id": 1, "a": 1}
    assert apply({"$min": {"a": 3}}, {"_id": 1, "a": 2}) == {"_id": 1, "a": 2}
    assert apply({"$max": {"a": "s"}}, {"_id": 1, "a": 2}) == {"_id": 1, "a": "s"}


def test_rename_moves_values_and_ignores_missing_sources() -> None:
    assert apply({"$rename": {"a": "b.c"}}, {"_id": 1, "a": 1, "z": 2}) == {
        "_id": 1,
        "z": 2,
        "b": {"c": 1},
    }
    assert apply({"$rename": {"x": "y"}}, {"_id": 1}) == {"_id": 1}
    assert error({"$rename": {"a": "a"}}).code == 2
    assert error({"$rename": {"a.0": "b"}}, {"_id": 1, "a": [1]}).code == 2


def test_push_with_modifiers() -> None:
    doc = {"_id": 1, "a": [3, 1]}
    assert apply({"$push": {"a": 2}}, doc)["a"] == [3, 1, 2]
    assert apply({"$push": {"a": {"$each": [5, 4], "$sort": 1, "$slice": 3}}}, doc)["a"] == [
        1,
        3,
        4,
    ]
    assert apply({"$push": {"a": {"$each": [9], "$position": 0}}}, doc)["a"] == [9, 3, 1]
    assert apply({"$push": {"a": {"$each": [9], "$slice": -2}}}, doc)["a"] == [1, 9]
    scored = {"_id": 1, "q": [{"s": 2}, {"s": 1}]}
    assert apply({"$push": {"q": {"$each": [], "$sort": {"s": -1}}}}, scored)["q"] == [
        {"s": 2},
        {"s": 1},
    ]
    assert apply({"$push": {"new": 1}}, {"_id": 1}) == {"_id": 1, "new": [1]}
    e = error({"$push": {"a": 1}}, {"_id": 1, "a": 5})
    assert e.code == 2
    assert e.message == "The field 'a' must be an array but is of type int in document {_id: 1}"


def test_add_to_set_pop_pull_pull_all() -> None:
    doc = {"_id": 1, "a": [1, 2, 3, 2]}
    assert apply({"$addToSet": {"a": 2.0}}, doc)["a"] == [1, 2, 3, 2]
    assert apply({"$addToSet": {"a": {"$each": [4, 4, 5]}}}, doc)["a"] == [1, 2, 3, 2, 4, 5]
    assert apply({"$pop": {"a": 1}}, doc)["a"] == [1, 2, 3]
    assert apply({"$pop": {"a": -1}}, doc)["a"] == [2, 3, 2]
    assert error({"$pop": {"a": 2}}).code == 9
    assert apply({"$pull": {"a": 2}}, doc)["a"] == [1, 3]
    assert apply({"$pull": {"a": {"$gte": 2}}}, doc)["a"] == [1]
    items = {"_id": 1, "r": [{"i": "A", "s": 5}, {"i": "B", "s": 8}]}
    assert apply({"$pull": {"r": {"s": 8}}}, items)["r"] == [{"i": "A", "s": 5}]
    assert apply({"$pullAll": {"a": [2, 3]}}, doc)["a"] == [1]
    assert error({"$addToSet": {"a": 1}}, {"_id": 1, "a": 1}).code == 2


def test_current_date_and_set_on_insert() -> None:
    result = apply({"$currentDate": {"d": True, "t": {"$type": "timestamp"}}}, {"_id": 1})
    assert type(result["d"]).__name__ == "datetime"
    assert type(result["t"]).__name__ == "Timestamp"
    update = compile_update({"$setOnInsert": {"a": 1}, "$set": {"b": 2}})
    assert update.apply({"_id": 1})[0] == {"_id": 1, "b": 2}
    assert update.apply({"_id": 1}, is_insert=True)[0] == {"_id": 1, "a": 1, "b": 2}


def test_positional_operator_uses_the_query_match() -> None:
    doc = {"_id": 1, "a": [{"b": 1}, {"b": 2}, {"b": 2}]}
    assert apply({"$set": {"a.$.c": 9}}, doc, query={"a.b": 2})["a"] == [
        {"b": 1},
        {"b": 2, "c": 9},
        {"b": 2},
    ]
    grades = {"_id": 1, "g": [80, 85, 90]}
    assert apply({"$set": {"g.$": 82}}, grades, query={"g": 85})["g"] == [80, 82, 90]
    assert error({"$set": {"g.$": 1}}, grades, query={"_id": 1}).code == 2


def test_all_positional_and_array_filters() -> None:
    doc = {"_id": 1, "a": [{"n": 1}, {"n": 5}, {"n": 7}]}
    assert apply({"$inc": {"a.$[].n": 1}}, doc)["a"] == [{"n": 2}, {"n": 6}, {"n": 8}]
    result = apply({"$set": {"a.$[big].n": 0}}, doc, array_filters=[{"big.n": {"$gt": 4}}])
    assert result["a"] == [{"n": 1}, {"n": 0}, {"n": 0}]
    nums = {"_id": 1, "x": [1, 10, 100]}
    assert apply({"$set": {"x.$[e]": 0}}, nums, array_filters=[{"e": {"$gte": 10}}])["x"] == [
        1,
        0,
        0,
    ]
    e = error({"$set": {"a.$[y].n": 1}}, doc)
    assert e.code == 2
    assert e.message == "No array filter found for identifier 'y' in path 'a.$[y].n'"
    assert error({"$set": {"a": 1}}, doc, array_filters=[{"q": 1}]).code == 9


def test_conflicting_paths() -> None:
    e = error({"$set": {"a": 1}, "$inc": {"a.b": 1}})
    assert e.code == 40
    assert e.message == "Updating the path 'a.b' would create a conflict at 'a'"
    assert error({"$set": {"a.b": 1}, "$unset": {"a.b": 1}}).code == 40


def test_unknown_modifier_and_bad_operands() -> None:
    e = error({"$foo": {"a": 1}})
    assert e.code == 9
    assert e.message.startswith("Unknown modifier: $foo")
    assert error({"$set": {"a": 1}, "b": 2}).code == 9
    assert error({"$set": 1}).code == 9
    assert error({"$set": {"": 1}}).code == 56
    assert error({"$set": {"a..b": 1}}).code == 56
    assert error({"$set": {"$x": 1}}).code == 52


def test_empty_set_is_a_no_op() -> None:
    assert compile_update({"$set": {}}).apply({"_id": 1, "a": 1}) == ({"_id": 1, "a": 1}, False)


def test_id_is_immutable() -> None:
    e = error({"$set": {"_id": 2}}, {"_id": 1})
    assert e.code == 66
    assert e.message == (
        "Performing an update on the path '_id' would modify the immutable field '_id'"
    )
    assert apply({"$set": {"_id": 1, "a": 1}}, {"_id": 1}) == {"_id": 1, "a": 1}
    assert error({"a": 1, "_id": 5}, {"_id": 1}).code == 66


def test_numeric_components_create_documents_or_index_arrays() -> None:
    assert apply({"$set": {"a.0.b": 1}}, {"_id": 1}) == {"_id": 1, "a": {"0": {"b": 1}}}
    assert apply({"$set": {"a.2": 1}}, {"_id": 1, "a": [0]}) == {"_id": 1, "a": [0, None, 1]}
    assert apply({"$set": {"a.1.b": 1}}, {"_id": 1, "a": [{}, {}]}) == {
        "_id": 1,
        "a": [{}, {"b": 1}],
    }
    e = error({"$set": {"a.b": 1}}, {"_id": 1, "a": 5})
    assert e.code == 28
    assert e.message == "Cannot create field 'b' in element {a: 5}"
    assert error({"$set": {"a.x": 1}}, {"_id": 1, "a": [1]}).code == 28


def test_replacement_keeps_id_first_and_rejects_operators() -> None:
    assert is_replacement({"a": 1}) and is_replacement({}) and not is_replacement({"$set": {}})
    assert apply({"b": 2, "a": 1}, {"_id": 7, "x": 1}) == {"_id": 7, "b": 2, "a": 1}
    assert apply({}, {"_id": 7, "x": 1}) == {"_id": 7}
    assert error({"a": 1, "$set": {"b": 1}}).code == 52


def test_pipeline_update_runs_the_allowed_stages() -> None:
    result = apply([{"$set": {"t": {"$add": ["$a", 1]}}}, {"$unset": "a"}], {"_id": 1, "a": 1})
    assert result == {"_id": 1, "t": 2}
    assert error([{"$group": {"_id": 1}}]).code == 72


def test_upsert_seed_takes_equalities_only() -> None:
    seed = upsert_seed(
        {"a.b": 1, "c": {"$gt": 1}, "$and": [{"d": 2}], "e": {"$eq": 3}, "f": {"$in": [4]}}
    )
    assert seed == {"a": {"b": 1}, "d": 2, "e": 3, "f": 4}
    assert upsert_seed({"$or": [{"a": 1}, {"b": 2}]}) == {}
    with pytest.raises(MongoError) as info:
        upsert_seed({"a": 1, "a.b": 2})
    assert info.value.code == 54


@given(
    st.integers(min_value=-(2**61), max_value=2**61),
    st.integers(min_value=-(2**61), max_value=2**61),
)
def test_inc_then_inc_by_the_negation_restores_the_number(start: int, delta: int) -> None:
    doc = {"_id": 1, "n": Int64(start)}
    once = apply({"$inc": {"n": Int64(delta)}}, doc)
    back = apply({"$inc": {"n": Int64(-delta)}}, once)
    assert back == doc and isinstance(back["n"], Int64)

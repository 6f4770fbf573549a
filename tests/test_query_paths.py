"""Dotted-path resolution through embedded documents and arrays."""

from __future__ import annotations

from phidb.query.paths import MISSING, exists, get_values, index_keys, lookup, reaches_array

PATIENT = {
    "name": [{"family": "Smith", "given": ["John", "J"]}, {"family": "Smyth"}, {"text": "x"}],
    "identifier": [{"system": "urn:mrn", "value": "123"}],
    "code": {"coding": [{"code": "E11"}, {"code": "I10"}]},
    "grid": [[{"x": 1}], {"x": 2}],
    "scores": [5, 7, 9],
}


def test_field_through_array_of_documents_reaches_each_element() -> None:
    assert lookup(PATIENT, "name.family") == ["Smith", "Smyth", MISSING]
    assert lookup(PATIENT, "identifier.value") == ["123"]
    assert lookup(PATIENT, "code.coding.code") == ["E11", "I10"]


def test_nested_arrays_are_not_traversed_by_field_names() -> None:
    assert lookup(PATIENT, "grid.x") == [2]


def test_numeric_component_selects_array_position() -> None:
    assert lookup(PATIENT, "name.0.family") == ["Smith"]
    assert lookup(PATIENT, "scores.1") == [7]
    assert lookup(PATIENT, "scores.5") == [MISSING]
    assert lookup({"a": [{"0": "field"}, "pos1"]}, "a.0") == [{"0": "field"}, "field"]


def test_missing_and_scalar_in_the_way_are_missing() -> None:
    assert lookup(PATIENT, "nope") == [MISSING]
    assert lookup({"a": 5}, "a.b") == [MISSING]
    assert lookup({"a": [1, 2]}, "a.b") == []


def test_get_values_expands_the_leaf_array_then_keeps_it() -> None:
    assert get_values(PATIENT, "name.given") == ["John", "J", ["John", "J"]]
    assert get_values(PATIENT, "scores") == [5, 7, 9, [5, 7, 9]]
    assert get_values(PATIENT, "missing") == []


def test_exists_is_true_when_any_branch_reaches_a_value() -> None:
    assert exists(PATIENT, "name.text")
    assert not exists(PATIENT, "name.prefix")


def test_index_keys_are_distinct_elements_with_null_for_missing() -> None:
    assert index_keys(PATIENT, "name.family") == ["Smith", "Smyth", None]
    assert index_keys({"a": [1, 1.0, 2]}, "a") == [1, 2]
    assert index_keys({"a": []}, "a") == [[]]
    assert index_keys({}, "a.b") == [None]
    assert index_keys({"a": [1, 2]}, "a.b") == [None]
    assert index_keys({"a": [[1, 2], 3]}, "a") == [[1, 2], 3]


def test_reaches_array_detects_multikey_paths() -> None:
    assert reaches_array(PATIENT, "name.family")
    assert reaches_array(PATIENT, "scores")
    assert not reaches_array(PATIENT, "code.text")
    assert not reaches_array({"a": {"b": 1}}, "a.b")

"""Find projections: inclusion, exclusion, _id, $slice, $elemMatch, positional, computed."""

from __future__ import annotations

from typing import Any

import pytest

from phidb.errors import MongoError
from phidb.query.projection import compile_projection

DOC: dict[str, Any] = {
    "_id": 1,
    "name": [{"family": "Smith", "given": ["John"]}, "junk", {"text": "x"}],
    "meta": {"version": 2, "source": "ehr"},
    "scores": [1, 2, 3, 4, 5],
    "status": "active",
}


def project(spec: dict[str, Any], doc: dict[str, Any] = DOC, query: Any = None) -> Any:
    projection = compile_projection(spec, query)
    assert projection is not None
    return projection.apply(doc)


def error_of(spec: dict[str, Any], query: Any = None) -> tuple[int, str]:
    with pytest.raises(MongoError) as info:
        compile_projection(spec, query)
    return info.value.code, info.value.message


def test_empty_projection_keeps_whole_documents() -> None:
    assert compile_projection({}) is None
    assert compile_projection(None) is None


def test_inclusion_keeps_id_unless_excluded() -> None:
    assert project({"status": 1}) == {"_id": 1, "status": "active"}
    assert project({"status": True, "_id": 0}) == {"status": "active"}
    assert project({"_id": 0, "meta.version": 1}) == {"meta": {"version": 2}}


def test_exclusion_removes_only_the_named_fields() -> None:
    assert project({"name": 0, "scores": 0, "meta.source": 0}) == {
        "_id": 1,
        "meta": {"version": 2},
        "status": "active",
    }
    assert project({"_id": 0, "name": 0, "meta": 0, "scores": 0}) == {"status": "active"}


def test_dotted_inclusion_through_arrays_keeps_documents_and_drops_scalars() -> None:
    assert project({"name.family": 1, "_id": 0}) == {"name": [{"family": "Smith"}, {}]}


def test_dotted_exclusion_through_arrays_keeps_scalars() -> None:
    assert project({"name.given": 0, "_id": 0, "meta": 0, "scores": 0, "status": 0}) == {
        "name": [{"family": "Smith"}, "junk", {"text": "x"}]
    }


def test_nested_sub_projection_equals_dotted_form() -> None:
    assert project({"meta": {"source": 1}}) == project({"meta.source": 1})


def test_slice_forms() -> None:
    assert project({"scores": {"$slice": 2}})["scores"] == [1, 2]
    assert project({"scores": {"$slice": -2}})["scores"] == [4, 5]
    assert project({"scores": {"$slice": [1, 2]}})["scores"] == [2, 3]
    assert project({"scores": {"$slice": [-2, 5]}})["scores"] == [4, 5]
    # $slice alone keeps the other fields; with an inclusion it joins the inclusion.
    assert project({"scores": {"$slice": 1}})["status"] == "active"
    assert project({"scores": {"$slice": 1}, "status": 1}) == {
        "_id": 1,
        "scores": [1],
        "status": "active",
    }


def test_elem_match_returns_the_first_matching_element_only() -> None:
    doc = {"_id": 7, "xs": [{"k": 1, "v": "a"}, {"k": 2, "v": "b"}, {"k": 2, "v": "c"}], "o": 1}
    assert project({"xs": {"$elemMatch": {"k": 2}}}, doc) == {"_id": 7, "xs": [{"k": 2, "v": "b"}]}
    assert project({"xs": {"$elemMatch": {"k": 9}}}, doc) == {"_id": 7}


def test_positional_projection_uses_the_query() -> None:
    assert project({"scores.$": 1}, query={"scores": {"$gte": 3}}) == {"_id": 1, "scores": [3]}
    doc = {"_id": 2, "xs": [{"k": 1}, {"k": 2}]}
    assert project({"xs.$": 1}, doc, query={"xs.k": 2}) == {"_id": 2, "xs": [{"k": 2}]}


def test_computed_and_literal_fields_are_inclusions() -> None:
    assert project({"status": 1, "v": {"$add": ["$meta.version", 1]}, "lit": "x"}) == {
        "_id": 1,
        "status": "active",
        "v": 3,
        "lit": "x",
    }


@pytest.mark.parametrize(
    ("spec", "code", "message"),
    [
        ({"a": 1, "b": 0}, 31254, "Cannot do exclusion on field b in inclusion projection"),
        ({"a": 0, "b": 1}, 31253, "Cannot do inclusion on field b in exclusion projection"),
        ({"a": 0, "c": "lit"}, 31253, "Cannot do inclusion on field c in exclusion projection"),
        ({"a": {"$slice": "x"}}, 28667, "$slice only supports numbers and [skip, limit] arrays"),
        ({"a": {"$slice": [1, 0]}}, 28724, "$slice limit must be positive"),
        (
            {"a.b": {"$elemMatch": {"x": 1}}},
            31275,
            "Cannot use $elemMatch projection on a nested field.",
        ),
        ({"a": 1, "a.b": 1}, 31250, "Path collision at a.b remaining portion b"),
        ({"a.b": 1, "a": 1}, 31249, "Path collision at a"),
        ({"$a": 1}, 16410, "FieldPath field names may not start with '$'."),
        (
            {"a": {}},
            51270,
            "An empty sub-projection is not a valid value. Found empty object at path: a",
        ),
    ],
)
def test_malformed_projections_raise_mongodb_errors(
    spec: dict[str, Any], code: int, message: str
) -> None:
    assert error_of(spec) == (code, message)


def test_mixing_allows_excluding_id_from_an_inclusion() -> None:
    assert project({"_id": 0, "status": 1}) == {"status": "active"}
    assert project({"status": 1, "_id": False}) == {"status": "active"}

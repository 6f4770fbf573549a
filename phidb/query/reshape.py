"""Document reshaping for the `$project`, `$addFields`/`$set` and `$unset` aggregation stages."""

from __future__ import annotations

from typing import Any

from phidb.errors import MongoError
from phidb.query.expressions import MISSING, Scope, evaluate_in
from phidb.query.update_paths import copy_value

Document = dict[str, Any]


def _is_expression_object(value: Any) -> bool:
    return isinstance(value, dict) and bool(value) and next(iter(value)).startswith("$")


def flatten(spec: Document, prefix: str = "") -> list[tuple[str, Any]]:
    """`{a: {b: 1}}` as `[("a.b", 1)]`; operator objects stay whole as expressions."""
    out: list[tuple[str, Any]] = []
    for key, value in spec.items():
        if key.startswith("$") and not prefix:
            raise MongoError(
                16410,
                "FieldPath field names may not start with '$'. Consider "
                "using $getField or $setField.",
            )
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value and not _is_expression_object(value):
            out.extend(flatten(value, path + "."))
        else:
            out.append((path, value))
    return out


def _flag(value: Any) -> bool | None:
    """True/False for an inclusion/exclusion flag, None for a computed expression."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value != 0
    return None


class Projection:
    """A `$project` stage: inclusion (with computed fields) or exclusion."""

    def __init__(self, spec: Any) -> None:
        if not isinstance(spec, dict):
            raise MongoError(15969, "$project specification must be an object")
        if not spec:
            raise MongoError(
                51272,
                "Invalid $project :: caused by :: projection specification must have at least "
                "one field",
            )
        self.include: list[list[str]] = []
        self.exclude: list[list[str]] = []
        self.computed: list[tuple[list[str], Any]] = []
        exclude_id = False
        for path, value in flatten(spec):
            parts = path.split(".")
            flag = _flag(value)
            if path == "_id" and flag is False:
                exclude_id = True
            elif flag is True:
                self.include.append(parts)
            elif flag is False:
                self.exclude.append(parts)
            else:
                self.computed.append((parts, value))
        inclusion = bool(self.include or self.computed)
        if inclusion and self.exclude:
            raise MongoError(
                31254,
                "Invalid $project :: caused by :: Cannot do exclusion on field "
                f"{'.'.join(self.exclude[0])} in inclusion projection",
            )
        self.inclusion = inclusion
        if exclude_id:
            if inclusion:
                self.drop_id = True
            else:
                self.exclude.append(["_id"])
                self.drop_id = False
        else:
            self.drop_id = False
            if (
                inclusion
                and not any(p[0] == "_id" for p in self.include)
                and not any(p[0][0] == "_id" for p in self.computed)
            ):
                self.include.insert(0, ["_id"])

    def apply(self, doc: Document, scope: Scope) -> Document:
        if not self.inclusion:
            return exclude(doc, self.exclude)
        result = include(doc, self.include)
        for parts, expr in self.computed:
            set_computed(result, parts, evaluate_in(expr, scope))
        if self.drop_id:
            result.pop("_id", None)
        return result


def _tree(paths: list[list[str]]) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for parts in paths:
        node = tree
        for part in parts[:-1]:
            child = node.get(part)
            if child is True:
                break
            node = node.setdefault(part, {})
        else:
            node[parts[-1]] = True
    return tree


def include(doc: Document, paths: list[list[str]]) -> Document:
    return _include(doc, _tree(paths))


def _include(doc: Document, tree: dict[str, Any]) -> Document:
    out: Document = {}
    for key, value in doc.items():
        node = tree.get(key)
        if node is None:
            continue
        if node is True:
            out[key] = copy_value(value)
        elif isinstance(value, dict):
            out[key] = _include(value, node)
        elif isinstance(value, list):
            out[key] = _include_array(value, node)
    return out


def _include_array(array: list[Any], node: dict[str, Any]) -> list[Any]:
    out: list[Any] = []
    for element in array:
        if isinstance(element, dict):
            out.append(_include(element, node))
        elif isinstance(element, list):
            out.append(_include_array(element, node))
    return out


def exclude(doc: Document, paths: list[list[str]]) -> Document:
    return _exclude(doc, _tree(paths))


def _exclude(doc: Document, tree: dict[str, Any]) -> Document:
    out: Document = {}
    for key, value in doc.items():
        node = tree.get(key)
        if node is True:
            continue
        if node is None:
            out[key] = copy_value(value)
        elif isinstance(value, dict):
            out[key] = _exclude(value, node)
        elif isinstance(value, list):
            out[key] = [_exclude(e, node) if isinstance(e, dict) else copy_value(e) for e in value]
        else:
            out[key] = value
    return out


def set_computed(doc: Document, parts: list[str], value: Any) -> None:
    """Store a computed value at `parts`, through arrays of documents; MISSING removes."""
    head, rest = parts[0], parts[1:]
    if not rest:
        if value is MISSING:
            doc.pop(head, None)
        else:
            doc[head] = value
        return
    child = doc.get(head, MISSING)
    if isinstance(child, list):
        doc[head] = [_set_in_element(e, rest, value) for e in child]
        return
    if not isinstance(child, dict):
        if value is MISSING:
            return
        child = {}
    doc[head] = child
    set_computed(child, rest, value)


def _set_in_element(element: Any, parts: list[str], value: Any) -> Any:
    if isinstance(element, list):
        return [_set_in_element(e, parts, value) for e in element]
    target = element if isinstance(element, dict) else {}
    set_computed(target, parts, value)
    return target


class AddFields:
    """`$addFields` / `$set`: each field's expression sees the input document."""

    def __init__(self, stage: str, spec: Any) -> None:
        if not isinstance(spec, dict):
            raise MongoError(
                40272, f"{stage} specification stage must be an object, got {type(spec).__name__}"
            )
        self.fields = [(path.split("."), expr) for path, expr in flatten(spec)]

    def apply(self, doc: Document, scope: Scope) -> Document:
        values = [(parts, evaluate_in(expr, scope)) for parts, expr in self.fields]
        result: Document = copy_value(doc)
        for parts, value in values:
            set_computed(result, parts, value)
        return result


def unset_paths(spec: Any) -> list[list[str]]:
    names = [spec] if isinstance(spec, str) else spec
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise MongoError(
            31002, "$unset specification must be a string or an array containing only string values"
        )
    return [name.split(".") for name in names]

"""Find projections: `compile_projection(spec, filter)` parses inclusion, exclusion, `$slice`,
`$elemMatch`, positional `$` and computed fields once, into a `Projection` that shapes each
returned document the way MongoDB does."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from bson.decimal128 import Decimal128

from phidb.errors import BAD_VALUE, MongoError
from phidb.query.filter import Matcher, compile_filter
from phidb.query.order import is_number

CANNOT_INCLUDE_IN_EXCLUSION = 31253
CANNOT_EXCLUDE_IN_INCLUSION = 31254
PATH_COLLISION = 31250
PATH_COLLISION_PREFIX = 31249
POSITIONAL_NO_MATCH = 51246
SLICE_BAD_ARGUMENT = 28667
SLICE_LIMIT_NOT_POSITIVE = 28724
ELEM_MATCH_NESTED = 31275
EMPTY_SUB_PROJECTION = 51270
DOLLAR_FIELD = 16410

# Leaf actions of the projection tree.
_INCLUDE = "include"
_EXCLUDE = "exclude"
_SLICE = "slice"
_ELEM_MATCH = "elemMatch"
_COMPUTE = "compute"
_POSITIONAL = "positional"

Tree = dict[str, Any]  # component -> subtree, or a (action, argument) leaf


class Projection:
    """A compiled projection: `apply(doc)` returns the shaped copy."""

    __slots__ = ("_inclusion", "_tree", "_computed", "_positional")

    def __init__(
        self,
        inclusion: bool,
        tree: Tree,
        computed: list[tuple[list[str], Any]],
        positional: Callable[[Any], int] | None,
    ) -> None:
        self._inclusion = inclusion
        self._tree = tree
        self._computed = computed
        self._positional = positional

    def apply(self, doc: Mapping[str, Any]) -> dict[str, Any]:
        index = self._positional(doc) if self._positional is not None else -1
        if self._inclusion:
            result = _include(doc, self._tree, index)
        else:
            result = _exclude(doc, self._tree, index)
        for parts, expression in self._computed:
            _set_computed(result, parts, _evaluate(expression, doc))
        return result


def compile_projection(
    spec: Mapping[str, Any] | None, filter: Mapping[str, Any] | None = None
) -> Projection | None:
    """Parse `spec`; None when it keeps whole documents ({} or None). MongoError with
    MongoDB's code when the projection is malformed."""
    if not spec:
        return None
    fields = _flatten(spec, "")
    inclusion: bool | None = None
    tree: Tree = {}
    computed: list[tuple[list[str], Any]] = []
    positional_path: str | None = None
    explicit_id = False
    id_included = False

    for path, value in fields:
        if path == "_id" or path.startswith("_id."):
            explicit_id = True
        action, argument = _classify(path, value)
        id_included = id_included or (path == "_id" and action == _INCLUDE)

        if action == _POSITIONAL:
            if positional_path is not None:
                raise MongoError(31276, "Cannot specify more than one positional projection")
            path = path[:-2]
            positional_path = path
        kind = _kind(path, action)
        if kind is not None:
            if inclusion is None:
                inclusion = kind
            elif inclusion != kind:
                if kind:
                    raise MongoError(
                        CANNOT_INCLUDE_IN_EXCLUSION,
                        f"Cannot do inclusion on field {path} in exclusion projection",
                    )
                raise MongoError(
                    CANNOT_EXCLUDE_IN_INCLUSION,
                    f"Cannot do exclusion on field {path} in inclusion projection",
                )
        if action == _COMPUTE:
            computed.append((path.split("."), argument))
            _insert(tree, path, (_COMPUTE, None))
        else:
            _insert(tree, path, (action, argument))

    # {_id: 1} with nothing else deciding is an inclusion: it returns only _id.
    inclusion = id_included if inclusion is None else inclusion
    if inclusion and not explicit_id:
        tree = {"_id": (_INCLUDE, None), **tree}
    positional = _positional_index(positional_path, filter) if positional_path else None
    return Projection(inclusion, tree, computed, positional)


def _flatten(spec: Mapping[str, Any], prefix: str) -> list[tuple[str, Any]]:
    # {a: {b: 1}} is {"a.b": 1}; a value whose first key is an operator is a leaf.
    fields: list[tuple[str, Any]] = []
    for name, value in spec.items():
        if name.startswith("$"):
            raise MongoError(DOLLAR_FIELD, "FieldPath field names may not start with '$'.")
        path = prefix + name
        if isinstance(value, Mapping) and not _is_operator(value):
            if not value:
                raise MongoError(
                    EMPTY_SUB_PROJECTION,
                    f"An empty sub-projection is not a valid value. Found empty object at "
                    f"path: {path}",
                )
            fields.extend(_flatten(value, path + "."))
        else:
            fields.append((path, value))
    return fields


def _is_operator(value: Mapping[str, Any]) -> bool:
    first = next(iter(value), "")
    return isinstance(first, str) and first.startswith("$")


def _classify(path: str, value: Any) -> tuple[str, Any]:
    if path.endswith(".$"):
        if not _truthy_flag(value):
            raise MongoError(BAD_VALUE, "positional projection cannot be used with exclusion")
        return _POSITIONAL, None
    if "$" in path.split("."):
        raise MongoError(
            31394, "As of 4.4, it's illegal to specify positional operator in the middle of a path"
        )
    if isinstance(value, bool) or is_number(value):
        return (_INCLUDE, None) if _truthy_flag(value) else (_EXCLUDE, None)
    if isinstance(value, Mapping) and len(value) == 1 and "$slice" in value:
        return _SLICE, _slice_argument(value["$slice"])
    if isinstance(value, Mapping) and len(value) == 1 and "$elemMatch" in value:
        if "." in path:
            raise MongoError(
                ELEM_MATCH_NESTED, "Cannot use $elemMatch projection on a nested field."
            )
        argument = value["$elemMatch"]
        if not isinstance(argument, Mapping):
            raise MongoError(BAD_VALUE, "elemMatch: Invalid argument, object required.")
        return _ELEM_MATCH, compile_filter({path: {"$elemMatch": argument}})
    return _COMPUTE, value


def _truthy_flag(value: Any) -> bool:
    if isinstance(value, Decimal128):
        return not value.to_decimal().is_zero()
    return bool(value)


def _kind(path: str, action: str) -> bool | None:
    """True for an inclusion, False for an exclusion, None when neither decides."""
    if action == _SLICE:
        return None
    if action == _EXCLUDE:
        return None if path == "_id" else False
    if action == _INCLUDE and path == "_id":
        return None
    return True


def _slice_argument(argument: Any) -> tuple[int, int | None]:
    """(skip, limit) for [skip, limit], or (n, None) for a single count."""
    if is_number(argument):
        return _whole(argument), None
    if isinstance(argument, list):
        if len(argument) != 2 or not all(is_number(item) for item in argument):
            raise MongoError(
                SLICE_BAD_ARGUMENT, "$slice only supports numbers and [skip, limit] arrays"
            )
        skip, limit = _whole(argument[0]), _whole(argument[1])
        if limit <= 0:
            raise MongoError(SLICE_LIMIT_NOT_POSITIVE, "$slice limit must be positive")
        return skip, limit
    raise MongoError(SLICE_BAD_ARGUMENT, "$slice only supports numbers and [skip, limit] arrays")


def _whole(number: Any) -> int:
    if isinstance(number, Decimal128):
        number = number.to_decimal()
    try:
        return int(number)
    except (ValueError, OverflowError):
        raise MongoError(
            SLICE_BAD_ARGUMENT, "$slice only supports numbers and [skip, limit] arrays"
        ) from None


def _insert(tree: Tree, path: str, leaf: tuple[str, Any]) -> None:
    parts = path.split(".")
    node = tree
    for depth, part in enumerate(parts[:-1]):
        child = node.get(part)
        if isinstance(child, tuple):
            remaining = ".".join(parts[depth + 1 :])
            raise MongoError(
                PATH_COLLISION, f"Path collision at {path} remaining portion {remaining}"
            )
        if child is None:
            child = node[part] = {}
        node = child
    if parts[-1] in node:
        raise MongoError(PATH_COLLISION_PREFIX, f"Path collision at {path}")
    node[parts[-1]] = leaf


# -- applying ---------------------------------------------------------------------------------


def _include(doc: Mapping[str, Any], tree: Tree, index: int) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for name, value in doc.items():
        node = tree.get(name)
        if node is None:
            continue
        if isinstance(node, tuple):
            action, argument = node
            if action == _COMPUTE:
                continue
            projected = _leaf(action, argument, name, value, index)
            if projected is not _OMIT:
                result[name] = projected
        elif isinstance(value, Mapping):
            result[name] = _include(value, node, index)
        elif isinstance(value, list):
            result[name] = _include_array(value, node, index)
    return result


def _include_array(array: list[Any], tree: Tree, index: int) -> list[Any]:
    # Inclusion through an array keeps its documents (projected) and nested arrays; scalars go.
    projected: list[Any] = []
    for item in array:
        if isinstance(item, Mapping):
            projected.append(_include(item, tree, index))
        elif isinstance(item, list):
            projected.append(_include_array(item, tree, index))
    return projected


def _exclude(doc: Mapping[str, Any], tree: Tree, index: int) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for name, value in doc.items():
        node = tree.get(name)
        if node is None:
            result[name] = value
        elif isinstance(node, tuple):
            action, argument = node
            projected = _leaf(action, argument, name, value, index)
            if projected is not _OMIT:
                result[name] = projected
        elif isinstance(value, Mapping):
            result[name] = _exclude(value, node, index)
        elif isinstance(value, list):
            result[name] = _exclude_array(value, node, index)
        else:
            result[name] = value
    return result


def _exclude_array(array: list[Any], tree: Tree, index: int) -> list[Any]:
    projected: list[Any] = []
    for item in array:
        if isinstance(item, Mapping):
            projected.append(_exclude(item, tree, index))
        elif isinstance(item, list):
            projected.append(_exclude_array(item, tree, index))
        else:
            projected.append(item)
    return projected


_OMIT: Any = object()


def _leaf(action: str, argument: Any, name: str, value: Any, index: int) -> Any:
    if action == _INCLUDE:
        return value
    if action == _EXCLUDE:
        return _OMIT
    if action == _SLICE:
        return _slice(value, *argument) if isinstance(value, list) else value
    if action == _ELEM_MATCH:
        if isinstance(value, list):
            for item in value:
                if argument({name: [item]}):
                    return [item]
        return _OMIT
    # Positional: the element the query matched first.
    if isinstance(value, list) and 0 <= index < len(value):
        return [value[index]]
    return _OMIT


def _slice(array: list[Any], skip: int, limit: int | None) -> list[Any]:
    if limit is None:
        return array[:skip] if skip >= 0 else array[skip:]
    if skip < 0:
        skip = max(0, len(array) + skip)
    return array[skip : skip + limit]


def _evaluate(expression: Any, doc: Mapping[str, Any]) -> Any:
    # Imported here: the expression evaluator is a sibling module that imports heavily.
    from phidb.query.expressions import evaluate

    return evaluate(expression, doc)


def _set_computed(result: dict[str, Any], parts: list[str], value: Any) -> None:
    from phidb.query.expressions import MISSING

    if value is MISSING:
        return
    node = result
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = node[part] = {}
        node = child
    node[parts[-1]] = value


def _positional_index(path: str, filter: Mapping[str, Any] | None) -> Callable[[Any], int]:
    """For `path.$`: a function giving the index of the first element of the array at `path`
    that satisfies the query's conditions on that array."""
    # Limitation: only the filter's top-level conditions on the array locate the element;
    # conditions inside $and/$or are not consulted.
    conditions: list[tuple[Matcher, bool]] = []
    for key, condition in (filter or {}).items():
        if key == path:
            conditions.append((compile_filter({"v": condition}), True))
        elif key.startswith(path + "."):
            conditions.append((compile_filter({key[len(path) + 1 :]: condition}), False))
    if not conditions:
        raise MongoError(
            BAD_VALUE, f"Positional projection '{path}.$' does not match the query document."
        )

    def index(doc: Any) -> int:
        array = doc
        for part in path.split("."):
            array = array.get(part) if isinstance(array, Mapping) else None
        if isinstance(array, list):
            for i, item in enumerate(array):
                if all(
                    matcher({"v": item}) if direct else matcher(item)
                    for matcher, direct in conditions
                ):
                    return i
        raise MongoError(
            POSITIONAL_NO_MATCH,
            "positional operator '.$' couldn't find a matching element in the array",
        )

    return index

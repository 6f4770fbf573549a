"""Comparison, boolean, conditional, variable and object expression operators."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from phidb.query.expr_core import (
    MISSING,
    Scope,
    compare,
    eval_args,
    evaluate_in,
    fail,
    nullish,
    operator,
    truthy,
    type_name,
)

_COMPARISONS: dict[str, Callable[[int], bool]] = {
    "$eq": lambda c: c == 0,
    "$ne": lambda c: c != 0,
    "$gt": lambda c: c > 0,
    "$gte": lambda c: c >= 0,
    "$lt": lambda c: c < 0,
    "$lte": lambda c: c <= 0,
}


def _comparison(name: str) -> None:
    test = _COMPARISONS[name]

    @operator(name)
    def compare_op(args: Any, scope: Scope) -> Any:
        a, b = eval_args(name, args, scope, exactly=2)
        return test(compare(a, b))


for _name in _COMPARISONS:
    _comparison(_name)


@operator("$cmp")
def _cmp(args: Any, scope: Scope) -> Any:
    a, b = eval_args("$cmp", args, scope, exactly=2)
    c = compare(a, b)
    return (c > 0) - (c < 0)


@operator("$and")
def _and(args: Any, scope: Scope) -> Any:
    operands = args if isinstance(args, list) else [args]
    return all(truthy(evaluate_in(operand, scope)) for operand in operands)


@operator("$or")
def _or(args: Any, scope: Scope) -> Any:
    operands = args if isinstance(args, list) else [args]
    return any(truthy(evaluate_in(operand, scope)) for operand in operands)


@operator("$not")
def _not(args: Any, scope: Scope) -> Any:
    (value,) = eval_args("$not", args, scope, exactly=1)
    return not truthy(value)


@operator("$cond")
def _cond(args: Any, scope: Scope) -> Any:
    if isinstance(args, dict):
        for key in args:
            if key not in ("if", "then", "else"):
                raise fail(17083, f"Unrecognized parameter to $cond: {key}")
        for key, code in (("if", 17080), ("then", 17081), ("else", 17082)):
            if key not in args:
                raise fail(code, f"Missing '{key}' parameter to $cond")
        branches = [args["if"], args["then"], args["else"]]
    else:
        branches = args if isinstance(args, list) else [args]
        if len(branches) != 3:
            raise fail(
                16020,
                f"Expression $cond takes exactly 3 arguments. {len(branches)} were passed in.",
            )
    chosen = branches[1] if truthy(evaluate_in(branches[0], scope)) else branches[2]
    return evaluate_in(chosen, scope)


@operator("$ifNull")
def _if_null(args: Any, scope: Scope) -> Any:
    operands = args if isinstance(args, list) else [args]
    if len(operands) < 2:
        raise fail(1257300, "$ifNull needs at least two arguments, had: " + str(len(operands)))
    for operand in operands[:-1]:
        value = evaluate_in(operand, scope)
        if not nullish(value):
            return value
    return evaluate_in(operands[-1], scope)


@operator("$switch")
def _switch(args: Any, scope: Scope) -> Any:
    if not isinstance(args, dict):
        raise fail(40060, f"$switch requires an object as an argument, found: {type_name(args)}")
    for key in args:
        if key not in ("branches", "default"):
            raise fail(40067, f"$switch found an unknown argument: {key}")
    branches = args.get("branches", [])
    if not isinstance(branches, list):
        raise fail(40061, f"$switch expected an array for 'branches', found: {type_name(branches)}")
    for branch in branches:
        if not isinstance(branch, dict):
            raise fail(
                40062, f"$switch expected each branch to be an object, found: {type_name(branch)}"
            )
        if "case" not in branch:
            raise fail(40064, "$switch requires each branch have a 'case' expression")
        if "then" not in branch:
            raise fail(40065, "$switch requires each branch have a 'then' expression.")
        for key in branch:
            if key not in ("case", "then"):
                raise fail(40063, f"$switch found an unknown argument to a branch: {key}")
    if not branches:
        raise fail(40068, "$switch requires at least one branch.")
    for branch in branches:
        if truthy(evaluate_in(branch["case"], scope)):
            return evaluate_in(branch["then"], scope)
    if "default" not in args:
        raise fail(
            40066,
            "$switch could not find a matching branch for an input, and no default was specified.",
        )
    return evaluate_in(args["default"], scope)


@operator("$literal", "$const")
def _literal(args: Any, scope: Scope) -> Any:
    return args


@operator("$let")
def _let(args: Any, scope: Scope) -> Any:
    if not isinstance(args, dict):
        raise fail(16874, "$let only supports an object as its argument")
    for key in args:
        if key not in ("vars", "in"):
            raise fail(16875, f"Unrecognized parameter to $let: {key}")
    if "vars" not in args:
        raise fail(16876, "Missing 'vars' parameter to $let")
    if "in" not in args:
        raise fail(16877, "Missing 'in' parameter to $let")
    bound = {name: evaluate_in(expr, scope) for name, expr in dict(args["vars"]).items()}
    for name in bound:
        check_variable_name(name)
    return evaluate_in(args["in"], scope.bind(bound))


def check_variable_name(name: str) -> None:
    if not name or not (name[0].islower() or ord(name[0]) > 127):
        raise fail(
            16867,
            f"'{name}' starts with an invalid character for a user variable name",
        )
    for ch in name:
        if not (ch.isalnum() or ch == "_" or ord(ch) > 127):
            raise fail(16868, f"'{name}' contains an invalid character for a variable name: '{ch}'")


@operator("$mergeObjects")
def _merge_objects(args: Any, scope: Scope) -> Any:
    out: dict[str, Any] = {}
    for value in eval_args("$mergeObjects", args, scope):
        if nullish(value):
            continue
        if not isinstance(value, dict):
            raise fail(
                40400,
                f"$mergeObjects requires object inputs, but input {value!r} is of type "
                f"{type_name(value)}",
            )
        out.update(value)
    return out


@operator("$objectToArray")
def _object_to_array(args: Any, scope: Scope) -> Any:
    (value,) = eval_args("$objectToArray", args, scope, exactly=1)
    if nullish(value):
        return None
    if not isinstance(value, dict):
        raise fail(40390, f"$objectToArray requires a document input, found: {type_name(value)}")
    return [{"k": k, "v": v} for k, v in value.items()]


@operator("$arrayToObject")
def _array_to_object(args: Any, scope: Scope) -> Any:
    (value,) = eval_args("$arrayToObject", args, scope, exactly=1)
    if nullish(value):
        return None
    if not isinstance(value, list):
        raise fail(40386, f"$arrayToObject requires an array input, found: {type_name(value)}")
    out: dict[str, Any] = {}
    for element in value:
        if isinstance(element, list):
            if len(element) != 2:
                raise fail(
                    40397,
                    "$arrayToObject requires an array of size 2 arrays,found array of size: "
                    f"{len(element)}",
                )
            key, item = element
        elif isinstance(element, dict):
            if set(element) != {"k", "v"} or len(element) != 2:
                raise fail(
                    40392,
                    "$arrayToObject requires an object keys of 'k' and 'v'. "
                    f"Found incorrect number of keys:{len(element)}",
                )
            key, item = element["k"], element["v"]
        else:
            raise fail(
                40398,
                "Unrecognised input type format for $arrayToObject: " + type_name(element),
            )
        if not isinstance(key, str):
            raise fail(
                40395,
                f"$arrayToObject requires an array of key-value pairs, where "
                f"the key must be of type string. Found key type: {type_name(key)}",
            )
        if "\x00" in key:
            raise fail(4940400, "Key field cannot contain an embedded null byte")
        out[key] = item
    return out


@operator("$getField")
def _get_field(args: Any, scope: Scope) -> Any:
    if isinstance(args, dict):
        field = evaluate_in(args.get("field"), scope)
        source = evaluate_in(args.get("input", "$$CURRENT"), scope)
    else:
        field = evaluate_in(args, scope)
        source = scope.current
    if not isinstance(field, str):
        raise fail(5648602, "$getField requires 'field' to evaluate to type String")
    if nullish(source):
        return None
    if not isinstance(source, dict):
        return MISSING
    return source.get(field, MISSING)

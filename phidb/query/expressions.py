"""Aggregation expressions: `evaluate(expr, doc)` for `$project`, `$group`, `$expr` and friends.

The evaluator and its operator table are in `expr_core`; importing this module registers every
operator family (`expr_logic`, `expr_math`, `expr_arrays`, `expr_strings`, `expr_types`,
`expr_dates`).
"""

from __future__ import annotations

from typing import Any

from phidb.query import (  # noqa: F401  (each module registers its operators on import)
    expr_arrays,
    expr_dates,
    expr_logic,
    expr_math,
    expr_strings,
    expr_types,
)
from phidb.query.expr_core import (
    MISSING,
    OPERATORS,
    Deadline,
    Scope,
    compare,
    evaluate_in,
    get_path,
    split_path,
    truthy,
    type_name,
    values_equal,
)

__all__ = [
    "MISSING",
    "OPERATORS",
    "Scope",
    "compare",
    "evaluate",
    "evaluate_in",
    "get_path",
    "is_operator",
    "split_path",
    "truthy",
    "type_name",
    "values_equal",
]


def evaluate(
    expr: Any,
    doc: Any,
    variables: dict[str, Any] | None = None,
    *,
    deadline: Deadline | None = None,
) -> Any:
    """The value of `expr` for document `doc` (`$$ROOT` and `$$CURRENT`), or MISSING.

    `variables` binds user variables (`{"x": 1}` for `$$x`); `CURRENT` or `ROOT` in it
    override the document. MISSING is what a missing field or `$$REMOVE` evaluates to.
    `deadline` (the operation's maxTimeMS) is checked inside loops over arrays.
    """
    return evaluate_in(expr, Scope(doc, variables, deadline))


def is_operator(name: str) -> bool:
    """True when `name` (with its `$`) is an expression operator phidb knows."""
    return name in OPERATORS

"""A WHERE clause as a Python predicate over a record, with SQL's three-valued logic.

Supported: `=`, `<>`/`!=`, `<`, `<=`, `>`, `>=` between columns and literals (strings, numbers,
TRUE/FALSE), `IS [NOT] NULL`, `AND`, `OR`, `NOT` and parentheses. A comparison with a null is
unknown, and a row passes only when the whole clause is true (ksqlDB's filters do the same).
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from typing import Any

from sqlglot import exp

from materializer.sql.catalog import Column

Value = Callable[[Mapping[str, Any]], Any]
Truth = Callable[[Mapping[str, Any]], bool | None]
Resolve = Callable[[exp.Column], Column]


class Unsupported(Exception):
    """A part of the clause outside the subset; `node` is where."""

    def __init__(self, problem: str, node: exp.Expression) -> None:
        super().__init__(problem)
        self.problem = problem
        self.node = node


_COMPARISONS: dict[type[exp.Expression], Callable[[Any, Any], bool]] = {
    exp.EQ: operator.eq,
    exp.NEQ: operator.ne,
    exp.LT: operator.lt,
    exp.LTE: operator.le,
    exp.GT: operator.gt,
    exp.GTE: operator.ge,
}
_KINDS = {str: "string", int: "number", float: "number", bool: "boolean"}


def predicate(node: exp.Expression, resolve: Resolve) -> Callable[[Mapping[str, Any]], bool]:
    truth = _truth(node, resolve)

    def holds(row: Mapping[str, Any]) -> bool:
        return truth(row) is True

    return holds


def _truth(node: exp.Expression, resolve: Resolve) -> Truth:
    if isinstance(node, exp.Paren):
        return _truth(node.this, resolve)
    if isinstance(node, exp.And | exp.Or):
        left, right = _truth(node.this, resolve), _truth(node.expression, resolve)
        return _and(left, right) if isinstance(node, exp.And) else _or(left, right)
    if isinstance(node, exp.Not):
        inner = _truth(node.this, resolve)
        return lambda row: None if (v := inner(row)) is None else not v
    if isinstance(node, exp.Is):
        if not isinstance(node.expression, exp.Null):
            raise Unsupported("only IS NULL and IS NOT NULL", node)
        value, _ = _operand(node.this, resolve)
        return lambda row: value(row) is None
    compare = _COMPARISONS.get(type(node))
    if compare is not None:
        (left, lkind), (right, rkind) = _operand(node.this, resolve), _operand(node.expression, resolve)
        if lkind and rkind and lkind != rkind:
            raise Unsupported(f"cannot compare a {lkind} with a {rkind}", node)

        def test(row: Mapping[str, Any]) -> bool | None:
            a, b = left(row), right(row)
            if a is None or b is None:
                return None
            return bool(compare(a, b))

        return test
    if isinstance(node, exp.Column):
        value, kind = _operand(node, resolve)
        if kind != "boolean":
            raise Unsupported("a bare column in WHERE must be BOOLEAN", node)
        return lambda row: None if (v := value(row)) is None else bool(v)
    raise Unsupported(f"{node.key.upper()} is not supported in WHERE", node)


def _and(left: Truth, right: Truth) -> Truth:
    def both(row: Mapping[str, Any]) -> bool | None:
        a, b = left(row), right(row)
        if a is False or b is False:
            return False
        return None if a is None or b is None else True

    return both


def _or(left: Truth, right: Truth) -> Truth:
    def either(row: Mapping[str, Any]) -> bool | None:
        a, b = left(row), right(row)
        if a is True or b is True:
            return True
        return None if a is None or b is None else False

    return either


def _operand(node: exp.Expression, resolve: Resolve) -> tuple[Value, str | None]:
    """A getter of a column or a constant, and its kind (None: null)."""
    if isinstance(node, exp.Column):
        column = resolve(node)
        kinds = {_KINDS.get(t) for t in column.types}
        name = column.field
        return (lambda row: row.get(name)), (kinds.pop() if len(kinds) == 1 else None)
    if isinstance(node, exp.Literal):
        if node.is_string:
            text = str(node.this)
            return (lambda row: text), "string"
        number = _number(node)
        return (lambda row: number), "number"
    if isinstance(node, exp.Neg) and isinstance(node.this, exp.Literal) and not node.this.is_string:
        negative = -_number(node.this)
        return (lambda row: negative), "number"
    if isinstance(node, exp.Boolean):
        flag = bool(node.this)
        return (lambda row: flag), "boolean"
    if isinstance(node, exp.Null):
        return (lambda row: None), None
    raise Unsupported(f"{node.key.upper()} is not supported in WHERE (columns and literals only)", node)


def _number(node: exp.Literal) -> int | float:
    text = str(node.this)
    try:
        return int(text)
    except ValueError:
        return float(text)

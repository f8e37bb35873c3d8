"""Each statement checked against the catalog and added to it, or refused with its line and column.

What the engine does decides what is accepted (see the package docstring for the mapping); what it
cannot do is refused, never approximated.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NoReturn

from sqlglot import exp

from kafka_integration.topics import is_topic_name
from materializer.sql.catalog import (
    AnyTableDecl,
    Catalog,
    Column,
    Declaration,
    FilteredView,
    JoinDecl,
    JoinedDecl,
    LatestTable,
    SourceStream,
)
from materializer.sql.dialect import DIALECT, Name
from materializer.sql.predicates import Unsupported, predicate
from materializer.sql.reader import CreateAs, CreateSource, Drop, Parsed
from materializer.sql.sources import TOPIC_RULE, check_new, columns, drop, sink

_SELECT_PARTS = {"expressions", "from", "from_", "joins", "where", "group"}


def apply(catalog: Catalog, parsed: Parsed) -> None:
    if isinstance(parsed, Drop):
        drop(catalog, parsed)
    elif isinstance(parsed, CreateSource):
        check_new(catalog, parsed.stmt, parsed.name)
        source_columns = columns(parsed)
        topic, partitions = sink(parsed.stmt, parsed.props, need_topic=True)
        catalog.declarations[parsed.name.canonical] = SourceStream(
            parsed.name.canonical, parsed.name.field, topic or "", source_columns, partitions
        )
    else:
        check_new(catalog, parsed.stmt, parsed.name)
        catalog.declarations[parsed.name.canonical] = _create_as(catalog, parsed)


class _Scope:
    """The sources of a SELECT by name and alias, and how a column reference resolves."""

    def __init__(self, parsed: CreateAs) -> None:
        self.parsed = parsed
        self.sources: dict[str, Declaration] = {}

    def add(self, decl: Declaration, table: exp.Table) -> str:
        """Add a source under its alias (or its name); returns that."""
        name = decl.name
        alias = table.args.get("alias")
        if alias is not None and alias.this is not None:
            name = _name(alias.this).canonical
        if name in self.sources:
            self.refuse(f"{name} is used twice in FROM/JOIN: give each an alias", table)
        self.sources[name] = decl
        return name

    def refuse(self, problem: str, node: exp.Expression) -> NoReturn:
        self.parsed.stmt.refuse_at(problem, node, self.parsed.base)

    def resolve(self, column: exp.Column) -> tuple[str, Column]:
        """The source (its alias, or its name) and the column a reference names."""
        name = _name(column.this).canonical if isinstance(column.this, exp.Identifier) else None
        if name is None:
            self.refuse("expected a column name", column)
        qualifier = column.args.get("table")
        if qualifier is not None:
            alias = _name(qualifier).canonical
            if alias not in self.sources:
                self.refuse(f"no source {alias} in FROM/JOIN", column)
            candidates = [alias]
        else:
            candidates = list(self.sources)
        found = [(a, c) for a in candidates for c in scolumns(self.sources[a]) if c.name == name]
        if not found:
            where = ", ".join(self.sources[a].name for a in candidates)
            self.refuse(f"no column {name} in {where}", column)
        if len(found) > 1:
            self.refuse(f"column {name} is ambiguous: qualify it with its source", column)
        return found[0]


def scolumns(decl: Declaration) -> tuple[Column, ...]:
    if isinstance(decl, JoinedDecl):
        return ()
    return decl.columns


def _name(ident: exp.Identifier) -> Name:
    return Name.of(str(ident.this), quoted=bool(ident.args.get("quoted")))


def _create_as(catalog: Catalog, parsed: CreateAs) -> Declaration:
    select, scope = parsed.select, _Scope(parsed)
    for key, value in select.args.items():
        if value and key not in _SELECT_PARTS:
            scope.refuse(f"{key.upper()} is not supported in this SELECT", select)
    from_ = select.args.get("from") or select.args.get("from_")
    if from_ is None or not isinstance(from_.this, exp.Table) or from_.this.args.get("db"):
        scope.refuse("expected FROM <stream or table>", select)
    table = from_.this
    source = catalog.declarations.get(_name(table.this).canonical)
    if source is None:
        scope.refuse(f"no stream or table named {_name(table.this).canonical}", table)
    scope.add(source, table)
    if parsed.kind == "TABLE":
        if parsed.props:
            parsed.stmt.refuse(
                "CREATE TABLE ... AS takes no WITH: the table lives in state, read from its source"
            )
        if select.args.get("joins"):
            scope.refuse(
                "joins make streams here: CREATE STREAM ... AS SELECT ... JOIN", select.args["joins"][0]
            )
        if isinstance(source, SourceStream):
            return _latest(parsed, scope, source)
        if isinstance(source, LatestTable | FilteredView):
            return _filtered(parsed, scope, source)
        scope.refuse(f"{source.name} is a joined stream; a table reads a source stream or a table", table)
    if not isinstance(source, SourceStream):
        scope.refuse(f"{source.name} is not a source stream (CREATE STREAM ... WITH kafka_topic)", table)
    return _joined(catalog, parsed, scope, source)


def _items(scope: _Scope) -> list[tuple[exp.Expression, Name | None]]:
    out: list[tuple[exp.Expression, Name | None]] = []
    for item in scope.parsed.select.expressions:
        if isinstance(item, exp.Alias):
            out.append((item.this, _name(item.args["alias"])))
        else:
            out.append((item, None))
    return out


def _latest(parsed: CreateAs, scope: _Scope, stream: SourceStream) -> LatestTable:
    select = parsed.select
    group = select.args.get("group")
    if group is None:
        scope.refuse("a table from a stream needs GROUP BY <key> and LATEST_BY_OFFSET(col) AS col", select)
    if select.args.get("where") is not None:
        scope.refuse("WHERE before GROUP BY is not supported: filter the table instead", select.args["where"])
    keys = group.expressions
    if len(keys) != 1 or not isinstance(keys[0], exp.Column):
        scope.refuse("GROUP BY takes exactly one column", group)
    _, key = scope.resolve(keys[0])
    columns: dict[str, Column] = {}
    for node, alias in _items(scope):
        if isinstance(node, exp.Column):
            _, column = scope.resolve(node)
            if column is not key:
                scope.refuse(f"{column.name} is neither the GROUP BY key nor in LATEST_BY_OFFSET(...)", node)
        elif isinstance(node, exp.Anonymous) and str(node.this).upper() == "LATEST_BY_OFFSET":
            if len(node.expressions) != 1 or not isinstance(node.expressions[0], exp.Column):
                scope.refuse("LATEST_BY_OFFSET takes one column here", node)
            _, column = scope.resolve(node.expressions[0])
            if alias is None:
                scope.refuse(f"name it: LATEST_BY_OFFSET({column.name}) AS {column.name}", node)
        else:
            scope.refuse("only the key column and LATEST_BY_OFFSET(col) AS col are supported", node)
        if alias is not None and alias.canonical != column.name:
            scope.refuse(
                f"{column.name} keeps its name here (AS {column.name}); renaming is not supported", node
            )
        if column.name in columns:
            scope.refuse(f"{column.name} is selected twice", node)
        columns[column.name] = column
    if key.name not in columns:
        scope.refuse(f"select the GROUP BY column {key.name} too", group)
    return LatestTable(parsed.name.canonical, parsed.name.field, stream, key, tuple(columns.values()))


def _filtered(parsed: CreateAs, scope: _Scope, table: AnyTableDecl) -> FilteredView:
    select = parsed.select
    if select.args.get("group") is not None:
        scope.refuse("GROUP BY over a table is not supported", select.args["group"])
    chosen: set[str] = set()
    for node, alias in _items(scope):
        if isinstance(node, exp.Star):
            chosen.update(c.name for c in table.columns)
            continue
        if not isinstance(node, exp.Column):
            scope.refuse("only columns of the table are supported here", node)
        _, column = scope.resolve(node)
        if alias is not None and alias.canonical != column.name:
            scope.refuse(f"{column.name} keeps its name here; renaming is not supported", node)
        chosen.add(column.name)
    missing = [c.name for c in table.columns if c.name not in chosen]
    if missing:
        scope.refuse(
            f"a table over {table.name} keeps every column of it: select {', '.join(missing)} too", select
        )
    where, where_sql = _where(scope, select, lambda alias: True)
    return FilteredView(parsed.name.canonical, parsed.name.field, table, where, where_sql)


def _where(
    scope: _Scope, select: exp.Select, allowed: Callable[[str], bool]
) -> tuple[Callable[[Mapping[str, Any]], bool] | None, str]:
    clause = select.args.get("where")
    if clause is None:
        return None, ""

    def resolve(node: exp.Column) -> Column:
        alias, column = scope.resolve(node)
        if not allowed(alias):
            scope.refuse("WHERE may use the stream's columns only (it is tested before the joins)", node)
        return column

    try:
        return predicate(clause.this, resolve), clause.this.sql(dialect=DIALECT)
    except Unsupported as exc:
        scope.refuse(exc.problem, exc.node)


def _joined(catalog: Catalog, parsed: CreateAs, scope: _Scope, stream: SourceStream) -> JoinedDecl:
    select = parsed.select
    if select.args.get("group") is not None:
        scope.refuse("GROUP BY makes a table: CREATE TABLE ... AS", select.args["group"])
    streamed = next(iter(scope.sources))
    pending: list[tuple[str, AnyTableDecl, Column, str]] = []
    for join in select.args.get("joins") or []:
        side, kind = str(join.args.get("side") or "").upper(), str(join.args.get("kind") or "").upper()
        if join.args.get("using") or not isinstance(join.this, exp.Table):
            scope.refuse("expected JOIN <table> <alias> ON <stream column> = <alias>.<key>", join)
        if side == "LEFT" and kind in ("", "OUTER"):
            how = "left"
        elif not side and kind in ("", "INNER"):
            how = "inner"
        else:
            scope.refuse(f"{side} {kind} JOIN is not supported; INNER or LEFT", join.this)
        table = catalog.declarations.get(_name(join.this.this).canonical)
        if not isinstance(table, LatestTable | FilteredView):
            scope.refuse(
                f"{_name(join.this.this).canonical} is not a table: only stream-table joins are supported",
                join.this,
            )
        label = scope.add(table, join.this)
        on = join.args.get("on")
        if not isinstance(on, exp.EQ) or not all(isinstance(x, exp.Column) for x in (on.this, on.expression)):
            scope.refuse("ON must be <stream column> = <table>.<key>", on if on is not None else join)
        sides = [scope.resolve(on.this), scope.resolve(on.expression)]
        by_stream = [c for a, c in sides if a == streamed]
        by_table = [c for a, c in sides if a == label]
        if len(by_stream) != 1 or len(by_table) != 1:
            scope.refuse(f"ON must compare a column of {stream.name} with the key of {table.name}", on)
        if by_table[0] is not table.key:
            scope.refuse(
                f"a stream-table join is on the table's key: {table.name}'s key is {table.key.name}", on
            )
        pending.append((label, table, by_stream[0], how))
    outputs: dict[str, str] = {}
    passed: set[str] = set()
    chosen: dict[str, list[tuple[str, Column]]] = {a: [] for a, _, _, _ in pending}
    for node, alias in _items(scope):
        if not isinstance(node, exp.Column):
            scope.refuse("only columns [AS name] are supported in this SELECT", node)
        source, column = scope.resolve(node)
        if source == streamed:
            if alias is not None and alias.canonical != column.name:
                scope.refuse(f"the stream's columns pass through under their names: {column.name}", node)
            out_name, out_field = column.name, column.field
            passed.add(column.name)
        else:
            out_name = alias.canonical if alias is not None else column.name
            out_field = alias.field if alias is not None else column.field
            chosen[source].append((out_field, column))
        if out_name in outputs:
            scope.refuse(f"two output columns are called {out_name}", node)
        outputs[out_name] = out_field
    missing = [c.name for c in stream.columns if c.name not in passed]
    if missing:
        scope.refuse(f"every column of {stream.name} passes through: select {', '.join(missing)} too", select)
    for label, table, _, _ in pending:
        if not chosen[label]:
            scope.refuse(f"select at least one column of {table.name}", select)
    where, where_sql = _where(scope, select, lambda alias: alias == streamed)
    topic, partitions = sink(parsed.stmt, parsed.props, need_topic=False)
    if topic is None and not is_topic_name(parsed.name.field):  # the topic is the stream's name
        parsed.stmt.refuse(
            f"{parsed.name.field!r} is not a valid Kafka topic name ({TOPIC_RULE}): "
            "give WITH (kafka_topic=...)",
            parsed.stmt.tokens[2].start,
        )
    joins = tuple(JoinDecl(t, on, how, tuple(chosen[a])) for a, t, on, how in pending)  # type: ignore[arg-type]
    return JoinedDecl(
        parsed.name.canonical,
        parsed.name.field,
        stream,
        joins,
        where,
        where_sql,
        topic or parsed.name.field,
        partitions,
    )

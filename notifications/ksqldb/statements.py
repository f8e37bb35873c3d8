"""What a ksqlDB client sends, read with the materializer's SQL reader (sqlglot, `materializer.sql`):
the statements of `/ksql` (SHOW STREAMS, SHOW TABLES, LIST TOPICS, DESCRIBE name) and the one
SELECT of `/query` and `/query-stream`, checked against the catalog of `streams.sql`.

A query is `SELECT * | col, ... FROM source [WHERE ...] [EMIT CHANGES] [LIMIT n]`: a pull query
(no EMIT CHANGES) reads a table's rows here and now; a push query (EMIT CHANGES) reads a stream's
new records from its topic. WHERE is the materializer's subset (comparisons, IS [NOT] NULL, AND,
OR, NOT). Anything else is refused with a KsqlStatementError naming what is supported.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import sqlglot
from sqlglot import TokenType, exp
from sqlglot.errors import ParseError

from materializer.errors import SqlError
from materializer.sql import Catalog
from materializer.sql.catalog import Column, Declaration, JoinedDecl, SourceStream
from materializer.sql.dialect import DIALECT, Name
from materializer.sql.predicates import Unsupported, predicate
from materializer.sql.reader import Statement, statements
from notifications.ksqldb.errors import KsqlStatementError

MAX_STATEMENT_CHARS = 4_000  # a body within the schema stays under the 64 KiB limit
MAX_LIMIT = 1_000_000
COMMANDS = (
    "SHOW STREAMS; SHOW TABLES; LIST TOPICS; DESCRIBE name (LIST and SHOW are the same, EXTENDED is accepted)"
)
QUERIES = (
    "SELECT * | col, ... FROM table [WHERE ...] [LIMIT n] (a pull query over a table); "
    "SELECT * | col, ... FROM stream [WHERE ...] EMIT CHANGES [LIMIT n] (a push query over a stream)"
)


@dataclass(frozen=True)
class Command:
    """One `/ksql` statement: what it asks (streams, tables, topics, describe) and its text."""

    kind: str
    text: str
    name: str = ""  # DESCRIBE's source, canonical


@dataclass(frozen=True)
class Query:
    """A checked SELECT: its source, the columns it answers and how to pick rows."""

    text: str
    source: Declaration
    columns: list[Column]  # output columns: name (as shown), field (read from the row), types
    where: Callable[[Mapping[str, Any]], bool] | None
    key_equals: str | None  # a pull query's `WHERE key = literal`: one row by key
    limit: int | None
    push: bool


def _split(text: str) -> list[Statement]:
    if len(text) > MAX_STATEMENT_CHARS:
        raise KsqlStatementError(f"the statement text is over {MAX_STATEMENT_CHARS} characters", text[:200])
    try:
        found = list(statements(text))
    except SqlError as exc:
        raise KsqlStatementError(f"cannot read the statement: {exc.problem}", text) from None
    if not found:
        raise KsqlStatementError("no statement given", text)
    return found


def _words(stmt: Statement) -> list[str]:
    return [t.text.upper() if t.token_type != TokenType.IDENTIFIER else t.text for t in stmt.tokens]


def _text(stmt: Statement) -> str:
    return stmt.text[stmt.tokens[0].start : stmt.tokens[-1].end + 1] + ";"


def _command_words(stmt: Statement) -> list[str]:
    """A statement's words; after SHOW (which sqlglot's tokenizer takes as a command, the rest
    of the statement one string with its comments) the rest read as LIST's are."""
    words = _words(stmt)
    if words[:1] == ["SHOW"] and len(stmt.tokens) == 2 and stmt.tokens[1].token_type == TokenType.STRING:
        try:
            (rest,) = statements("LIST " + stmt.tokens[1].text)
        except (SqlError, ValueError):
            return words
        return ["SHOW", *_words(rest)[1:]]
    return words


def commands(text: str, catalog: Catalog) -> list[Command]:
    """The `/ksql` statements of `text`, each checked (the first refused ends it)."""
    out = []
    for stmt in _split(text):
        words = _command_words(stmt)
        shown = _text(stmt)
        plain = [w for w in words if w != "EXTENDED"]
        if len(words) - len(plain) > 1:
            raise KsqlStatementError(f"EXTENDED once at most; supported: {COMMANDS}", shown)
        if plain in (["SHOW", "STREAMS"], ["LIST", "STREAMS"]):
            out.append(Command("streams", shown))
        elif plain in (["SHOW", "TABLES"], ["LIST", "TABLES"]):
            out.append(Command("tables", shown))
        elif plain in (["SHOW", "TOPICS"], ["LIST", "TOPICS"]):
            out.append(Command("topics", shown))
        elif words and words[0] in ("DESCRIBE", "DESC") and len(plain) == 2 and len(words) <= 3:
            # ksqlDB's `DESCRIBE [EXTENDED] name`; `DESCRIBE name EXTENDED` is accepted too
            named = 2 if words[1] == "EXTENDED" and len(words) == 3 else 1
            out.append(Command("describe", shown, _source(catalog, stmt, named).name))
        elif words and words[0] == "SELECT":
            raise KsqlStatementError(
                "SELECT is a query: send it to /query or /query-stream, not /ksql", shown
            )
        else:
            raise KsqlStatementError(f"this statement is not supported here; supported: {COMMANDS}", shown)
    return out


def _source(catalog: Catalog, stmt: Statement, index: int) -> Declaration:
    token = stmt.tokens[index]
    if token.token_type not in (TokenType.IDENTIFIER, TokenType.VAR) and not token.text.isidentifier():
        raise KsqlStatementError(f"expected a stream or table name, found {token.text!r}", _text(stmt))
    name = Name.of(token.text, quoted=token.token_type == TokenType.IDENTIFIER)
    found = catalog.declarations.get(name.canonical)
    if found is None:
        known = ", ".join(catalog.declarations)
        raise KsqlStatementError(
            f"{name.canonical!r} does not exist; streams and tables: {known}", _text(stmt)
        )
    return found


def columns_of(decl: Declaration) -> list[Column]:
    """What `SELECT *` answers from a source: a table's key then its columns; a stream's columns;
    a joined stream's stream columns then what it selects from its tables."""
    if isinstance(decl, SourceStream):
        return list(decl.columns)
    if isinstance(decl, JoinedDecl):
        out = list(decl.source.columns)
        for join in decl.joins:
            for field, column in join.selected:
                name = field.upper() if field == field.lower() else field
                out.append(Column(name, field, column.sql_type, column.types))
        return out
    return [decl.key, *(c for c in decl.columns if c.field != decl.key.field)]


def query(text: str, catalog: Catalog) -> Query:
    """The one SELECT of `/query` or `/query-stream`, checked against the catalog."""
    found = _split(text)
    if len(found) > 1:
        raise KsqlStatementError("send one SELECT per query request", text)
    (stmt,) = found
    shown = _text(stmt)
    tokens = stmt.tokens
    if not tokens or tokens[0].text.upper() != "SELECT":
        raise KsqlStatementError(f"only a SELECT is run here; supported: {QUERIES}", shown)
    words = [t.text.upper() if t.token_type != TokenType.STRING else "" for t in tokens]
    limit: int | None = None
    if len(words) >= 2 and words[-2] == "LIMIT":
        if tokens[-1].token_type != TokenType.NUMBER or not tokens[-1].text.isdigit():
            raise KsqlStatementError("LIMIT takes a whole number", shown)
        limit = int(tokens[-1].text)
        if not 0 < limit <= MAX_LIMIT:
            raise KsqlStatementError(f"LIMIT must be between 1 and {MAX_LIMIT}", shown)
        tokens = tokens[:-2]
        words = words[:-2]
    push = len(words) >= 2 and words[-2:] == ["EMIT", "CHANGES"]
    if push:
        tokens = tokens[:-2]
    if "EMIT" in words[: len(tokens)]:
        raise KsqlStatementError("only EMIT CHANGES, after WHERE and before LIMIT, is supported", shown)
    body = stmt.text[tokens[0].start : tokens[-1].end + 1]
    try:
        select = sqlglot.parse_one(body, dialect=DIALECT)
    except (ParseError, RecursionError) as exc:
        raise KsqlStatementError(
            f"cannot parse the SELECT: {str(exc).splitlines()[0][:300]}", shown
        ) from None
    if not isinstance(select, exp.Select):
        raise KsqlStatementError(f"expected a plain SELECT; supported: {QUERIES}", shown)
    for part in ("joins", "group", "having", "order", "limit", "offset", "windows", "distinct", "with"):
        if select.args.get(part):
            raise KsqlStatementError(
                f"{part.upper()} is not supported in a query; supported: {QUERIES}", shown
            )
    source = _from(select, catalog, shown)
    if push and source.kind != "STREAM":
        raise KsqlStatementError(
            f"push queries (EMIT CHANGES) are served over streams; {source.name} is a table: "
            "drop EMIT CHANGES for a pull query",
            shown,
        )
    if not push and source.kind != "TABLE":
        raise KsqlStatementError(
            f"pull queries are served over tables; {source.name} is a stream: "
            "add EMIT CHANGES for a push query",
            shown,
        )
    available = columns_of(source)
    by_name = {c.name: c for c in available}

    def resolve(node: exp.Column) -> Column:
        ident = node.this
        if not isinstance(ident, exp.Identifier):
            raise Unsupported("expected a column name", node)
        name = Name.of(str(ident.this), quoted=bool(ident.args.get("quoted")))
        qualifier = node.args.get("table")
        if qualifier is not None and Name.of(
            str(qualifier.this), quoted=bool(qualifier.args.get("quoted"))
        ).canonical not in (
            source.name,
            _alias(select),
        ):
            raise Unsupported(f"no source {qualifier.this} in FROM", node)
        column = by_name.get(name.canonical)
        if column is None:
            raise Unsupported(
                f"{source.name} has no column {name.canonical}; columns: {', '.join(by_name)}", node
            )
        return column

    try:
        out = _projection(select, available, resolve)
        where_node = select.args.get("where")
        where = predicate(where_node.this, resolve) if where_node is not None else None
    except Unsupported as exc:
        raise KsqlStatementError(exc.problem, shown) from None
    except RecursionError:
        raise KsqlStatementError("the WHERE clause is nested too deeply", shown) from None
    key_equals = (
        _key_equals(where_node.this, source, resolve) if where_node is not None and not push else None
    )
    return Query(shown, source, out, where, key_equals, limit, push)


def _alias(select: exp.Select) -> str | None:
    table = select.args["from_" if "from_" in select.args else "from"].this
    alias = table.args.get("alias")
    if alias is None or alias.this is None:
        return None
    return Name.of(str(alias.this.this), quoted=bool(alias.this.args.get("quoted"))).canonical


def _from(select: exp.Select, catalog: Catalog, shown: str) -> Declaration:
    from_ = select.args.get("from_") or select.args.get("from")
    if from_ is None or not isinstance(from_.this, exp.Table) or from_.this.args.get("db"):
        raise KsqlStatementError(f"a query reads FROM one stream or table; supported: {QUERIES}", shown)
    ident = from_.this.this
    if not isinstance(ident, exp.Identifier):
        raise KsqlStatementError("expected a stream or table name after FROM", shown)
    name = Name.of(str(ident.this), quoted=bool(ident.args.get("quoted")))
    found = catalog.declarations.get(name.canonical)
    if found is None:
        known = ", ".join(catalog.declarations)
        raise KsqlStatementError(f"{name.canonical!r} does not exist; streams and tables: {known}", shown)
    return found


def _projection(
    select: exp.Select, available: list[Column], resolve: Callable[[exp.Column], Column]
) -> list[Column]:
    out: list[Column] = []
    for node in select.expressions:
        if isinstance(node, exp.Star):
            out.extend(available)
        elif isinstance(node, exp.Column) and isinstance(node.this, exp.Star):
            resolve_star = node.args.get("table")
            if resolve_star is None:
                out.extend(available)
            else:
                resolve(exp.column(available[0].name, table=resolve_star.this))  # checks the qualifier
                out.extend(available)
        elif isinstance(node, exp.Column):
            out.append(resolve(node))
        elif isinstance(node, exp.Alias) and isinstance(node.this, exp.Column):
            column = resolve(node.this)
            alias = Name.of(str(node.args["alias"].this), quoted=bool(node.args["alias"].args.get("quoted")))
            out.append(Column(alias.canonical, column.field, column.sql_type, column.types))
        else:
            raise Unsupported(f"{node.key.upper()} is not supported in SELECT (columns and * only)", node)
    return out


def _key_equals(
    node: exp.Expression, source: Declaration, resolve: Callable[[exp.Column], Column]
) -> str | None:
    """`key = literal` (either side): the key to read directly, or None (a scan). A numeric
    key is read directly only for a literal spelled as the key is stored (`10`, not `010`,
    `10.0` or `1e1`, which the WHERE finds equal to 10 and a direct read would not find)."""
    if (
        not isinstance(node, exp.EQ)
        or source.kind != "TABLE"
        or isinstance(source, SourceStream | JoinedDecl)
    ):
        return None
    for column, literal in ((node.this, node.expression), (node.expression, node.this)):
        if isinstance(column, exp.Column) and isinstance(literal, exp.Literal):
            if resolve(column).field != source.key.field:
                continue
            text = str(literal.this)
            if literal.is_string or int not in source.key.types:
                return text
            return text if text.isdigit() and str(int(text)) == text else None
    return None

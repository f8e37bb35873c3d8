"""Statements read from a text: sqlglot's tokenizer splits them (at `;` tokens, so a `;` inside a
string or comment is no end), the ksqlDB-only envelope (`CREATE STREAM ... WITH (...)`, `AS`,
`EMIT CHANGES`, `DROP STREAM`) is read token by token, and the SELECT inside is parsed by sqlglot.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import NoReturn

import sqlglot
from sqlglot import Token, TokenType, exp
from sqlglot.errors import ParseError, TokenError

from materializer.errors import SqlError
from materializer.sql.dialect import DIALECT, Name, line_column

SUPPORTED = (
    "supported: CREATE STREAM s (col TYPE, ...) WITH (kafka_topic='t', value_format='json'[, partitions=N]); "
    "CREATE TABLE t AS SELECT key, LATEST_BY_OFFSET(col) AS col, ... FROM stream GROUP BY key "
    "[EMIT CHANGES]; "
    "CREATE TABLE t AS SELECT col, ... FROM table [WHERE ...]; "
    "CREATE STREAM s [WITH (...)] AS SELECT a.col [AS name], ... FROM stream a "
    "[[INNER | LEFT] JOIN table b ON a.col = b.key ...] [WHERE ...] EMIT CHANGES; "
    "DROP STREAM|TABLE [IF EXISTS] name"
)
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


@dataclass(frozen=True)
class Statement:
    """One statement: its tokens, its number in the file, and the text to locate errors in."""

    text: str
    tokens: list[Token]
    number: int

    @property
    def label(self) -> str:
        words = [
            t.text for t in self.tokens[:3] if t.token_type not in (TokenType.L_PAREN, TokenType.SEMICOLON)
        ]
        return f"statement {self.number} ({' '.join(words)})"

    def refuse(self, problem: str, offset: int | None = None) -> NoReturn:
        line, column = line_column(self.text, self.tokens[0].start if offset is None else offset)
        raise SqlError(problem, statement=self.label, line=line, column=column)

    def refuse_at(self, problem: str, node: exp.Expression, base: int) -> NoReturn:
        """Refuse at a node of a SELECT parsed from the text at offset `base`."""
        ident = node if isinstance(node, exp.Identifier) else node.find(exp.Identifier)
        parent = node.parent
        while ident is None and parent is not None:  # COUNT(*) AS n: at least its statement part
            ident, parent = parent.find(exp.Identifier), parent.parent
        start = ident.meta.get("start") if ident is not None else None
        self.refuse(problem, None if start is None else base + int(start))


@dataclass(frozen=True)
class Property:
    value: str | int
    at: int


@dataclass(frozen=True)
class CreateSource:
    """`CREATE STREAM name (col TYPE, ...) WITH (...)`."""

    stmt: Statement
    kind: str
    name: Name
    columns: list[tuple[Name, exp.DataType, str, int]]  # name, type, its text, offset
    props: dict[str, Property]


@dataclass(frozen=True)
class CreateAs:
    """`CREATE STREAM|TABLE name [WITH (...)] AS SELECT ... [EMIT CHANGES]`."""

    stmt: Statement
    kind: str
    name: Name
    props: dict[str, Property]
    select: exp.Select
    base: int  # offset of the SELECT in the text
    emit_changes: bool


@dataclass(frozen=True)
class Drop:
    """`DROP STREAM|TABLE [IF EXISTS] name`."""

    stmt: Statement
    kind: str
    name: Name
    if_exists: bool


Parsed = CreateSource | CreateAs | Drop


def statements(text: str) -> Iterator[Statement]:
    try:
        tokens = DIALECT.tokenize(text)
    except TokenError as exc:
        raise SqlError(str(exc), statement="the text", line=1, column=1) from None
    current: list[Token] = []
    number = 0
    for token in tokens:
        if token.token_type == TokenType.SEMICOLON:
            if current:
                number += 1
                yield Statement(text, current, number)
            current = []
        else:
            current.append(token)
    if current:
        yield Statement(text, current, number + 1)


def read(stmt: Statement) -> Parsed:
    cursor = _Cursor(stmt)
    if cursor.word("DROP"):
        kind = cursor.kind()
        if_exists = cursor.word("IF")
        if if_exists and not cursor.word("EXISTS"):
            cursor.fail("expected IF EXISTS")
        name = cursor.name()
        if not cursor.done():
            cursor.fail("DROP ... DELETE TOPIC and anything after the name are not supported")
        return Drop(stmt, kind, name, if_exists)
    if not cursor.word("CREATE"):
        cursor.fail(f"only CREATE and DROP statements are supported; {SUPPORTED}")
    if cursor.peek_word("OR") or cursor.peek_word("SOURCE"):
        cursor.fail(f"CREATE OR REPLACE and CREATE SOURCE are not supported; {SUPPORTED}")
    kind = cursor.kind()
    if cursor.peek_word("IF"):
        cursor.fail(f"IF NOT EXISTS is not supported; {SUPPORTED}")
    name = cursor.name()
    if cursor.at(TokenType.L_PAREN):
        if kind == "TABLE":
            cursor.fail(
                "CREATE TABLE with columns (a source table) is not supported: declare a stream and "
                f"CREATE TABLE ... AS SELECT ... GROUP BY; {SUPPORTED}"
            )
        columns = cursor.columns()
        if not cursor.word("WITH"):
            cursor.fail("CREATE STREAM needs WITH (kafka_topic=..., value_format='json')")
        props = cursor.properties()
        if not cursor.done():
            cursor.fail(f"unexpected {cursor.current().text!r} after WITH (...)")
        return CreateSource(stmt, kind, name, columns, props)
    props = cursor.properties() if cursor.word("WITH") else {}
    if not cursor.word("AS"):
        cursor.fail(f"expected a column list or AS SELECT after the name; {SUPPORTED}")
    select, base, emit = cursor.select()
    return CreateAs(stmt, kind, name, props, select, base, emit)


class _Cursor:
    """Reads one statement's tokens left to right."""

    def __init__(self, stmt: Statement) -> None:
        self.stmt = stmt
        self.tokens = stmt.tokens
        self.i = 0

    def current(self) -> Token:
        return self.tokens[min(self.i, len(self.tokens) - 1)]

    def done(self) -> bool:
        return self.i >= len(self.tokens)

    def fail(self, problem: str) -> NoReturn:
        offset = self.current().end + 1 if self.done() else self.current().start
        self.stmt.refuse(problem, offset)

    def peek_word(self, word: str) -> bool:
        if self.done():
            return False
        t = self.tokens[self.i]
        return t.token_type not in (TokenType.IDENTIFIER, TokenType.STRING) and t.text.upper() == word

    def word(self, word: str) -> bool:
        if self.peek_word(word):
            self.i += 1
            return True
        return False

    def at(self, kind: TokenType) -> bool:
        return not self.done() and self.tokens[self.i].token_type == kind

    def expect(self, kind: TokenType, what: str) -> Token:
        if not self.at(kind):
            self.fail(f"expected {what}")
        self.i += 1
        return self.tokens[self.i - 1]

    def kind(self) -> str:
        for kind in ("STREAM", "TABLE"):
            if self.word(kind):
                return kind
        self.fail(f"expected STREAM or TABLE; {SUPPORTED}")

    def name(self) -> Name:
        if self.done():
            self.fail("expected a name")
        t = self.tokens[self.i]
        if t.token_type == TokenType.IDENTIFIER:
            if not t.text or any(ord(c) < 32 or ord(c) == 127 for c in t.text):
                self.fail(f"a quoted name must not be empty or hold control characters, found {t.text!r}")
            self.i += 1
            return Name.of(t.text, quoted=True)
        if t.token_type in (TokenType.STRING, TokenType.NUMBER) or not _WORD.match(t.text):
            self.fail(f"expected a name, found {t.text!r}")
        self.i += 1
        return Name.of(t.text, quoted=False)

    def columns(self) -> list[tuple[Name, exp.DataType, str, int]]:
        self.expect(TokenType.L_PAREN, "(")
        out: list[tuple[Name, exp.DataType, str, int]] = []
        while True:
            name = self.name()
            first, depth = self.i, 0
            while not self.done():
                t = self.tokens[self.i]
                if depth == 0 and t.token_type in (TokenType.COMMA, TokenType.R_PAREN):
                    break
                if t.token_type in (TokenType.L_PAREN, TokenType.LT):
                    depth += 1
                elif t.token_type in (TokenType.R_PAREN, TokenType.GT):
                    depth -= 1
                self.i += 1
            if self.i == first:
                self.fail(f"column {name.canonical} needs a type")
            type_text = self.stmt.text[self.tokens[first].start : self.tokens[self.i - 1].end + 1]
            try:
                data_type = exp.DataType.build(type_text, dialect=DIALECT)
            except (ParseError, ValueError):
                self.stmt.refuse(
                    f"unsupported type {type_text!r} of column {name.canonical}", self.tokens[first].start
                )
            out.append((name, data_type, type_text, self.tokens[first].start))
            if self.at(TokenType.COMMA):
                self.i += 1
                continue
            self.expect(TokenType.R_PAREN, "',' or ')' in the column list")
            return out

    def properties(self) -> dict[str, Property]:
        self.expect(TokenType.L_PAREN, "( after WITH")
        props: dict[str, Property] = {}
        while True:
            at = self.current().start
            key = self.name().canonical
            self.expect(TokenType.EQ, f"= after {key}")
            t = self.current()
            if self.at(TokenType.STRING):
                value: str | int = t.text
            elif self.at(TokenType.NUMBER) and t.text.isdigit():
                value = int(t.text)
            else:
                self.fail(f"{key} takes a string or an integer")
            self.i += 1
            if key in props:
                self.stmt.refuse(f"{key} is given twice", at)
            props[key] = Property(value, at)
            if self.at(TokenType.COMMA):
                self.i += 1
                continue
            self.expect(TokenType.R_PAREN, "',' or ')' in WITH (...)")
            return props

    def select(self) -> tuple[exp.Select, int, bool]:
        if not self.peek_word("SELECT"):
            self.fail("expected SELECT after AS")
        rest = self.tokens[self.i :]
        emit = len(rest) >= 2 and _is(rest[-2], "EMIT") and _is(rest[-1], "CHANGES")
        body = rest[:-2] if emit else rest
        for t in body:
            if _is(t, "EMIT"):
                self.stmt.refuse("only EMIT CHANGES, at the end of the statement, is supported", t.start)
        base = body[0].start
        sql = self.stmt.text[base : body[-1].end + 1]
        try:
            parsed = sqlglot.parse_one(sql, dialect=DIALECT)
        except ParseError as exc:
            err = exc.errors[0] if exc.errors else {}
            line, col = int(err.get("line") or 1), int(err.get("col") or 1)
            lines = sql.split("\n")
            offset = (
                base
                + sum(len(x) + 1 for x in lines[: line - 1])
                + max(col - len(str(err.get("highlight") or "")), 0)
            )
            self.stmt.refuse(f"cannot parse the SELECT: {err.get('description') or exc}", offset)
        if not isinstance(parsed, exp.Select):
            self.stmt.refuse(f"expected a plain SELECT; {SUPPORTED}", base)
        self.i = len(self.tokens)
        return parsed, base, emit


def _is(token: Token, word: str) -> bool:
    return token.token_type not in (TokenType.IDENTIFIER, TokenType.STRING) and token.text.upper() == word

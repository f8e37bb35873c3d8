"""ksqlDB's lexical rules as a sqlglot dialect, and positions in the text.

ksqlDB (its grammar, SqlBase.g4): identifiers are quoted with back-ticks or double quotes (a quoted
identifier keeps its case, an unquoted one is upper-cased), strings with single quotes (`''` is a
quote inside one), comments start with `--` (and `/* */`).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlglot import tokens
from sqlglot.dialects.dialect import Dialect


class Ksql(Dialect):
    """The tokenizer of ksqlDB's SQL; the parser is sqlglot's default one."""

    class Tokenizer(tokens.Tokenizer):
        IDENTIFIERS = ['"', "`"]
        QUOTES = ["'"]
        STRING_ESCAPES = ["'"]
        COMMENTS = ["--", ("/*", "*/")]


DIALECT = Ksql()


@dataclass(frozen=True, slots=True)
class Name:
    """An identifier: `canonical` is ksqlDB's (unquoted: upper-cased), by which names are compared;
    `field` is the JSON field and topology name (unquoted: lower-cased, as our topics spell fields)."""

    canonical: str
    field: str

    @classmethod
    def of(cls, text: str, *, quoted: bool) -> Name:
        return cls(text, text) if quoted else cls(text.upper(), text.lower())


def line_column(text: str, offset: int) -> tuple[int, int]:
    """1-based line and column of a character offset."""
    offset = max(0, min(offset, len(text)))
    line = text.count("\n", 0, offset) + 1
    return line, offset - (text.rfind("\n", 0, offset) + 1) + 1

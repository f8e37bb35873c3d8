"""Errors of the materializer.

MaterializerError            any failure of this package
├── TopologyError            a table, stream or join is declared wrongly (names, columns, references)
│   ├── UnknownTable         a table asked for by name was never declared
│   └── SqlError             a ksqlDB statement is malformed or outside the supported subset
├── NotStarted               a materializer used before start() or after stop()
├── StateError               the state folder cannot be opened or does not match the topology
└── PoisonRecord             a record is not JSON, not an object, or has a column of the wrong type
"""

from __future__ import annotations


class MaterializerError(Exception):
    """Any failure of the materializer."""


class TopologyError(MaterializerError, ValueError):
    """A table, stream or join is declared wrongly."""


class UnknownTable(TopologyError, KeyError):
    """A table asked for by name was never declared."""


class SqlError(TopologyError):
    """A ksqlDB statement that is malformed or outside the subset: names the statement, line, column."""

    def __init__(self, problem: str, *, statement: str, line: int, column: int) -> None:
        super().__init__(f"line {line}, column {column}: {statement}: {problem}")
        self.problem = problem
        self.statement = statement
        self.line = line
        self.column = column


class NotStarted(MaterializerError, RuntimeError):
    """The materializer was used before start() or after stop()."""


class StateError(MaterializerError):
    """The state folder cannot be opened or does not belong to this topology."""


class PoisonRecord(MaterializerError):
    """A record that cannot be decoded into the declared shape; `reason` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason

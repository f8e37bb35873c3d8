"""ksqlDB statements as a Topology: the seed's `.sql` runs as written.

    catalog = parse_sql(text)            # every statement checked; SqlError names statement, line, column
    topology = catalog.topology(on_output={"invoices_created": handler}, topicless={"invoices_created"})
    print(explain(catalog))              # what `python -m materializer check FILE` prints

The subset (anything else is refused, never guessed):

- `CREATE STREAM s (col TYPE, ...) WITH (kafka_topic='t', value_format='json'[, partitions=N])`:
  a source. Types: INTEGER/INT and BIGINT (a JSON integer), VARCHAR/STRING, BOOLEAN, DOUBLE (a JSON
  number), DECIMAL(p, s) (a JSON number; precision and scale are not enforced), ARRAY<...> (a JSON
  array; its elements are not checked). A record whose column holds another type is poison.
  PARTITIONS is shown, not enforced: topics are created by the services' topic setup.
- `CREATE TABLE t AS SELECT key, LATEST_BY_OFFSET(col) AS col, ... FROM s GROUP BY key`: a Table.
  Each column keeps its name (the engine folds the record's field of that name). The row key is
  the Kafka message key, which our topics set to the entity id (ksqlDB takes the GROUP BY column
  from the value; the two agree on our topics, and a record without a key is poison).
- `CREATE TABLE v AS SELECT col, ... | * FROM t [WHERE ...]`: a filtered view; it keeps every
  column of `t` (the engine does not project views).
- `CREATE STREAM o [WITH (kafka_topic=...)] AS SELECT a.col, ..., b.col [AS name], ... FROM s a
  [[INNER | LEFT] JOIN t b ON a.col = b.key ...] [WHERE ...] [EMIT CHANGES]`: stream-table joins
  on each table's key. Every column of `s` passes through under its name (the engine copies the
  stream's declared columns); at least one column of each table is selected. WHERE uses the
  stream's columns (it is tested before the joins). Output goes to `kafka_topic`, by default the
  stream's name.
- `DROP STREAM|TABLE [IF EXISTS] name`: refused while another declaration reads it. Dropping a
  name never declared is accepted with a note (the seed drops orders_created before creating it:
  its script was re-run against a server that had it; ksqlDB itself would refuse on a fresh one).
- WHERE: comparisons, IS [NOT] NULL, AND, OR, NOT, with SQL's three-valued logic.

Names: unquoted identifiers are case-insensitive (compared upper-cased, as ksqlDB); back-quoted or
double-quoted ones keep their case. The JSON field and topology name of an unquoted identifier is
its lower-case spelling, as our topics spell their fields (ksqlDB reads JSON fields ignoring case
and writes upper-case ones: our output topics keep lower-case fields). Strings: `'it''s'`.

Why sqlglot: it is a maintained pure-Python SQL tokenizer and parser with positions on tokens and
identifiers, and a dialect is a few lines (ksqlDB's quoting and comments, `dialect.py`). It has no
ksqlDB dialect: `CREATE STREAM`, `WITH (...)` properties and `EMIT CHANGES` fall back to an
unparsed command. So the envelope of each statement is read from sqlglot's tokens (`reader.py`),
and the SELECT inside, with its joins, WHERE and GROUP BY, is parsed by sqlglot. (A hand-written
parser for the SELECT would repeat what sqlglot does; `sqlparse` only splits and classifies.)
"""

from __future__ import annotations

from materializer.sql.catalog import Catalog
from materializer.sql.compiler import apply
from materializer.sql.explain import explain
from materializer.sql.reader import SUPPORTED, read, statements


def parse_sql(text: str) -> Catalog:
    """The catalog a text of ksqlDB statements declares (SqlError at the first statement refused)."""
    catalog = Catalog()
    for stmt in statements(text):
        try:
            apply(catalog, read(stmt))
        except RecursionError:  # sqlglot and the compiler recurse once per level of nesting
            stmt.refuse("the statement is nested too deeply (parentheses, NOT or types)")
    return catalog


__all__ = ["SUPPORTED", "Catalog", "explain", "parse_sql"]

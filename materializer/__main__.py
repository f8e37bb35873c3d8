"""`python -m materializer check FILE.sql`: check ksqlDB statements and print the topology they make."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from materializer.errors import SqlError
from materializer.sql import SUPPORTED, explain, parse_sql


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m materializer", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser(
        "check",
        help="check a .sql file of ksqlDB statements and print the topology it makes (as EXPLAIN)",
        description=f"Exit 0 and print sources, tables, joins, outputs and topics; exit 1 with the "
        f"statement, line and column of the first statement refused. The subset: {SUPPORTED}",
    )
    check.add_argument("file", type=Path, help="the .sql file")
    args = parser.parse_args(argv)
    try:
        text = args.file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        print(f"{args.file}: cannot read: {exc}", file=sys.stderr)
        return 1
    try:
        catalog = parse_sql(text)
    except SqlError as exc:
        print(f"{args.file}: {exc}", file=sys.stderr)
        return 1
    print(explain(catalog))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`python -m kafka_integration dead-letters list|republish ID|discard ID`: the outbox's dead
letters in the schema named by DATABASE_SCHEMA (e.g. `orders`) of DATABASE_URL.

- `list` prints one JSON object per dead letter (id, topic, key, value size, error, times).
- `republish ID` moves it back into the outbox, behind what is there; the service's relay sends
  it. Fix the cause first (e.g. shrink the row's value), or it comes back.
- `discard ID` deletes it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Mapping, Sequence

import asyncpg

from kafka_integration import deadletters
from kafka_integration.encoding import dumps
from kafka_integration.errors import NoSuchDeadLetter


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m kafka_integration", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="area", required=True)
    dead = commands.add_parser("dead-letters", help="events the outbox relay could not publish")
    actions = dead.add_subparsers(dest="action", required=True)
    actions.add_parser("list", help="list them, oldest first")
    for name, text in (("republish", "move one back into the outbox"), ("discard", "delete one")):
        action = actions.add_parser(name, help=text)
        action.add_argument("id", type=int, help="its id (from list)")
    return parser


async def _run(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    if not environ.get("DATABASE_SCHEMA"):
        print("DATABASE_SCHEMA must name the service's schema (e.g. orders)", file=sys.stderr)
        return 2
    if not environ.get("DATABASE_URL"):
        print("DATABASE_URL must name the service's database", file=sys.stderr)
        return 2
    conn = await asyncpg.connect(
        environ["DATABASE_URL"], server_settings={"search_path": environ["DATABASE_SCHEMA"]}
    )
    try:
        if args.action == "list":
            for row in await deadletters.listing(conn):
                sys.stdout.buffer.write(dumps(row) + b"\n")
        elif args.action == "republish":
            new_id = await deadletters.republish(conn, args.id)
            print(f"dead letter {args.id} is back in the outbox as event {new_id}")
        else:
            await deadletters.discard(conn, args.id)
            print(f"dead letter {args.id} discarded")
    except NoSuchDeadLetter as exc:
        print(exc, file=sys.stderr)
        return 1
    finally:
        await conn.close()
    return 0


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] = os.environ) -> int:
    return asyncio.run(_run(_parser().parse_args(argv), environ))


if __name__ == "__main__":
    sys.exit(main())

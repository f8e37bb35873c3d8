"""`python -m kafka_integration COMMAND` (or `kafka-integration`): tools for a person at a
terminal. Each command is one subparser and one function; add a command by adding both.

    python -m kafka_integration tail orders               # from the beginning to the end, then stop
    python -m kafka_integration tail orders --follow      # ... and wait for new records
    python -m kafka_integration tail orders --from-end    # only new records (implies --follow)
    DATABASE_SCHEMA=orders python -m kafka_integration dead-letters list
    DATABASE_SCHEMA=orders python -m kafka_integration dead-letters republish ID
    DATABASE_SCHEMA=orders python -m kafka_integration dead-letters discard ID

The dead letters are the events of one service's outbox (the schema named by DATABASE_SCHEMA in
DATABASE_URL) that Kafka can never take as they are: `list` prints one JSON object per dead
letter (id, topic, key, value size, error, times); `republish ID` moves it back into the outbox,
behind what is there, for the service's relay to send (fix the cause first, e.g. shrink the row's
value, or it comes back); `discard ID` deletes it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Mapping, Sequence

from kafka_integration.cli import KAFKA
from kafka_integration.cli import parser as cli_parser

ENVIRONMENT = f"""{KAFKA}
  DATABASE_URL           PostgreSQL, for dead-letters
  DATABASE_SCHEMA        the service's schema, for dead-letters (e.g. orders)"""


def _note(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _tail(args: argparse.Namespace, parser: argparse.ArgumentParser, environ: Mapping[str, str]) -> int:
    from aiokafka.errors import KafkaError

    from kafka_integration.config import KafkaSettings
    from kafka_integration.errors import KafkaIntegrationError
    from kafka_integration.tail import TailOptions, tail

    if args.limit is not None and args.limit < 1:
        parser.error("--limit must be at least 1")
    try:
        settings = KafkaSettings.from_env(environ, client_id="kafka-cli")
    except ValueError as exc:
        parser.exit(2, f"{parser.prog}: cannot start: {exc}\n")
    options = TailOptions(
        topic=args.topic, from_end=args.from_end, follow=args.follow, limit=args.limit, as_json=args.json
    )
    try:
        count = asyncio.run(tail(settings, options, sys.stdout, _note))
    except KeyboardInterrupt:
        return 0
    except (KafkaIntegrationError, KafkaError, OSError) as exc:
        parser.exit(1, f"{parser.prog} tail: {exc} (BOOTSTRAP_SERVERS={settings.bootstrap_servers})\n")
    _note(f"{count} record(s)")
    return 0


def _dead_letters(
    args: argparse.Namespace, parser: argparse.ArgumentParser, environ: Mapping[str, str]
) -> int:
    if not environ.get("DATABASE_SCHEMA"):
        print("DATABASE_SCHEMA must name the service's schema (e.g. orders)", file=sys.stderr)
        return 2
    if not environ.get("DATABASE_URL"):
        print("DATABASE_URL must name the service's database", file=sys.stderr)
        return 2
    return asyncio.run(_dead_letter_action(args, environ))


async def _dead_letter_action(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    import asyncpg

    from kafka_integration import deadletters
    from kafka_integration.encoding import dumps
    from kafka_integration.errors import NoSuchDeadLetter

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


def _parser() -> argparse.ArgumentParser:
    parser = cli_parser(
        "kafka_integration", "Tools to look at the project's Kafka topics and outboxes.", ENVIRONMENT
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    tail = commands.add_parser(
        "tail",
        help="print a topic's records: key, value, headers",
        description="Print a topic's records (partition, offset, key, headers, value). Without"
        " --follow it stops at the end the broker reports when it starts. No consumer group is"
        " used: nothing is committed.",
    )
    tail.add_argument("topic", metavar="TOPIC", help="e.g. organizations, customers, orders, invoices")
    tail.add_argument("-f", "--follow", action="store_true", help="keep waiting for new records")
    tail.add_argument(
        "--from-end", action="store_true", help="skip what is there; print only new records (implies -f)"
    )
    tail.add_argument("-n", "--limit", type=int, metavar="N", help="stop after N records")
    tail.add_argument("--json", action="store_true", help="one JSON object per record (for jq)")
    tail.set_defaults(run=_tail, sub=tail)

    dead = commands.add_parser("dead-letters", help="events the outbox relay could not publish")
    actions = dead.add_subparsers(dest="action", required=True)
    actions.add_parser("list", help="list them, oldest first")
    for name, text in (("republish", "move one back into the outbox"), ("discard", "delete one")):
        action = actions.add_parser(name, help=text)
        action.add_argument("id", type=int, help="its id (from list)")
    dead.set_defaults(run=_dead_letters, sub=dead)
    return parser


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] = os.environ) -> int:
    args = _parser().parse_args(argv)
    code: int = args.run(args, args.sub, environ)
    return code


if __name__ == "__main__":
    sys.exit(main())

"""`python -m console COMMAND`: the console's actions as commands, on the same operations as the
pages (deadletters list|replay, notifications retry, lag). Output is JSON lines with `--json`,
else a short table; exit status 2 for input the console refuses, 1 when something is missing
or Kafka or PostgreSQL cannot be reached (a line saying which, not a traceback)."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any, TextIO

import asyncpg
from aiokafka.errors import KafkaError

from console import deadletters, lag, notices
from console.config import OperationsSettings
from console.db import console_pool
from console.errors import ConsoleError, InvalidInput, NotAllowed
from kafka_integration.tail import escape_controls
from servicekit import cli

ENVIRONMENT = f"""{cli.KAFKA_AND_DATABASE}
  HOST, CONSOLE_PORT     where the console listens (or --host, --port; default 3006)
  SECURITY_URL           the security service, for signing in (default http://127.0.0.1:3004)
  WORKER_URLS            the workers' /metrics, comma separated (default http://127.0.0.1:3005)
  NOTIFICATIONS_URL      the notifications API, for the tables (default http://127.0.0.1:3003)
  JWT_PUBLIC_KEY_FILE    the security service's public key, to check tokens (or JWT_PUBLIC_KEY)
  CONSUMER_GROUP, DEAD_LETTER_TOPIC, NOTIFICATIONS_TENANT   as the worker's
  CONSOLE_COOKIE_SECURE  1 when the console is served over HTTPS"""
DESCRIPTION = (
    "The operations console in the browser (without a command): the flow from a write to an"
    " email, dead letters, notifications, workers. The commands do the same actions."
)


def parser() -> argparse.ArgumentParser:
    top = cli.parser("console", DESCRIPTION, ENVIRONMENT)
    top.add_argument("--json", action="store_true", help="commands: one JSON object per line")
    cli.add_listen_options(top, "CONSOLE_PORT", 3006)
    sub = top.add_subparsers(dest="command", metavar="COMMAND")
    dl = sub.add_parser("deadletters", help="dead letters of the materializer and of the outboxes")
    dls = dl.add_subparsers(dest="action", required=True)
    dls.add_parser("list", help="list them, with reason and source position")
    rp = dls.add_parser("replay", help="replay to where they came from (recorded)")
    rp.add_argument("ids", nargs="+", help="m-<partition>-<offset> or o-<service>-<id>")
    nt = sub.add_parser("notifications", help="notifications")
    nts = nt.add_subparsers(dest="action", required=True)
    ls = nts.add_parser("list", help="list them")
    ls.add_argument("--status", choices=notices.STATUSES)
    rt = nts.add_parser("retry", help="retry failed notifications (recorded)")
    rt.add_argument("ids", nargs="+")
    sub.add_parser("lag", help="the worker group's lag per topic and partition")
    return top


def _print(rows: Sequence[Mapping[str, Any]], columns: Sequence[str], as_json: bool, out: TextIO) -> None:
    for row in rows:
        if as_json:
            print(json.dumps(dict(row), default=str, ensure_ascii=True), file=out)
        else:
            print("  ".join(_cell(row.get(c)) for c in columns), file=out)


def _cell(value: Any) -> str:
    text = json.dumps(value, default=str, ensure_ascii=True) if not isinstance(value, str) else value
    return escape_controls(text)[:80]


async def run(args: argparse.Namespace, environ: Mapping[str, str], out: TextIO) -> int:
    ops = OperationsSettings.from_env(environ)
    actor = f"cli:{environ.get('USER') or getpass.getuser()}"
    if args.command == "lag":
        _print(
            await lag.partition_lag(ops), ("topic", "partition", "committed", "end", "lag"), args.json, out
        )
        return 0
    async with console_pool(ops) as pool:
        if args.command == "deadletters" and args.action == "list":
            letters = [letter.as_dict() for letter in await deadletters.listing(pool, ops)]
            _print(letters, ("id", "source", "reason", "replayed"), args.json, out)
        elif args.command == "deadletters":
            done = await deadletters.replay(pool, ops, args.ids, actor)
            _print(done, ("id", "replayed_to"), args.json, out)
        elif args.action == "list":
            rows = await notices.listing(pool, ops, status=args.status)
            _print(rows, ("id", "status", "template", "recipient", "error"), args.json, out)
        else:
            ids = [notices.check_id(raw) for raw in args.ids]
            for ident in ids:
                await notices.retry(pool, ops, ident, actor)
                _print([{"id": ident, "status": "created"}], ("id", "status"), args.json, out)
    return 0


def main(argv: Sequence[str] | None = None) -> None:
    command = parser()
    args = command.parse_args(argv)
    if args.command is None:
        from console.app import create_app
        from console.config import Config
        from servicekit.app import run as serve

        config = cli.load(command, Config.from_env, cli.environment(args, "CONSOLE_PORT"))
        serve(create_app(config), config.http)
        return
    try:
        sys.exit(asyncio.run(run(args, os.environ, sys.stdout)))
    except (InvalidInput, NotAllowed) as exc:
        print(f"refused: {exc}", file=sys.stderr)
        sys.exit(2)
    except ConsoleError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
    except KafkaError as exc:  # the broker down or unreachable: its words, not a traceback
        print(f"error: Kafka cannot be asked: {type(exc).__name__}: {exc}", file=sys.stderr)
        sys.exit(1)
    except (OSError, asyncpg.PostgresError) as exc:
        print(f"error: PostgreSQL cannot be reached: {type(exc).__name__}: {exc}", file=sys.stderr)
        sys.exit(1)

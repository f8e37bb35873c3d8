"""`python -m kafka_integration COMMAND` (or `kafka-integration`): tools for a person at a
terminal. Each command is one subparser and one function; add a command by adding both.

    python -m kafka_integration tail orders               # from the beginning to the end, then stop
    python -m kafka_integration tail orders --follow      # ... and wait for new records
    python -m kafka_integration tail orders --from-end    # only new records (implies --follow)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence

from aiokafka.errors import KafkaError

from kafka_integration.config import KafkaSettings
from kafka_integration.errors import KafkaIntegrationError
from servicekit import cli

ENVIRONMENT = """\
  BOOTSTRAP_SERVERS      Kafka (default 127.0.0.1:19092; `make run` writes the one it used to
                         .run/env); SECURITY_PROTOCOL, SASL_MECHANISM, SASL_USERNAME, SASL_PASSWORD
  KAFKA_TOPIC_PREFIX     prepended to TOPIC, as the services do"""


def _note(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _tail(args: argparse.Namespace, settings: KafkaSettings) -> None:
    from kafka_integration.tail import TailOptions, tail

    options = TailOptions(
        topic=args.topic, from_end=args.from_end, follow=args.follow, limit=args.limit, as_json=args.json
    )
    count = asyncio.run(tail(settings, options, sys.stdout, _note))
    _note(f"{count} record(s)")


def _add_tail(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "tail",
        help="print a topic's records: key, value, headers",
        description="Print a topic's records (partition, offset, key, headers, value). Without"
        " --follow it stops at the end the broker reports when it starts. No consumer group is"
        " used: nothing is committed.",
    )
    parser.add_argument("topic", metavar="TOPIC", help="e.g. organizations, customers, orders, invoices")
    parser.add_argument("-f", "--follow", action="store_true", help="keep waiting for new records")
    parser.add_argument(
        "--from-end", action="store_true", help="skip what is there; print only new records (implies -f)"
    )
    parser.add_argument("-n", "--limit", type=int, metavar="N", help="stop after N records")
    parser.add_argument("--json", action="store_true", help="one JSON object per record (for jq)")
    parser.set_defaults(run=_tail)


def main(argv: Sequence[str] | None = None) -> None:
    parser = cli.parser("kafka_integration", "Tools to look at the project's Kafka topics.", ENVIRONMENT)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _add_tail(commands)
    args = parser.parse_args(argv)
    if getattr(args, "limit", None) is not None and args.limit < 1:
        parser.error("--limit must be at least 1")
    settings = cli.load(parser, lambda env: KafkaSettings.from_env(env, client_id="kafka-cli"), os.environ)
    try:
        args.run(args, settings)
    except KeyboardInterrupt:
        pass
    except (KafkaIntegrationError, KafkaError, OSError) as exc:
        where = f"BOOTSTRAP_SERVERS={settings.bootstrap_servers}"
        parser.exit(1, f"{parser.prog} {args.command}: {exc} ({where})\n")


if __name__ == "__main__":
    main()

"""`python -m notifications` (or `notifications`): the API (port 3003);
`python -m notifications worker` (or `notifications-worker`): the email worker, which checks no
token and so needs no JWT key."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from servicekit import cli

MAIL_AND_STATE = """\
  SMTP_HOST, SMTP_PORT   the SMTP server; SMTP_USERNAME, SMTP_PASSWORD, SMTP_STARTTLS or SMTP_TLS,
                         MAIL_FROM
  MATERIALIZER_STATE_DIR the RocksDB state of the materialized tables (default .run/materializer)
  CONSUMER_GROUP, JOIN_WAIT_SECONDS, DEAD_LETTER_TOPIC, NOTIFICATIONS_TENANT"""
API_ENVIRONMENT = f"""{cli.COMMON_ENVIRONMENT}
  JWT_PUBLIC_KEY_FILE    the security service's public key, to check tokens (or JWT_PUBLIC_KEY)
{MAIL_AND_STATE}"""
WORKER_ENVIRONMENT = f"""{cli.KAFKA_AND_DATABASE}
  HOST, WORKER_PORT      where /health and /metrics listen (or --host, --port; default 3005)
{MAIL_AND_STATE}
  SMTP_CONCURRENCY, NOTIFICATION_MAX_FAILURES"""
WORKER_DESCRIPTION = (
    "Run the materializer (the seed's ksqlDB tables and joins) and send the emails they trigger:"
    " one per invoice, a welcome per customer, one per invitation."
)


def _worker(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    from notifications.config import WorkerConfig
    from notifications.worker import run_worker

    run_worker(cli.load(parser, WorkerConfig.from_env, cli.environment(args, "WORKER_PORT")))


def main(argv: Sequence[str] | None = None) -> None:
    parser = cli.parser(
        "notifications",
        "Serve the notifications API (without a command): notifications sent, templates,"
        " POST /mails and the materialized tables.",
        API_ENVIRONMENT,
    )
    cli.add_listen_options(parser, "PORT", 3003)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    worker = commands.add_parser(
        "worker",
        help="run the email worker instead of the API",
        description=WORKER_DESCRIPTION,
        epilog=f"environment:\n{WORKER_ENVIRONMENT}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    cli.add_listen_options(worker, "WORKER_PORT", 3005)
    args = parser.parse_args(argv)
    if args.command == "worker":
        _worker(args, worker)
        return
    cli.serve(parser, args, "notifications")


def worker_main(argv: Sequence[str] | None = None) -> None:
    """The `notifications-worker` entry point: `python -m notifications worker`."""
    parser = cli.parser("notifications-worker", WORKER_DESCRIPTION, WORKER_ENVIRONMENT)
    cli.add_listen_options(parser, "WORKER_PORT", 3005)
    _worker(parser.parse_args(argv), parser)


if __name__ == "__main__":
    main()

"""The command line every process shares: `--help` and `--version` that need no environment,
`--host`/`--port` over HOST/PORT, and a setting that cannot be used reported in one line (exit 2),
not as a traceback. The arguments are parsed first; the environment is read after, by the
service's own `Config.from_env`, still the only reader of it."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Mapping
from importlib import metadata
from typing import TypeVar

T = TypeVar("T")

DISTRIBUTION = "kafka-and-python"

KAFKA_AND_DATABASE = """\
  BOOTSTRAP_SERVERS      Kafka (default 127.0.0.1:19092); SECURITY_PROTOCOL, SASL_MECHANISM,
                         SASL_USERNAME, SASL_PASSWORD for Confluent Cloud and the like
  KAFKA_TOPIC_PREFIX     a prefix for every topic (isolates tenants and test runs)
  DATABASE_URL           PostgreSQL (postgresql://user:password@host:port/db)
  DATABASE_SCHEMA        the schema it owns (default: its own name)"""
COMMON_ENVIRONMENT = f"""{KAFKA_AND_DATABASE}
  HOST, PORT             where it listens (or --host, --port)"""


def version() -> str:
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown (not installed)"


def program(module: str) -> str:
    """How the user called us: `python -m customers`, or the `customers` entry point."""
    called = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    return f"python -m {module}" if called in {"", "__main__.py", "-c"} else called


def parser(module: str, description: str, environment: str) -> argparse.ArgumentParser:
    """A parser whose --help lists the environment variables the process reads."""
    result = argparse.ArgumentParser(
        prog=program(module),
        description=description,
        epilog=f"environment:\n{environment}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    result.add_argument("--version", action="version", version=f"%(prog)s {version()}")
    return result


def add_listen_options(parser: argparse.ArgumentParser, port_variable: str, default_port: int) -> None:
    parser.add_argument("--host", help="the address to listen on (HOST; default 127.0.0.1)")
    parser.add_argument(
        "--port", type=int, help=f"the port to listen on ({port_variable}; default {default_port})"
    )


def environment(args: argparse.Namespace, port_variable: str = "PORT") -> dict[str, str]:
    """The process's environment with --host and --port, when given, in place of their variables."""
    env = dict(os.environ)
    if getattr(args, "host", None):
        env["HOST"] = args.host
    if getattr(args, "port", None) is not None:
        env[port_variable] = str(args.port)
    return env


def load(
    parser: argparse.ArgumentParser,
    build: Callable[[Mapping[str, str]], T],
    environ: Mapping[str, str],
    errors: tuple[type[Exception], ...] = (),
) -> T:
    """`build(environ)` (a Config.from_env); a configuration error exits 2 with its message."""
    from servicekit.auth import AuthConfigError  # here: --help must not wait for aiohttp and jwt

    known: tuple[type[Exception], ...] = (ValueError, AuthConfigError, *errors)
    try:
        return build(environ)
    except known as exc:
        parser.exit(2, f"{parser.prog}: cannot start: {exc}\n(see {parser.prog} --help)\n")

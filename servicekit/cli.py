"""The command line every process shares: `--help` and `--version` that need no environment,
`--host`/`--port` over HOST/PORT, and a setting that cannot be used reported in one line (exit 2),
not as a traceback. The arguments are parsed first; the environment is read after, by the
service's own `Config.from_env`, still the only reader of it."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Mapping, Sequence
from typing import TypeVar

from kafka_integration.cli import KAFKA, parser, program, version

__all__ = [
    "COMMON_ENVIRONMENT",
    "KAFKA_AND_DATABASE",
    "add_listen_options",
    "environment",
    "load",
    "parser",
    "program",
    "serve",
    "service_main",
    "version",
]

T = TypeVar("T")

KAFKA_AND_DATABASE = f"""{KAFKA}
  DATABASE_URL           PostgreSQL (postgresql://user:password@host:port/db)
  DATABASE_SCHEMA        the schema it owns (default: its own name)"""
COMMON_ENVIRONMENT = f"""{KAFKA_AND_DATABASE}
  HOST, PORT             where it listens (or --host, --port)"""


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


def serve(
    parser: argparse.ArgumentParser,
    args: argparse.Namespace,
    module: str,
    errors: tuple[type[Exception], ...] = (),
) -> None:
    """Serve the API of the service package `module`: its `app` and `config` are imported only now
    (`--help` needs none of them), its Config read (a bad setting exits 2), then run."""
    import importlib

    from servicekit.app import run

    create_app = importlib.import_module(f"{module}.app").create_app
    config = load(
        parser, importlib.import_module(f"{module}.config").Config.from_env, environment(args), errors
    )
    run(create_app(config), config.http)


def service_main(module: str, description: str, environment: str, default_port: int) -> Callable[..., None]:
    """The `main` of a service that only serves its API: `--help`, `--version`, `--host`, `--port`."""

    def main(argv: Sequence[str] | None = None) -> None:
        command = parser(module, description, environment)
        add_listen_options(command, "PORT", default_port)
        serve(command, command.parse_args(argv), module)

    return main

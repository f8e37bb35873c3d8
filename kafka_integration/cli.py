"""The command line every process of the project shares, at its lowest layer: the program's name
as the user called it, `--version`, and a parser whose `--help` lists the environment variables
the process reads (so it needs no environment). `servicekit.cli` builds the services' command
lines on it; `python -m kafka_integration` uses it directly."""

from __future__ import annotations

import argparse
import os
import sys
from importlib import metadata

DISTRIBUTION = "kafka-and-python"

KAFKA = """\
  BOOTSTRAP_SERVERS      Kafka (default 127.0.0.1:19092); SECURITY_PROTOCOL, SASL_MECHANISM,
                         SASL_USERNAME, SASL_PASSWORD, SSL_CAFILE for Confluent Cloud and the like
  KAFKA_TOPIC_PREFIX     a prefix for every topic (isolates tenants and test runs)"""


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

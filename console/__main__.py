"""`python -m console`: the console on CONSOLE_PORT (3006); `python -m console COMMAND` for the
same actions as commands (see cli.py)."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping

from aiohttp import web


def serve(environ: Mapping[str, str] = os.environ) -> None:
    from console.app import create_app
    from console.config import Config

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = Config.from_env(environ)
    web.run_app(create_app(config), host=config.http.host, port=config.http.port, access_log=None)


def main() -> None:
    from console.cli import main as cli_main

    sys.exit(cli_main())


if __name__ == "__main__":
    main()

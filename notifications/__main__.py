"""`python -m notifications`: the API (port 3003); `python -m notifications worker`: the email worker."""

from __future__ import annotations

import sys

from notifications.config import Config
from servicekit.app import run


def main() -> None:
    config = Config.from_env()
    if sys.argv[1:2] == ["worker"]:
        from notifications.worker import run_worker

        run_worker(config)
        return
    from notifications.app import create_app

    run(create_app(config), config.http)


if __name__ == "__main__":
    main()

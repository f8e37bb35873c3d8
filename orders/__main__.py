"""`python -m orders`: serve the orders API (port 3002 unless PORT says otherwise)."""

from __future__ import annotations

from orders.app import create_app
from orders.config import Config
from servicekit.app import run


def main() -> None:
    config = Config.from_env()
    run(create_app(config), config.http)


if __name__ == "__main__":
    main()

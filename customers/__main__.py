"""`python -m customers`: serve the customers API (port 3001 unless PORT says otherwise)."""

from __future__ import annotations

from customers.app import create_app
from customers.config import Config
from servicekit.app import run


def main() -> None:
    config = Config.from_env()
    run(create_app(config), config.http)


if __name__ == "__main__":
    main()

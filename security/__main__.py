"""`python -m security`: serve the security API (port 3004 unless PORT says otherwise)."""

from __future__ import annotations

from security.app import create_app
from security.config import Config
from servicekit.app import run


def main() -> None:
    config = Config.from_env()
    run(create_app(config), config.http)


if __name__ == "__main__":
    main()

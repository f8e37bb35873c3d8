"""`python -m orders` (or `orders`): serve the orders API (port 3002 unless PORT or --port says
otherwise)."""

from __future__ import annotations

from collections.abc import Sequence

from servicekit import cli

ENVIRONMENT = f"""{cli.COMMON_ENVIRONMENT}
  JWT_PUBLIC_KEY_FILE    the security service's public key, to check tokens (or JWT_PUBLIC_KEY)
  ORDERS_REQUIRE_KNOWN_PARTIES, KNOWN_PARTIES_WAIT_SECONDS
                         accept orders only for organizations and customers seen on Kafka
                         (default true), and how long to wait for one just created (5)"""


def main(argv: Sequence[str] | None = None) -> None:
    parser = cli.parser("orders", "Serve the orders and invoices API.", ENVIRONMENT)
    cli.add_listen_options(parser, "PORT", 3002)
    args = parser.parse_args(argv)
    from orders.app import create_app  # after the arguments: --help needs none of it
    from orders.config import Config
    from servicekit.app import run

    config = cli.load(parser, Config.from_env, cli.environment(args))
    run(create_app(config), config.http)


if __name__ == "__main__":
    main()

"""`python -m customers` (or `customers`): serve the customers API (port 3001 unless PORT or
--port says otherwise)."""

from __future__ import annotations

from collections.abc import Sequence

from servicekit import cli

ENVIRONMENT = f"""{cli.COMMON_ENVIRONMENT}
  JWT_PUBLIC_KEY_FILE    the security service's public key, to check tokens (or JWT_PUBLIC_KEY)"""


def main(argv: Sequence[str] | None = None) -> None:
    parser = cli.parser("customers", "Serve the organizations, customers and invitations API.", ENVIRONMENT)
    cli.add_listen_options(parser, "PORT", 3001)
    args = parser.parse_args(argv)
    from customers.app import create_app  # after the arguments: --help needs none of it
    from customers.config import Config
    from servicekit.app import run

    config = cli.load(parser, Config.from_env, cli.environment(args))
    run(create_app(config), config.http)


if __name__ == "__main__":
    main()

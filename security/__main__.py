"""`python -m security` (or `security`): serve the security API (port 3004 unless PORT or --port
says otherwise); `python -m security unlock EMAIL`: forget the failed logins of EMAIL from every
address (an operator's unlock, outside the API; the same environment as the service)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TYPE_CHECKING

from servicekit import cli

if TYPE_CHECKING:
    from security.config import Config

ENVIRONMENT = f"""{cli.COMMON_ENVIRONMENT}
  JWT_PRIVATE_KEY_FILE   the Ed25519 key (PEM, PKCS8) tokens are signed with; TOKEN_TTL_SECONDS (3600)
  ADMIN_EMAIL, ADMIN_PASSWORD
                         the first administrator, created only while no user exists
  LOGIN_FREE_FAILURES, LOGIN_BASE_DELAY_SECONDS, LOGIN_MAX_DELAY_SECONDS, LOGIN_FORGET_SECONDS,
  LOGIN_TRUST_FORWARDED_FOR, PASSWORD_HASH_CONCURRENCY
                         the login policy (see the README, "Tokens and access")"""


async def unlock(config: Config, email: str) -> int:
    from security import db
    from servicekit.db import migrate, open_pool

    async with open_pool(config.db) as pool:
        await migrate(pool, ["kafka_integration", "security"], config.db.schema)
        return await db.unlock(pool, email)


def main(argv: Sequence[str] | None = None) -> None:
    parser = cli.parser(
        "security", "Serve the users, login/logout and access grants API (without a command).", ENVIRONMENT
    )
    cli.add_listen_options(parser, "PORT", 3004)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    unlock_parser = commands.add_parser(
        "unlock",
        help="forget the failed logins of EMAIL from every address",
        description="Forget the failed logins of EMAIL from every address, so its next login is not delayed.",
    )
    unlock_parser.add_argument("email", metavar="EMAIL")
    args = parser.parse_args(argv)
    from security.config import Config, SecurityConfigError  # after the arguments: --help needs none of it

    if args.command == "unlock":
        email = args.email.strip().lower()
        if not email:
            unlock_parser.error("EMAIL must not be empty")
        config = cli.load(parser, Config.from_env, cli.environment(args), (SecurityConfigError,))
        cleared = asyncio.run(unlock(config, email))
        print(f"unlocked {email}: failed logins from {cleared} address(es) forgotten")
        return
    cli.serve(parser, args, "security", (SecurityConfigError,))


if __name__ == "__main__":
    main()

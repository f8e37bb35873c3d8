"""`python -m security`: serve the security API (port 3004 unless PORT says otherwise);
`python -m security unlock EMAIL`: forget the failed logins of EMAIL from every address (an
operator's unlock, outside the API; the same environment as the service)."""

from __future__ import annotations

import asyncio
import sys

from security.app import create_app
from security.config import Config
from servicekit.app import run


async def unlock(config: Config, email: str) -> int:
    from security import db
    from servicekit.db import migrate, open_pool

    async with open_pool(config.db) as pool:
        await migrate(pool, ["kafka_integration", "security"], config.db.schema)
        return await db.unlock(pool, email)


def main() -> None:
    config = Config.from_env()
    if sys.argv[1:2] == ["unlock"]:
        if len(sys.argv) != 3 or not sys.argv[2].strip():
            sys.exit("usage: python -m security unlock EMAIL")
        email = sys.argv[2].strip().lower()
        cleared = asyncio.run(unlock(config, email))
        print(f"unlocked {email}: failed logins from {cleared} address(es) forgotten")
        return
    run(create_app(config), config.http)


if __name__ == "__main__":
    main()

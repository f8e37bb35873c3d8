"""Commit writes with events, then die by SIGKILL before any relay could publish them."""

from __future__ import annotations

import asyncio
import os
import signal
import sys

from kafka_integration import entity_event, unit_of_work
from servicekit.db import DatabaseSettings, migrate, open_pool


async def main() -> None:
    db = DatabaseSettings.from_env(os.environ, schema="unused")
    async with open_pool(db) as pool:
        await migrate(pool, ["kafka_integration"], db.schema)
        async with unit_of_work(pool) as uow:
            for i in range(int(sys.argv[1])):
                uow.emit(entity_event("things", "thing", "created", {"id": i, "n": i}))
        print("committed", flush=True)
        os.kill(os.getpid(), signal.SIGKILL)


asyncio.run(main())

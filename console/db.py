"""The console's database pool: its own schema (its record of actions), migrated; it reads the
services' schemas by qualified names."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg

from console.config import OperationsSettings
from servicekit.db import migrate, open_pool


@asynccontextmanager
async def console_pool(ops: OperationsSettings) -> AsyncIterator[asyncpg.Pool]:
    async with open_pool(ops.db) as pool:
        await migrate(pool, ["console"], ops.db.schema)
        yield pool

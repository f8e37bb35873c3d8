"""Recording the worker's notifications: one INSERT per record, awaited in turn (as the worker
did), against the shared INSERTs of `notifications.claims` for records handled together.

    .venv/bin/python -m bench.notify_claims --claims 3000 --together 1 8 64

Prints CPU seconds per 1,000 notifications in this process (asyncpg) and in PostgreSQL (the
postmaster and its backends, from /proc), and the wall time, for `alone` and for each batch
size in `--together` (how many records' handlers run at once: at 100 orders/s a few, in a
backlog up to the worker's handler_concurrency). Uses the local PostgreSQL (`infra/up.sh`), in a
schema of its own, dropped at the end."""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from collections.abc import Awaitable, Callable

import asyncpg

from bench.cpu import local_infra
from notifications import db
from notifications.claims import Claims
from servicekit.db import DatabaseSettings, migrate, open_pool


def claim(n: int) -> db.Claim:
    return db.Claim(
        db.Source("invoices", n % 3, n),
        template="invoice_created",
        recipient=f"customer-{n}@example.com",
        organization_id=7,
        tenant="default",
        message_id=f"<invoice-{n}.default@bench.test>",
        args={"invoice_id": n, "po": f"PO-{n}", "organization_name": "SuperCompany", "total": "36.00"},
        lease_seconds=60.0,
    )


async def alone(pool: asyncpg.Pool, claims: list[db.Claim]) -> None:
    for c in claims:
        await db.claim_one(pool, c)


def together(size: int) -> Callable[[asyncpg.Pool, list[db.Claim]], Awaitable[None]]:
    async def run(pool: asyncpg.Pool, claims: list[db.Claim]) -> None:
        shared = Claims(pool)
        for start in range(0, len(claims), size):
            await asyncio.gather(*(shared.claim(c) for c in claims[start : start + size]))

    return run


async def main(args: argparse.Namespace) -> None:
    settings = DatabaseSettings.from_env(
        {**os.environ, "DATABASE_SCHEMA": f"bench_claims_{os.getpid()}"}, "x"
    )
    postgres = next(p for p in local_infra(os.environ) if p.name.startswith("postgresql"))
    ways = [("alone", alone)] + [(f"{size} together", together(size)) for size in args.together]
    offset = 0
    async with open_pool(settings) as pool:
        try:
            await migrate(pool, ["notifications"], settings.schema)
            for run in range(1, args.runs + 1):
                for name, way in ways:
                    claims = [claim(offset + n) for n in range(args.claims)]
                    offset += args.claims
                    mine, theirs, wall = time.process_time(), postgres.seconds(), time.monotonic()
                    await way(pool, claims)
                    wall = time.monotonic() - wall
                    per = 1000 / args.claims
                    print(
                        f"run {run} {name:>12}: worker {(time.process_time() - mine) * per:.3f}, "
                        f"postgresql {(postgres.seconds() - theirs) * per:.3f} CPU s per 1,000; "
                        f"{args.claims / wall:,.0f} claims/s"
                    )
        finally:
            await pool.execute(f'DROP SCHEMA "{settings.schema}" CASCADE')


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--claims", type=int, default=3000)
    parser.add_argument("--together", type=int, nargs="+", default=[1, 8, 64])
    parser.add_argument("--runs", type=int, default=2)
    asyncio.run(main(parser.parse_args()))

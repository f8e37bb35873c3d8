"""What the orders service's write of one order costs, in this process and in PostgreSQL: the
CPU seconds per 1,000 orders of `orders.db.create_order` (the order, its items, its invoice and
its items, the outbox rows of both events, in one transaction), with no HTTP, no Kafka and no
relay around it.

    .venv/bin/python -m bench.orders_write --orders 5000 --items 0 --concurrency 8

Uses the running infrastructure (`bash infra/up.sh` first, or DATABASE_URL), a schema of its own
that it drops at the end. PostgreSQL's figure is its postmaster and all its backends (from
/proc, as bench.capacity counts it), so run it with nothing else using that server; the outbox
rows stay unpublished (no relay), as the flow's relay is measured apart (bench.outbox_relay).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
import uuid
from decimal import Decimal

from bench.cpu import local_infra
from orders import db
from orders.models import ItemFields, OrderFields
from servicekit.db import DatabaseSettings, migrate, open_pool
from tests.support import start_infra


def fields(n: int, items: int) -> OrderFields:
    return OrderFields.model_validate(
        {
            "po": f"bench-{n}",
            "organization_id": 1,
            "customer_id": 2,
            "date": "2022-05-07T07:50:03-00:00",
            "deliver_date": "2022-05-07T07:53:03-00:00",
            "items": [
                ItemFields(quantity=k + 1, description=f"thing {k}", code=f"T-{k}", amount=Decimal("19.99"))
                for k in range(items)
            ],
        }
    )


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--orders", type=int, default=5000)
    parser.add_argument("--items", type=int, default=0, help="line items per order")
    parser.add_argument("--concurrency", type=int, default=8, help="orders written at once")
    parser.add_argument("--json", action="store_true", help="also print the figures as one JSON line")
    args = parser.parse_args()
    env = {**start_infra(), **{k: v for k, v in os.environ.items() if k == "DATABASE_URL"}}
    env["DATABASE_SCHEMA"] = f"bench_{uuid.uuid4().hex[:8]}"
    settings = DatabaseSettings.from_env(env, schema="unused")
    (postgres,) = [p for p in local_infra(env) if p.name.startswith("postgresql")]
    bodies = [fields(n, args.items) for n in range(args.orders)]
    async with open_pool(settings) as pool:
        await migrate(pool, ["kafka_integration", "orders"], settings.schema)
        for body in bodies[: args.concurrency * 4]:  # warm up: every connection prepares its statements
            await db.create_order(pool, body)
        queue = iter(bodies)

        async def writer() -> None:
            for body in queue:
                await db.create_order(pool, body)

        ours, theirs, wall = time.process_time(), postgres.seconds(), time.perf_counter()
        await asyncio.gather(*(writer() for _ in range(args.concurrency)))
        ours, theirs = time.process_time() - ours, postgres.seconds() - theirs
        wall = time.perf_counter() - wall
        async with pool.acquire() as conn:
            await conn.execute(f'DROP SCHEMA "{settings.schema}" CASCADE')
    per = 1000 / args.orders
    out = {
        "orders": args.orders,
        "items": args.items,
        "concurrency": args.concurrency,
        "process_cpu_per_1000": round(ours * per, 3),
        "postgresql_cpu_per_1000": round(theirs * per, 3),
        "orders_per_second": round(args.orders / wall, 1),
    }
    print(
        f"{args.orders} orders, {args.items} items each, {args.concurrency} at once: "
        f"CPU s per 1,000 orders: this process {out['process_cpu_per_1000']}, "
        f"PostgreSQL {out['postgresql_cpu_per_1000']} ({out['orders_per_second']} orders/s, wall time)"
    )
    if args.json:
        print(json.dumps(out))


if __name__ == "__main__":
    asyncio.run(main())

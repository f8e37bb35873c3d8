"""The capacity benchmark's load generator, in a process of its own (so its CPU is counted
apart and it does not share an event loop with what it measures): places orders at a steady
rate, open loop (the schedule does not wait for answers), and prints one JSON line.

    python -m bench.order_load --orders-port P --org O --customer C --rate R --seconds S --prefix cap-400-

The administrator's token comes from BENCH_TOKEN. The JSON: `placed`, `errors` (the first few
kept in `error_samples`), `seconds` (from the first order's schedule to the last answer),
`created` (invoice id -> the order's commit time), `cpu_seconds` (this process's, from /proc)."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys

import aiohttp

from bench.cpu import own_seconds
from bench.orderflow import paced, place


async def main() -> None:
    parser = argparse.ArgumentParser()
    for name in ("--orders-port", "--org", "--customer"):
        parser.add_argument(name, type=int, required=True)
    parser.add_argument("--rate", type=float, required=True)
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--prefix", required=True)
    args = parser.parse_args()
    created: dict[int, float] = {}
    errors: list[str] = []
    connector = aiohttp.TCPConnector(limit=256)
    headers = {"Authorization": f"Bearer {os.environ['BENCH_TOKEN']}"}
    async with aiohttp.ClientSession(headers=headers, connector=connector) as session:

        async def one(n: int) -> None:
            try:
                invoice, committed = await place(
                    session, args.orders_port, args.org, args.customer, f"{args.prefix}{n}"
                )
                created[invoice] = committed
            except (TimeoutError, aiohttp.ClientError, RuntimeError) as exc:
                errors.append(f"{type(exc).__name__}: {exc}"[:300])

        _, seconds = await paced(args.rate, args.seconds, one)
    out = {
        "placed": len(created),
        "errors": len(errors),
        "error_samples": errors[:5],
        "seconds": seconds,
        "created": created,
        "cpu_seconds": own_seconds(os.getpid()),
    }
    sys.stdout.write(json.dumps(out) + "\n")


if __name__ == "__main__":
    asyncio.run(main())

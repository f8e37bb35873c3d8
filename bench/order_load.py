"""The capacity benchmark's load generator, in a process of its own (so its CPU is counted
apart and it does not share an event loop with what it measures): places orders at a steady
rate, open loop (the schedule does not wait for answers), and prints one JSON line.

    python -m bench.order_load --orders-port P --org O --customer C --rate R --seconds S --prefix cap-400-

The administrator's token comes from BENCH_TOKEN. The JSON: `placed`, `errors` (the first few
kept in `error_samples`), `seconds` (from the first order's schedule to the last answer),
`created` (invoice id -> the order's commit time), `cpu_seconds` (this process's, its start-up
included: the kernel's count for the process, as /proc's utime + stime).

It shares the cores with the system it loads, so it is kept light (bench.load_cost measures
it): bench.ordering's OrderClient (plain HTTP/1.1 keep-alive connections, bodies made and read
by orjson) rather than aiohttp's client, whose import and per-request machinery cost more than
the requests themselves."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time

import orjson

from bench.ordering import OrderClient, paced


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
    client = OrderClient(args.orders_port, os.environ["BENCH_TOKEN"])

    async def one(n: int) -> None:
        try:
            invoice, committed = await client.place(args.org, args.customer, f"{args.prefix}{n}")
            created[invoice] = committed
        except (TimeoutError, OSError, RuntimeError, ValueError, KeyError, TypeError) as exc:
            errors.append(f"{type(exc).__name__}: {exc}"[:300])

    try:
        _, seconds = await paced(args.rate, args.seconds, one)
    finally:
        client.close()
    out = {
        "placed": len(created),
        "errors": len(errors),
        "error_samples": errors[:5],
        "seconds": seconds,
        "created": created,
        "cpu_seconds": time.process_time(),
    }
    sys.stdout.buffer.write(orjson.dumps(out, option=orjson.OPT_NON_STR_KEYS) + b"\n")


if __name__ == "__main__":
    asyncio.run(main())

"""Latency from an order's commit to its invoice email in the SMTP sink, at a steady order rate.

    .venv/bin/python -m bench.notify_latency --rate 100 --seconds 30

Starts `python -m customers`, `python -m orders` and `python -m notifications worker` as their
own processes against the running infrastructure (`bash infra/up.sh` first; the local SMTP sink
is needed, its files carry their arrival time), places orders at `--rate` per second (open loop:
the schedule does not wait for answers), and for each invoice email compares the sink's arrival
time (its line in received.log, in ns) with the order's `created_at` (the transaction's start, just before
its commit: this slightly overstates the latency).
"""

from __future__ import annotations

import argparse
import asyncio
import time

import aiohttp
import asyncpg

from bench.orderflow import OrderLoad, invoice_emails, percentile, schema, start_flow
from bench.processes import bench_run
from kafka_integration import KafkaSettings
from tests.support import read_topic


async def breakdown(env: dict[str, str], search_path: str) -> dict[str, list[float]]:
    """Where the time goes, from the database's clocks: the order's commit to the worker's record
    of the notification (Kafka, the materializer, the join), and that record to the `sent` mark."""
    published = {
        str(m.value["po"]): m.timestamp / 1000
        for m in await read_topic(KafkaSettings.from_env(env), "invoices", timeout=0)
        if m.value is not None
    }
    conn = await asyncpg.connect(env["DATABASE_URL"], server_settings={"search_path": search_path})
    try:
        rows = await conn.fetch(
            """SELECT o.po, extract(epoch FROM o.created_at) AS committed,
                      extract(epoch FROM n.created_at) AS recorded, extract(epoch FROM n.sent_at) AS sent
               FROM orders o JOIN email_notifications n ON n.args->>'po' = o.po
               WHERE o.po NOT LIKE 'lat--%' AND n.sent_at IS NOT NULL"""
        )
    finally:
        await conn.close()
    rows = [r for r in rows if r["po"] in published]
    return {
        "commit -> invoice event in Kafka (relay)": [
            (published[r["po"]] - float(r["committed"])) * 1000 for r in rows
        ],
        "event in Kafka -> notification recorded (materializer, join)": [
            (float(r["recorded"]) - published[r["po"]]) * 1000 for r in rows
        ],
        "recorded -> sent (SMTP)": [(float(r["sent"]) - float(r["recorded"])) * 1000 for r in rows],
    }


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=float, default=100)
    parser.add_argument("--seconds", type=float, default=30)
    args = parser.parse_args()
    with bench_run() as run:
        flow = await start_flow(run)
        async with aiohttp.ClientSession(headers=run.headers) as session:
            load = OrderLoad(session, flow.customers.port, flow.orders.port)
            await load.prepare()
            total, placed_rate = await load.run(args.rate, args.seconds)
        created = load.created
        latencies: list[float] = []
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            latencies, _ = await asyncio.to_thread(invoice_emails, run.env, created)
            if len(latencies) >= total:
                break
            await asyncio.sleep(0.5)
        stages = await breakdown(run.env, f"{schema(run, 'orders')},{schema(run, 'notifications')}")
    print(f"{total} orders at {placed_rate:.0f}/s (asked {args.rate:.0f}/s); {len(latencies)} invoice emails")
    for name, values in stages.items():
        print(f"  {name}: p50 {percentile(values, 0.5):.1f} ms, p99 {percentile(values, 0.99):.1f} ms")
    if latencies:
        print(
            f"commit -> email in sink: p50 {percentile(latencies, 0.5):.1f} ms, "
            f"p99 {percentile(latencies, 0.99):.1f} ms, max {max(latencies):.1f} ms"
        )


if __name__ == "__main__":
    asyncio.run(main())

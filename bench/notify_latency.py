"""Latency from an order's commit to its invoice email in the SMTP sink, at a steady order rate.

    .venv/bin/python -m bench.notify_latency --rate 100 --seconds 30

Starts `python -m customers`, `python -m orders` and `python -m notifications worker` as their
own processes against the running infrastructure (`bash infra/up.sh` first; the local SMTP sink
is needed, its files carry their arrival time), places orders at `--rate` per second (open loop:
the schedule does not wait for answers), and for each invoice email compares the sink's arrival
time (the file name, in ns) with the order's `created_at` (the transaction's start, just before
its commit: this slightly overstates the latency).
"""

from __future__ import annotations

import argparse
import asyncio
import time
from datetime import datetime
from pathlib import Path

import aiohttp
import asyncpg

from bench.processes import bench_run, wait_healthy
from kafka_integration import KafkaSettings
from tests.support import read_topic

ORDER = {"date": "2022-05-07T07:50:03-00:00", "deliver_date": "2022-05-07T07:53:03-00:00", "state": "pending"}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def measured(sink: Path, domain: str, created: dict[str, float]) -> list[float]:
    """Milliseconds from commit to arrival of each invoice email of this run (warm-up excluded)."""
    out = []
    for path in sink.glob("*.eml"):
        head = path.read_bytes()[:4096].decode("utf-8", "replace")
        if domain not in head or "Subject: Invoice" not in head:
            continue
        po = head.split(" for order ", 1)[1].split(" ", 1)[0]
        if po in created and not po.startswith("lat--"):
            arrival = int(path.name.split("-", 1)[0]) / 1e9
            out.append((arrival - created[po]) * 1000)
    return out


async def breakdown(env: dict[str, str]) -> dict[str, list[float]]:
    """Where the time goes, from the database's clocks: the order's commit to the worker's record
    of the notification (Kafka, the materializer, the join), and that record to the `sent` mark."""
    published = {
        str(m.value["po"]): m.timestamp / 1000
        for m in await read_topic(KafkaSettings.from_env(env), "invoices", timeout=0)
        if m.value is not None
    }
    conn = await asyncpg.connect(env["DATABASE_URL"], server_settings={"search_path": env["DATABASE_SCHEMA"]})
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


class OrderLoad:
    """Orders placed at a steady rate through the orders service (open loop: the schedule does
    not wait for answers), for one organization and customer made through customers."""

    def __init__(self, session: aiohttp.ClientSession, customers: int, orders: int) -> None:
        self.session, self.customers, self.orders = session, customers, orders
        self.created: dict[str, float] = {}  # po -> commit time (s since epoch)
        self.org: dict[str, object] = {}
        self.customer: dict[str, object] = {}

    async def _post(self, url: str, body: object) -> dict[str, object]:
        async with self.session.post(url, json=body) as resp:
            assert resp.status == 201, await resp.text()
            return dict(await resp.json())

    async def prepare(self) -> None:
        """The organization and the customer, and 20 orders to warm up the path."""
        base = f"http://127.0.0.1:{self.customers}"
        self.org = await self._post(f"{base}/organizations", {"organization": {"name": "BenchCo"}})
        person = {"customer": {"name": "Bench", "last_name": "Mark", "email": "bench@example.com"}}
        self.customer = await self._post(f"{base}/customers", person)
        await asyncio.gather(*(self.place(f"lat--{n}") for n in range(1, 21)))

    async def place(self, po: str) -> None:
        body = {"po": po, "organization_id": self.org["id"], "customer_id": self.customer["id"], **ORDER}
        order = await self._post(f"http://127.0.0.1:{self.orders}/orders", body)
        self.created[po] = datetime.fromisoformat(str(order["created_at"])).timestamp()

    async def run(self, rate: float, seconds: float, tag: str = "lat") -> tuple[int, float]:
        """`rate` orders a second for `seconds`; how many, and the rate reached."""
        total = int(rate * seconds)
        start = time.monotonic()
        tasks = []
        for n in range(total):
            await asyncio.sleep(max(0.0, start + n / rate - time.monotonic()))
            tasks.append(asyncio.create_task(self.place(f"{tag}-{n}")))
        await asyncio.gather(*tasks)
        return total, total / (time.monotonic() - start)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=float, default=100)
    parser.add_argument("--seconds", type=float, default=30)
    args = parser.parse_args()
    with bench_run() as run:
        sink = Path(run.env["SMTP_SINK_DIR"])
        customers = run.start(["customers"])
        orders = run.start(["orders"])
        worker = run.start(["notifications", "worker"], port_variable="WORKER_PORT")
        for port in (customers, orders, worker):
            await wait_healthy(port)
        async with aiohttp.ClientSession(headers=run.headers) as session:
            load = OrderLoad(session, customers, orders)
            await load.prepare()
            total, placed_rate = await load.run(args.rate, args.seconds)
        created = load.created
        domain = run.env["MESSAGE_ID_DOMAIN"]
        latencies: list[float] = []
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            latencies = await asyncio.to_thread(measured, sink, domain, created)
            if len(latencies) >= total:
                break
            await asyncio.sleep(0.5)
        stages = await breakdown(run.env)
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

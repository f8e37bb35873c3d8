"""The order → invoice email flow as the benchmarks drive it: the system's processes started,
a party that orders, orders placed, and each invoice email's arrival in the SMTP sink.

Shared by bench.notify_latency, bench.console_cost and bench.capacity; the capacity benchmark's
load generator (bench.order_load) places its orders with bench.ordering alone (the same order,
schedule and request; a lighter client)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import aiohttp
import orjson

from bench.ordering import ORDER, paced
from bench.processes import Bench, Started, wait_healthy
from tests.support import arrivals


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


@dataclass
class Flow:
    """The processes of the flow: customers, orders, the workers, and (`whole`) the rest of the
    system, security and the notifications API, which read the same topics."""

    customers: Started
    orders: Started
    workers: list[Started]
    others: dict[str, Started] = field(default_factory=dict)

    def named(self) -> dict[str, Started]:
        out = {"customers": self.customers, "orders": self.orders}
        for n, worker in enumerate(self.workers, start=1):
            out["worker" if len(self.workers) == 1 else f"worker {n}"] = worker
        return {**out, **self.others}


def schema(run: Bench, service: str) -> str:
    """The schema a service owns in this run: one each, as in production (each service's own
    outbox and relay), the worker and the notifications API sharing the notifications one."""
    return f"{run.env['DATABASE_SCHEMA']}_{service}"


async def start_flow(run: Bench, workers: int = 1, whole: bool = False) -> Flow:
    """Start the flow's processes (each worker with a state folder of its own, all in one
    consumer group) and wait until each answers /health."""

    def start(args: list[str], service: str, **extra: str) -> Started:
        port_variable = "WORKER_PORT" if args[1:] == ["worker"] else "PORT"
        return run.spawn(args, port_variable, {"DATABASE_SCHEMA": schema(run, service), **extra})

    flow = Flow(
        customers=start(["customers"], "customers"),
        orders=start(["orders"], "orders"),
        workers=[
            start(
                ["notifications", "worker"],
                "notifications",
                MATERIALIZER_STATE_DIR=str(run.folder / f"state-worker-{n}"),
            )
            for n in range(workers)
        ],
    )
    if whole:
        flow.others["security"] = start(["security"], "security")
        flow.others["notifications api"] = start(["notifications"], "notifications")
    for started in flow.named().values():
        await wait_healthy(started.port)
    return flow


JSON = {"Content-Type": "application/json"}


async def post(session: aiohttp.ClientSession, url: str, body: object) -> dict[str, Any]:
    """POST `body` as JSON; the answer's JSON object, or RuntimeError unless it is a 201."""
    async with session.post(url, data=orjson.dumps(body), headers=JSON) as resp:
        raw = await resp.read()
        if resp.status != 201:
            raise RuntimeError(f"{url}: {resp.status} {raw.decode(errors='replace')}")
    return dict(orjson.loads(raw))


async def place(
    session: aiohttp.ClientSession, orders: int, org: int, customer: int, po: str
) -> tuple[int, float]:
    """Place one order: its invoice's id, and the order's commit time (its `created_at`, the
    transaction's start just before its commit: this slightly overstates the latency)."""
    body = {"po": po, "organization_id": org, "customer_id": customer, **ORDER}
    order = await post(session, f"http://127.0.0.1:{orders}/orders", body)
    return int(order["invoice_id"]), datetime.fromisoformat(str(order["created_at"])).timestamp()


async def party(session: aiohttp.ClientSession, customers: int) -> tuple[int, int]:
    """An organization and a customer to order for: their ids."""
    org = await post(
        session, f"http://127.0.0.1:{customers}/organizations", {"organization": {"name": "BenchCo"}}
    )
    person = {"customer": {"name": "Bench", "last_name": "Mark", "email": "bench@example.com"}}
    customer = await post(session, f"http://127.0.0.1:{customers}/customers", person)
    return int(org["id"]), int(customer["id"])


class OrderLoad:
    """Orders placed at a steady rate through the orders service in this process, for one
    organization and customer made through customers (bench.order_load is the same in a process
    of its own)."""

    def __init__(self, session: aiohttp.ClientSession, customers: int, orders: int) -> None:
        self.session, self.customers, self.orders = session, customers, orders
        self.created: dict[int, float] = {}  # invoice id -> the order's commit time (s since epoch)
        self.org = self.customer = 0

    async def prepare(self, warm_up: int = 20) -> None:
        """The organization and the customer, and `warm_up` orders (po `lat--<n>`, not counted
        in `created`) to warm up the path."""
        self.org, self.customer = await party(self.session, self.customers)
        await asyncio.gather(
            *(
                place(self.session, self.orders, self.org, self.customer, f"lat--{n}")
                for n in range(1, warm_up + 1)
            )
        )

    async def run(self, rate: float, seconds: float, tag: str = "lat") -> tuple[int, float]:
        """`rate` orders a second for `seconds` (po `<tag>-<n>`); how many, and the rate reached."""

        async def one(n: int) -> None:
            invoice, committed = await place(self.session, self.orders, self.org, self.customer, f"{tag}-{n}")
            self.created[invoice] = committed

        total, took = await paced(rate, seconds, one)
        return total, total / took


def invoice_emails(env: dict[str, str], created: dict[int, float]) -> tuple[list[float], dict[int, int]]:
    """For the invoices in `created` (invoice id -> commit time): milliseconds from commit to the
    first copy's arrival in the sink, and how many copies arrived of each (every copy counts)."""
    by_invoice: dict[int, list[int]] = {}
    for message_id, times in arrivals(env, env["MESSAGE_ID_DOMAIN"]).items():
        if message_id.startswith("<invoice-"):
            ident = message_id[len("<invoice-") :].split(".", 1)[0]
            if ident.isdecimal() and int(ident) in created:
                by_invoice[int(ident)] = times
    latencies = [(min(times) / 1e9 - created[i]) * 1000 for i, times in by_invoice.items()]
    return latencies, {i: len(by_invoice.get(i, [])) for i in created}

"""What the operations console costs the system at 100 orders/s, in CPU seconds per minute.

    .venv/bin/python -m bench.console_cost --rate 100 --seconds 60

Starts `customers`, `orders` and `notifications worker` as their own processes against the
running infrastructure (`bash infra/up.sh` first) and places orders at `--rate` per second
(bench.orderflow.OrderLoad, as bench.notify_latency) through three phases of `--seconds` each:

1. without the console;
2. with `python -m console` running (its sampler asks PostgreSQL, Kafka and the worker every
   2 s), nobody looking;
3. the same with the flow page open: the page loaded once and a client reading its live stream
   (/events: the figures and each chart's new point at each sample), as a browser does.

For each phase it reads each process's CPU time (user + system) from /proc/<pid>/stat (bench.cpu): the
console's, the worker's, Kafka's (the broker's JVM, from infra's pid file) and PostgreSQL's (the
postmaster, its reaped children and its live backends). The console's cost is its own CPU plus
what the other processes spend more per order than in phase 1 (per order: a busy machine may not
reach the asked rate, nor the same rate in each phase). The figures are CPU time, not wall time:
less sensitive to a busy machine than latency, not immune to it (cache and scheduler effects, the
other processes' own variation between phases), so a short run gives an order of magnitude.
"""

from __future__ import annotations

import argparse
import asyncio
import time

import aiohttp

from bench.cpu import Measured, local_infra, snapshot
from bench.orderflow import OrderLoad, schema, start_flow
from bench.processes import bench_run, wait_healthy

KAFKA, POSTGRESQL = "kafka (java)", "postgresql (all)"  # bench.cpu.local_infra's names


async def watch_flow(port: int, token: str, stop: asyncio.Event, seen: dict[str, int]) -> None:
    """The flow page loaded once, then its live stream read as a browser reads it."""
    cookies = {"console_session": token}
    async with aiohttp.ClientSession(cookies=cookies) as session:
        async with session.get(f"http://127.0.0.1:{port}/") as page:
            assert page.status == 200, await page.text()
            await page.read()
        async with session.get(
            f"http://127.0.0.1:{port}/events", timeout=aiohttp.ClientTimeout(total=None)
        ) as resp:
            assert resp.status == 200, await resp.text()
            while not stop.is_set():
                try:
                    line = await asyncio.wait_for(resp.content.readline(), 1.0)
                except TimeoutError:
                    continue
                if line.startswith(b"event:"):
                    name = line.split(b":", 1)[1].strip().decode()
                    seen[name] = seen.get(name, 0) + 1
                seen["bytes"] = seen.get("bytes", 0) + len(line)


async def phase(
    load: OrderLoad, processes: list[Measured], rate: float, seconds: float, tag: str
) -> tuple[dict[str, float], float, float]:
    """CPU seconds per process over `seconds` of load; the wall time and the rate reached."""
    before, start = snapshot(processes), time.monotonic()
    _, reached = await load.run(rate, seconds, tag)
    after, wall = snapshot(processes), time.monotonic() - start
    return {name: after[name] - before[name] for name in before}, wall, reached


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=float, default=100)
    parser.add_argument("--seconds", type=float, default=60)
    args = parser.parse_args()
    with bench_run() as run:
        flow = await start_flow(run)
        (worker,) = flow.workers
        processes = [
            *(m for m in local_infra(run.env) if m.name in (KAFKA, POSTGRESQL)),
            Measured("worker", worker.process.pid),
        ]
        results: list[tuple[str, dict[str, float], float, float]] = []
        async with aiohttp.ClientSession(headers=run.headers) as session:
            load = OrderLoad(session, flow.customers.port, flow.orders.port)
            await load.prepare()
            used, wall, reached = await phase(load, processes, args.rate, args.seconds, "none")
            results.append(("no console", used, wall, reached))
            # each service has a schema of its own (bench.orderflow.schema) and the console takes
            # one DATABASE_SCHEMA for all: the notifications one, where the rows it shows are (its
            # outbox figures then read that schema's outbox for each service: the same queries)
            console = run.spawn(
                ["console"],
                "CONSOLE_PORT",
                {
                    "WORKER_URLS": f"http://127.0.0.1:{worker.port}",
                    "DATABASE_SCHEMA": schema(run, "notifications"),
                },
            )
            await wait_healthy(console.port)
            processes.append(Measured("console", console.process.pid))
            await asyncio.sleep(5)  # its clients opened, its first samples taken
            used, wall, reached = await phase(load, processes, args.rate, args.seconds, "idle")
            results.append(("console, nobody looking", used, wall, reached))
            stop, seen = asyncio.Event(), {}
            watcher = asyncio.create_task(watch_flow(console.port, run.token, stop, seen))
            await asyncio.sleep(3)
            used, wall, reached = await phase(load, processes, args.rate, args.seconds, "page")
            stop.set()
            await watcher
            results.append(("console, flow page open", used, wall, reached))
    base = results[0][1]
    print(f"CPU seconds per minute of wall time, at {args.rate:.0f} orders/s, {args.seconds:.0f} s per phase")
    names = ["console", "worker", KAFKA, POSTGRESQL]
    print(f"  {'phase':<26}{'orders/s':>9}" + "".join(f"{n:>18}" for n in names))
    for label, used, wall, reached in results:
        cells = "".join(f"{used[n] * 60 / wall:>18.2f}" if n in used else f"{'-':>18}" for n in names)
        print(f"  {label:<26}{reached:>9.0f}{cells}")
    # the others' CPU per order placed, so that phases which reached different order rates (a
    # busy machine) compare; their extra is then given at the asked rate
    base_per_order = {n: base[n] / (results[0][3] * results[0][2]) for n in base}
    for label, used, wall, reached in results[1:]:
        extra = {
            n: (used[n] / (reached * wall) - base_per_order[n]) * args.rate * 60
            for n in names
            if n != "console"
        }
        own = used["console"] * 60 / wall
        print(
            f"{label}: the console {own:.2f} CPU s/min; the others' extra at {args.rate:.0f} orders/s "
            + ", ".join(f"{n} {v:+.2f}" for n, v in extra.items())
            + f"; in all {own + sum(extra.values()):+.2f} CPU s/min"
        )
    print(
        f"live stream read: {seen.get('flow', 0)} figure events, {seen.get('points', 0)} chart-point events, "
        f"{seen.get('bytes', 0) / 1024:.0f} KiB"
    )


if __name__ == "__main__":
    asyncio.run(main())

"""Capacity of the whole flow: the order rate stepped up until the p99 from an order's commit
to its invoice email passes a bound, or the rate achieved falls short of the one asked; each
process's CPU seconds per 1,000 orders at every step, so the stages are ranked by what they cost.

    .venv/bin/python -m bench.capacity                       # 100, 200, 400, 800, ... orders/s
    .venv/bin/python -m bench.capacity --rates 100 --seconds 10 --workers 2

Starts the whole system as its own processes against the running infrastructure (`bash
infra/up.sh` first; the local SMTP sink is needed, its received.log carries each arrival time):
customers, orders, security, the notifications API and `--workers` notification workers (one
consumer group). The load generator (bench.order_load) runs in a process of its own for each
step. A step holds when its p99 is at most `--p99-ms` (250) and the rate achieved is at least
95% of the one asked; the knee is the last step that held.

Correctness first: every order's invoice email must arrive exactly once (every copy in the sink
is counted); a step with a missing or repeated email is reported as failed and ends the run.

CPU per 1,000 orders: utime + stime from /proc/<pid>/stat of every process (PostgreSQL: the
postmaster and all its backends), from the step's start until its last email arrived, divided
by the orders placed. It counts CPU time, not wall time, so it means the same on a busy or
niced machine; the latencies and the knee do not. Kafka's and PostgreSQL's own background work
in that window is included.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from bench.cpu import Measured, local_infra, snapshot
from bench.orderflow import Flow, invoice_emails, party, percentile, place, start_flow
from bench.processes import Bench, bench_run

HOLD_FRACTION = 0.95


@dataclass
class Step:
    asked: float
    placed: int = 0
    errors: int = 0
    achieved: float = 0.0
    emails: int = 0
    missing: int = 0
    repeated: int = 0
    p50: float = math.nan
    p99: float = math.nan
    worst: float = math.nan
    window: float = 0.0  # seconds from the step's start to its last email
    cpu_per_1000: dict[str, float] = field(default_factory=dict)
    error_samples: list[str] = field(default_factory=list)

    def correct(self) -> bool:
        return self.errors == 0 and self.missing == 0 and self.repeated == 0

    def held(self, p99_ms: float) -> bool:
        return self.correct() and self.p99 <= p99_ms and self.achieved >= HOLD_FRACTION * self.asked


async def load(
    run: Bench, flow: Flow, org: int, customer: int, rate: float, seconds: float
) -> dict[str, Any]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.order_load",
        f"--orders-port={flow.orders.port}",
        f"--org={org}",
        f"--customer={customer}",
        f"--rate={rate}",
        f"--seconds={seconds}",
        f"--prefix=cap-{rate:g}-",
        env={**run.env, "BENCH_TOKEN": run.token},
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await proc.communicate()
    if proc.returncode != 0:
        raise SystemExit(f"the load generator failed ({proc.returncode})")
    result = json.loads(out)
    result["created"] = {int(k): v for k, v in result["created"].items()}
    return dict(result)


async def step(
    run: Bench,
    flow: Flow,
    processes: list[Measured],
    org: int,
    customer: int,
    rate: float,
    args: argparse.Namespace,
) -> Step:
    before = snapshot(processes)
    began = time.monotonic()
    result = await load(run, flow, org, customer, rate, args.seconds)
    created = result["created"]
    s = Step(
        asked=rate, placed=result["placed"], errors=result["errors"], error_samples=result["error_samples"]
    )
    s.achieved = s.placed / result["seconds"]
    deadline = time.monotonic() + args.drain_seconds
    while True:  # until every invoice email of the step has arrived (or the drain's bound)
        latencies, copies = await asyncio.to_thread(invoice_emails, run.env, created)
        if len(latencies) >= len(created) or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.25)
    after = snapshot(processes)
    s.window = time.monotonic() - began
    orders = max(1, s.placed)
    s.cpu_per_1000 = {name: (after[name] - before[name]) * 1000 / orders for name in before}
    s.cpu_per_1000["load generator"] = result["cpu_seconds"] * 1000 / orders
    await asyncio.sleep(args.settle_seconds)  # a repeat would come after the first copy
    latencies, copies = await asyncio.to_thread(invoice_emails, run.env, created)
    s.emails = sum(1 for n in copies.values() if n >= 1)
    s.missing = sum(1 for n in copies.values() if n == 0)
    s.repeated = sum(1 for n in copies.values() if n > 1)
    if latencies:
        s.p50, s.p99, s.worst = percentile(latencies, 0.5), percentile(latencies, 0.99), max(latencies)
    return s


async def idle(processes: list[Measured], seconds: float) -> dict[str, float]:
    """Each process's CPU seconds per second with no order coming: its floor (polls, heartbeats,
    the broker's own work), which a step's figure includes for the step's whole window."""
    before = snapshot(processes)
    await asyncio.sleep(seconds)
    after = snapshot(processes)
    return {name: (after[name] - before[name]) / seconds for name in before}


def report(steps: list[Step], p99_ms: float, workers: int, floor: dict[str, float]) -> None:
    print(
        f"\ncommit -> invoice email, {workers} worker(s); a step holds at p99 <= {p99_ms:g} ms"
        " and >= 95% of the rate"
    )
    print(
        f"{'asked/s':>8} {'achieved/s':>10} {'orders':>7} {'emails':>7} {'missing':>7} {'repeat':>6} "
        f"{'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}  held"
    )
    for s in steps:
        print(
            f"{s.asked:>8g} {s.achieved:>10.1f} {s.placed:>7} {s.emails:>7} {s.missing:>7} {s.repeated:>6} "
            f"{s.p50:>8.1f} {s.p99:>8.1f} {s.worst:>8.1f}  {'yes' if s.held(p99_ms) else 'NO'}"
        )
        for sample in s.error_samples:
            print(f"         error: {sample}")
    held = [s for s in steps if s.held(p99_ms)]
    print(f"knee: {held[-1].asked:g} orders/s" if held else "knee: below the first step")
    names = list(steps[0].cpu_per_1000) if steps else []
    print("\nCPU seconds per 1,000 orders (utime + stime from /proc), by step; idle: CPU s/s with no load")
    print(f"{'process':<20}{'idle':>8}" + "".join(f"{s.asked:>9g}/s" for s in steps))
    ranked = sorted(
        names, key=lambda n: -steps[0].cpu_per_1000[n] if not math.isnan(steps[0].cpu_per_1000[n]) else 0
    )
    for name in ranked:
        print(
            f"{name:<20}{floor.get(name, math.nan):>8.3f}"
            + "".join(f"{s.cpu_per_1000[name]:>11.2f}" for s in steps)
        )
    print(
        f"{'total':<20}{sum(floor.values()):>8.3f}"
        + "".join(f"{sum(v for v in s.cpu_per_1000.values() if not math.isnan(v)):>11.2f}" for s in steps)
    )


def net(s: Step, floor: dict[str, float], name: str) -> float:
    return s.cpu_per_1000[name] - floor.get(name, 0.0) * s.window * 1000 / max(1, s.placed)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--rates", type=float, nargs="*", help="the steps (default: 100, 200, 400, ... until one fails)"
    )
    parser.add_argument("--seconds", type=float, default=20, help="each step's length")
    parser.add_argument("--p99-ms", type=float, default=250)
    parser.add_argument("--workers", type=int, default=1, help="notification workers in the consumer group")
    parser.add_argument("--max-rate", type=float, default=25_600)
    parser.add_argument(
        "--drain-seconds", type=float, default=120, help="how long a step's emails are waited for"
    )
    parser.add_argument(
        "--settle-seconds", type=float, default=2, help="wait for repeats after the last email"
    )
    parser.add_argument("--idle-seconds", type=float, default=5, help="the idle floor's measurement")
    parser.add_argument("--json", action="store_true", help="also print the figures as one JSON line")
    args = parser.parse_args()
    steps: list[Step] = []
    with bench_run() as run:
        flow = await start_flow(run, workers=args.workers, whole=True)
        processes = [Measured(name, started.process.pid) for name, started in flow.named().items()]
        processes += local_infra(run.env)
        async with aiohttp.ClientSession(headers=run.headers) as session:
            org, customer = await party(session, flow.customers.port)
            warm = dict(
                await asyncio.gather(
                    *(place(session, flow.orders.port, org, customer, f"warm-{n}") for n in range(20))
                )
            )
        deadline = time.monotonic() + 120  # the warm-up's emails: every join and session is open
        while (
            len((await asyncio.to_thread(invoice_emails, run.env, warm))[0]) < len(warm)
            and time.monotonic() < deadline
        ):
            await asyncio.sleep(0.25)
        floor = await idle(processes, args.idle_seconds)
        rates = args.rates or [100 * 2**n for n in range(32) if 100 * 2**n <= args.max_rate]
        for rate in rates:
            s = await step(run, flow, processes, org, customer, rate, args)
            steps.append(s)
            print(
                f"step {rate:g}/s: achieved {s.achieved:.1f}/s, p99 {s.p99:.1f} ms,"
                f" {s.emails}/{s.placed} emails, {s.missing} missing, {s.repeated} repeated",
                flush=True,
            )
            if not args.rates and not s.held(args.p99_ms):
                break
            if not s.correct():
                break
    report(steps, args.p99_ms, args.workers, floor)
    print("\nless the idle floor over each step's window (what the orders themselves cost):")
    for name in steps[0].cpu_per_1000 if steps else []:
        print(f"{name:<28}" + "".join(f"{net(s, floor, name):>11.2f}" for s in steps))
    print(
        f"{'total':<28}" + "".join(f"{sum(net(s, floor, n) for n in s.cpu_per_1000):>11.2f}" for s in steps)
    )
    print("windows (s): " + ", ".join(f"{s.asked:g}/s {s.window:.1f}" for s in steps))
    if args.json:
        print(json.dumps({"workers": args.workers, "idle": floor, "steps": [s.__dict__ for s in steps]}))
    if any(not s.correct() for s in steps):
        raise SystemExit("an invoice email was missing or repeated, or an order failed: see above")


if __name__ == "__main__":
    asyncio.run(main())

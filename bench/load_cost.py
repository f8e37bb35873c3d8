"""What the capacity benchmark's load generator (`bench.order_load`) costs per order, alone: it
places `--rate` orders a second for `--seconds` against a stub of `POST /orders` (a process of
its own answering 201 with an order shaped as the orders service's, at once), and its CPU
seconds (from its own JSON line, the whole process: start-up included, as bench.capacity counts
it) are divided by the orders placed.

    .venv/bin/python -m bench.load_cost --rate 200 --seconds 15 --rounds 3
    git archive main | tar -x -C /tmp/base   # A/B: rounds alternate between the trees
    .venv/bin/python -m bench.load_cost --root /tmp/base --root .
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from aiohttp import web

from bench.processes import free_port
from tests.support import ROOT


def stub_app() -> web.Application:
    ids = itertools.count(1)

    async def create(request: web.Request) -> web.Response:
        body = await request.json()
        n = next(ids)
        now = datetime.now(UTC).isoformat()
        order = {
            "id": n,
            **body,
            "created_at": now,
            "updated_at": now,
            "items": [],
            "invoice_id": n,
        }
        return web.json_response(order, status=201)

    app = web.Application()
    app.router.add_post("/orders", create)
    return app


async def wait_open(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise SystemExit(f"no stub on port {port}") from None
            await asyncio.sleep(0.05)


async def one_round(root: Path, port: int, rate: float, seconds: float) -> dict[str, float]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.order_load",
        f"--orders-port={port}",
        "--org=1",
        "--customer=1",
        f"--rate={rate}",
        f"--seconds={seconds}",
        "--prefix=load-cost-",
        cwd=root,
        env={**os.environ, "BENCH_TOKEN": "stub"},
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await proc.communicate()
    result = json.loads(out)
    if result["errors"] or result["placed"] != int(rate * seconds):
        raise SystemExit(f"{root}: {result['placed']} placed, {result['errors']}: {result['error_samples']}")
    placed = result["placed"]
    return {"per_1000": result["cpu_seconds"] * 1000 / placed, "achieved": placed / result["seconds"]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=float, default=200)
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--root", type=Path, action="append", help="the tree to run it from (several: A/B)")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)  # the stub's own process
    args = parser.parse_args()
    if args.serve:
        web.run_app(stub_app(), host="127.0.0.1", port=args.serve, print=None)
    else:
        asyncio.run(measure(args))


async def measure(args: argparse.Namespace) -> None:
    port = free_port()
    stub = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.load_cost", f"--serve={port}", cwd=ROOT
    )
    try:
        await wait_open(port)
        roots = [root.resolve() for root in args.root or [ROOT]]
        figures: dict[Path, list[float]] = {root: [] for root in roots}
        for n in range(args.rounds):
            for root in roots:
                r = await one_round(root, port, args.rate, args.seconds)
                figures[root].append(r["per_1000"])
                print(
                    f"round {n + 1} {root}: {r['per_1000']:.3f} CPU s per 1,000 orders"
                    f" ({r['achieved']:.0f}/s)",
                    flush=True,
                )
        for root in roots:
            print(
                f"{root}: median {statistics.median(figures[root]):.3f}"
                f" (min {min(figures[root]):.3f}) CPU s per 1,000 orders"
            )
    finally:
        stub.terminate()
        await stub.wait()


if __name__ == "__main__":
    main()

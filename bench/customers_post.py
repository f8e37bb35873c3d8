"""Requests per second for POST /customers at concurrency 32, with the PostgreSQL commit rate of
the same machine (pgbench, one INSERT per transaction, 32 clients) beside it.

    .venv/bin/python -m bench.customers_post --seconds 15

Starts `python -m customers` as its own process on a free port against the running
infrastructure (`bash infra/up.sh` first), and calls it with an administrator's token.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import tempfile
import time
from pathlib import Path
from urllib.parse import urlparse

import aiohttp

from bench.processes import bench_run, wait_healthy


async def load(
    url: str, seconds: float, concurrency: int, headers: dict[str, str]
) -> tuple[int, int, list[float]]:
    done = errors = 0
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds
    async with aiohttp.ClientSession(headers=headers) as session:

        async def worker(w: int) -> None:
            nonlocal done, errors
            i = 0
            while time.perf_counter() < deadline:
                i += 1
                body = {"customer": {"name": f"N{w}", "last_name": f"L{i}", "email": f"u{w}.{i}@example.com"}}
                t0 = time.perf_counter()
                async with session.post(url, json=body) as resp:
                    await resp.read()
                    if resp.status == 201:
                        done += 1
                        latencies.append(time.perf_counter() - t0)
                    else:
                        errors += 1

        await asyncio.gather(*(worker(w) for w in range(concurrency)))
    return done, errors, latencies


def pgbench(database_url: str, seconds: int, clients: int) -> str:
    u = urlparse(database_url)
    env = {**os.environ, "PGPASSWORD": u.password or ""}
    base = ["-h", u.hostname or "127.0.0.1", "-p", str(u.port or 5432), "-U", u.username or "postgres"]
    db = (u.path or "/app").lstrip("/")
    subprocess.run(
        ["psql", *base, "-d", db, "-qc", "CREATE TABLE IF NOT EXISTS bench_commit (id bigserial, v text)"],
        env=env,
        check=True,
    )
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as script:
        script.write("INSERT INTO bench_commit (v) VALUES ('x');\n")
    out = subprocess.run(
        ["pgbench", *base, "-n", "-c", str(clients), "-j", "2", "-T", str(seconds), "-f", script.name, db],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    Path(script.name).unlink()
    return next(line for line in out.splitlines() if line.startswith("tps"))


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    with bench_run() as run:
        port = run.start(["customers"])
        await wait_healthy(port)
        url = f"http://127.0.0.1:{port}/customers"
        await load(url, 2, args.concurrency, run.headers)  # warm up
        done, errors, latencies = await load(url, args.seconds, args.concurrency, run.headers)
        database_url = run.env["DATABASE_URL"]
    latencies.sort()
    p50 = latencies[len(latencies) // 2] * 1000
    p99 = latencies[int(len(latencies) * 0.99)] * 1000
    rate = done / args.seconds
    print(f"POST /customers, concurrency {args.concurrency}, {args.seconds:.0f} s")
    print(f"  {rate:,.0f} requests/s ({done} created, {errors} errors)")
    print(f"  latency p50 {p50:.1f} ms, p99 {p99:.1f} ms")
    tps = pgbench(database_url, 10, args.concurrency)
    print(f"pgbench, one INSERT per transaction, {args.concurrency} clients: {tps}")


if __name__ == "__main__":
    asyncio.run(main())

"""Requests per second for POST /customers at concurrency 32, beside its floor (the same INSERT
in a bare aiohttp + asyncpg handler, bench.customers_floor) and the PostgreSQL commit rate of the
same machine (pgbench, one INSERT per transaction, 32 clients).

    .venv/bin/python -m bench.customers_post --seconds 15 --rounds 3

Starts `python -m customers` and `python -m bench.customers_floor` as their own processes on
free ports against the running infrastructure (`bash infra/up.sh` first), and calls the service
with an administrator's token. The service and its floor are loaded in turns (`--rounds` of
`--seconds` each, alternating), so a machine whose load changes during the run weighs on both
alike; the ratio is still sensitive to what else runs on the machine. Beside each rate it prints
the CPU milliseconds per request of the serving process and of PostgreSQL, Kafka and the load
generator over that target's rounds (utime + stime from /proc, bench.cpu): on a busy machine the
rates move with the other sessions' load, the CPU per request much less, and their sum says what
a request costs the whole machine (what bounds the rate on a quiet one).
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

from bench.cpu import local_infra, own_seconds, snapshot
from bench.orderflow import schema
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
    parser.add_argument("--rounds", type=int, default=3, help="turns of the service and its floor")
    args = parser.parse_args()
    with bench_run() as run:
        own = {"DATABASE_SCHEMA": schema(run, "customers")}
        service = run.spawn(["customers"], extra=own)
        await wait_healthy(service.port)  # it has migrated the table the floor writes to
        floor = run.spawn(["bench.customers_floor"], extra=own)
        await wait_healthy(floor.port)
        targets = {"POST /customers": service, "floor (bare INSERT handler)": floor}
        print("pids: " + ", ".join(f"{name} {t.process.pid}" for name, t in targets.items()), flush=True)
        results: dict[str, tuple[int, int, list[float]]] = {name: (0, 0, []) for name in targets}
        cpu = dict.fromkeys(targets, 0.0)
        # What else each request costs on this machine: PostgreSQL and Kafka, and this process
        # (the load generator); the SMTP sink is idle here.
        infra = [p for p in local_infra(run.env) if p.name != "smtp sink"]
        others: dict[str, dict[str, float]] = {
            name: {**dict.fromkeys((p.name for p in infra), 0.0), "load generator": 0.0} for name in targets
        }
        for target in targets.values():
            url = f"http://127.0.0.1:{target.port}/customers"
            await load(url, 2, args.concurrency, run.headers)  # warm up
        for _ in range(args.rounds):
            for name, target in targets.items():
                started, infra_before, load_before = (
                    own_seconds(target.process.pid),
                    snapshot(infra),
                    time.process_time(),
                )
                done, errors, latencies = await load(
                    f"http://127.0.0.1:{target.port}/customers", args.seconds, args.concurrency, run.headers
                )
                cpu[name] += own_seconds(target.process.pid) - started
                others[name]["load generator"] += time.process_time() - load_before
                for process, seconds in snapshot(infra).items():
                    others[name][process] += seconds - infra_before[process]
                before = results[name]
                results[name] = (before[0] + done, before[1] + errors, before[2] + latencies)
        database_url = run.env["DATABASE_URL"]
    print(f"concurrency {args.concurrency}, {args.rounds} alternating rounds of {args.seconds:.0f} s each")
    rates = {}
    for name, (done, errors, latencies) in results.items():
        latencies.sort()
        rates[name] = done / (args.seconds * args.rounds)
        per_request = cpu[name] * 1000 / max(done + errors, 1)
        print(f"{name}: {rates[name]:,.0f} requests/s ({done} created, {errors} errors)")
        print(f"  CPU ms/request: the server {per_request:.2f}", end="")
        rest = {process: seconds * 1000 / max(done + errors, 1) for process, seconds in others[name].items()}
        total = per_request + sum(rest.values())
        print("".join(f", {p} {ms:.2f}" for p, ms in rest.items()) + f"; all {total:.2f}")
        if latencies:
            p50, p99 = latencies[len(latencies) // 2] * 1000, latencies[int(len(latencies) * 0.99)] * 1000
            print(f"  latency p50 {p50:.1f} ms, p99 {p99:.1f} ms")
    ours, bare = rates.values()
    print(f"POST /customers at {ours / bare:.0%} of its floor (goal 60%; contention-sensitive, same run)")
    tps = pgbench(database_url, 10, args.concurrency)
    print(f"pgbench, one INSERT per transaction, {args.concurrency} clients: {tps}")


if __name__ == "__main__":
    asyncio.run(main())

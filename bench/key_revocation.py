"""How soon a revoked API key is refused by the notifications API (the issue asks: within a
second, everywhere). The security service and the notifications API run as processes; each round
issues a key, waits until the API accepts it, revokes it, and polls the API every 5 ms until it
answers 401: the time from the revocation's 204 to the first 401.

    .venv/bin/python -m bench.key_revocation --rounds 50
"""

from __future__ import annotations

import argparse
import asyncio
import time

import aiohttp

from bench.processes import bench_run, wait_healthy

POLL_SECONDS = 0.005


async def until_status(session: aiohttp.ClientSession, url: str, auth: str, status: int) -> None:
    while True:
        async with session.get(url, headers={"Authorization": auth}) as resp:
            if resp.status == status:
                return
        await asyncio.sleep(POLL_SECONDS)


async def rounds(security: str, tables: str, headers: dict[str, str], count: int) -> list[float]:
    delays = []
    async with aiohttp.ClientSession(headers=headers) as admin, aiohttp.ClientSession() as client:
        body = {
            "user": {
                "email": f"keys-{time.time_ns()}@example.com",
                "password": "a-good-password",
                "admin": True,
            }
        }
        async with admin.post(f"{security}/users", json=body) as resp:
            user = (await resp.json())["id"]
        for _ in range(count):
            async with admin.post(f"{security}/users/{user}/api_keys", json={}) as resp:
                key = await resp.json()
            auth = aiohttp.BasicAuth(key["key"], key["secret"]).encode()
            await asyncio.wait_for(until_status(client, tables, auth, 200), 60)
            async with admin.delete(f"{security}/users/{user}/api_keys/{key['id']}") as resp:
                assert resp.status == 204, await resp.text()
                revoked = time.perf_counter()
            await asyncio.wait_for(until_status(client, tables, auth, 401), 60)
            delays.append(time.perf_counter() - revoked)
    return delays


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=50)
    args = parser.parse_args()
    with bench_run() as run:
        security = run.start(["security"])
        notifications = run.start(["notifications"])
        await wait_healthy(security)
        await wait_healthy(notifications)
        delays = sorted(
            await rounds(
                f"http://127.0.0.1:{security}",
                f"http://127.0.0.1:{notifications}/tables",
                run.headers,
                args.rounds,
            )
        )
    p50 = delays[len(delays) // 2] * 1000
    p99 = delays[min(len(delays) - 1, int(len(delays) * 0.99))] * 1000
    print(f"revoked API key refused by the notifications API, {len(delays)} rounds:")
    print(f"  p50 {p50:.0f} ms, p99 {p99:.0f} ms, max {delays[-1] * 1000:.0f} ms")


if __name__ == "__main__":
    asyncio.run(main())

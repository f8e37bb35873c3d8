"""PostgreSQL's postmaster killed with SIGKILL under a steady order rate, then started again:
writes in flight get 503 (or no answer), never a 500; none answered 201 is lost; their events are
published after; the services and the worker reconnect by themselves."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aiohttp.test_utils import TestClient

from kafka_integration import KafkaSettings
from tests.faults import cluster
from tests.faults.load import SteadyLoad, acknowledged_since, check, flowing
from tests.support import base_url, unique, wait_until
from tests.system.conftest import WorkerProcess


async def test_postgres_killed_under_load_loses_no_acknowledged_write(
    orders_client: TestClient[Any, Any],
    parties: tuple[int, list[int]],
    workers: list[WorkerProcess],
    system_env: dict[str, str],
    kafka: KafkaSettings,
    admin_token: str,
) -> None:
    org, customers = parties
    workers[0].start()
    url = base_url(orders_client)
    async with SteadyLoad([url], admin_token, org, customers, unique("p")) as load:
        await flowing(system_env, load)
        fault_at = time.time()
        await asyncio.to_thread(cluster.kill_postmaster)

        async def refused_meanwhile() -> bool:  # the service answers while its database is gone
            return sum(1 for a in load.attempts if a.started > fault_at and a.answered) >= 10

        await wait_until(refused_meanwhile, timeout=120, interval=0.2)
        await asyncio.to_thread(cluster.start_postgres)
        restored = time.time()
        await acknowledged_since(load, restored, 10)
    fault = "kill -9 PostgreSQL's postmaster"
    await check(fault, load, system_env, kafka, fault_at=fault_at, outage_until=restored)
    answers = {a.status for a in load.attempts}
    assert answers <= {201, 503, None}, answers

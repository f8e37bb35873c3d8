"""Kafka's own faults on the three-node cluster (replication 3, min.insync.replicas 2): the node
leading the orders and invoices partitions, or the active controller, killed with SIGKILL under
a steady order rate and started again later. Nothing is restarted by hand but the dead node."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aiohttp.test_utils import TestClient

from kafka_integration import KafkaSettings
from tests.faults import cluster
from tests.faults.load import SteadyLoad, acknowledged_since, check, flowing
from tests.support import base_url, unique
from tests.system.conftest import WorkerProcess


async def _kill_node_under_load(
    fault: str,
    pick: Any,
    orders_client: TestClient[Any, Any],
    parties: tuple[int, list[int]],
    workers: list[WorkerProcess],
    system_env: dict[str, str],
    kafka: KafkaSettings,
    admin_token: str,
) -> None:
    org, customers = parties
    workers[0].start()
    async with SteadyLoad([base_url(orders_client)], admin_token, org, customers, unique("k")) as load:
        await flowing(system_env, load)
        node = await pick()
        fault_at = time.time()
        await asyncio.to_thread(cluster.kill_node, node)
        print(f"{fault}: killed node {node}")
        await acknowledged_since(load, fault_at, 20)  # orders go on with two of three nodes
        await asyncio.to_thread(cluster.start_cluster)
        await acknowledged_since(load, time.time(), 10)
    await check(fault, load, system_env, kafka, fault_at=fault_at)


async def test_the_broker_leading_orders_and_invoices_killed_loses_and_doubles_nothing(
    orders_client: TestClient[Any, Any],
    parties: tuple[int, list[int]],
    workers: list[WorkerProcess],
    system_env: dict[str, str],
    kafka: KafkaSettings,
    admin_token: str,
) -> None:
    async def leader() -> int:
        return await cluster.busiest_leader(kafka, ["orders", "invoices"])

    await _kill_node_under_load(
        "kill -9 the leader of orders/invoices",
        leader,
        orders_client,
        parties,
        workers,
        system_env,
        kafka,
        admin_token,
    )


async def test_the_active_controller_killed_loses_and_doubles_nothing(
    orders_client: TestClient[Any, Any],
    parties: tuple[int, list[int]],
    workers: list[WorkerProcess],
    system_env: dict[str, str],
    kafka: KafkaSettings,
    admin_token: str,
) -> None:
    async def controller() -> int:
        return cluster.active_controller()

    await _kill_node_under_load(
        "kill -9 the active controller",
        controller,
        orders_client,
        parties,
        workers,
        system_env,
        kafka,
        admin_token,
    )

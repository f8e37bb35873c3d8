"""The notifications worker killed with SIGKILL at chosen moments under a steady order rate: while
notifications are `sending` (seen in the table, every one of them held by the SMTP server before
it stored anything), between the server's `250` and the `sent` mark (the documented crash
window: at most one extra copy, same Message-ID), and during a rebalance with a second worker."""

from __future__ import annotations

import asyncio
import subprocess
import time
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from kafka_integration import KafkaSettings
from tests.faults.conftest import SENDERS
from tests.faults.load import SteadyLoad, acknowledged_since, check, flowing
from tests.faults.sink import FaultySink
from tests.support import base_url, unique, wait_until
from tests.system.conftest import WorkerProcess


async def _sending(env: dict[str, str]) -> int:
    conn = await asyncpg.connect(env["DATABASE_URL"], server_settings={"search_path": env["DATABASE_SCHEMA"]})
    try:
        return int(await conn.fetchval("SELECT count(*) FROM email_notifications WHERE status = 'sending'"))
    finally:
        await conn.close()


def _client_ports(pid: int) -> set[int]:
    """The local ports of the TCP connections process `pid` holds (its SMTP sessions among them)."""
    out = subprocess.run(["ss", "-Htnp"], capture_output=True, text=True, check=True).stdout
    return {int(line.split()[3].rsplit(":", 1)[1]) for line in out.splitlines() if f"pid={pid}," in line}


async def _every_sender_held(env: dict[str, str], sink: FaultySink, worker: WorkerProcess) -> None:
    """Wait until each of the worker's senders has a message held by the server (so none is
    anywhere else, e.g. between a 250 and its `sent` mark); the table shows them `sending`."""
    assert worker.proc is not None

    async def held() -> bool:
        mine = await asyncio.to_thread(_client_ports, worker.proc.pid)  # type: ignore[union-attr]
        return sum(1 for port in sink.held_peers if port in mine) == SENDERS

    await wait_until(held, timeout=120, interval=0.05)
    sending = await _sending(env)
    assert sending >= SENDERS, sending
    print(f"kill with {sending} notifications sending, {SENDERS} of them held by the server")


async def _kill_then_release(worker: WorkerProcess, sink: FaultySink) -> float:
    """kill -9 the worker, let the server see its sessions drop (a message held before it was
    stored is then never stored), then let the server go on; the moment of the kill."""
    assert worker.proc is not None
    ports = await asyncio.to_thread(_client_ports, worker.proc.pid)
    fault_at = time.time()
    worker.kill()

    async def sessions_dropped() -> bool:
        return not any(port in ports for port in sink.held_peers)

    await wait_until(sessions_dropped, timeout=30, interval=0.05)
    sink.release()
    return fault_at


def _load(client: TestClient[Any, Any], token: str, parties: tuple[int, list[int]]) -> SteadyLoad:
    return SteadyLoad([base_url(client)], token, parties[0], parties[1], unique("w"))


async def test_worker_killed_while_notifications_are_sending_sends_each_once(
    orders_client: TestClient[Any, Any],
    parties: tuple[int, list[int]],
    workers: list[WorkerProcess],
    sink: FaultySink,
    system_env: dict[str, str],
    kafka: KafkaSettings,
    admin_token: str,
) -> None:
    workers[0].start()
    async with _load(orders_client, admin_token, parties) as load:
        await flowing(system_env, load)
        sink.hold("store")
        await _every_sender_held(system_env, sink, workers[0])
        fault_at = await _kill_then_release(workers[0], sink)
        workers[0].start()  # as its supervisor would
        await acknowledged_since(load, time.time(), 10)
    await check("kill -9 the worker while sending", load, system_env, kafka, fault_at=fault_at)


@pytest.mark.crash_window
async def test_worker_killed_between_the_smtp_250_and_the_sent_mark_sends_at_most_one_extra_copy(
    orders_client: TestClient[Any, Any],
    parties: tuple[int, list[int]],
    workers: list[WorkerProcess],
    sink: FaultySink,
    system_env: dict[str, str],
    kafka: KafkaSettings,
    admin_token: str,
) -> None:
    workers[0].start()
    async with _load(orders_client, admin_token, parties) as load:
        await flowing(system_env, load)
        sink.hold("reply")  # stored, the 250 not sent yet: the server has them, the worker cannot know
        await _every_sender_held(system_env, sink, workers[0])
        window = set(sink.stored_while_held)
        print(f"kill with {len(window)} messages stored and their 250 held")
        fault_at = await _kill_then_release(workers[0], sink)
        workers[0].start()
        await acknowledged_since(load, time.time(), 10)
    fault = "kill -9 the worker between 250 and sent"
    # each invoice caught in the window is sent again once its lease ends (60 s), same Message-ID:
    # the check waits for that second copy (it stopped at the first, and the count depended on
    # how long the rest took)
    invoices_in_window = {mid for mid in window if mid.startswith("<invoice-")}
    outcome = await check(
        fault, load, system_env, kafka, fault_at=fault_at, may_double=window, resent=invoices_in_window
    )
    assert outcome.duplicates == len(invoices_in_window) >= 1


async def test_worker_killed_during_a_rebalance_with_a_second_worker_alive_sends_each_once(
    orders_client: TestClient[Any, Any],
    parties: tuple[int, list[int]],
    workers: list[WorkerProcess],
    sink: FaultySink,
    system_env: dict[str, str],
    kafka: KafkaSettings,
    admin_token: str,
) -> None:
    first, second = workers
    first.start()
    async with _load(orders_client, admin_token, parties) as load:
        await flowing(system_env, load)
        sink.hold("store")
        second.start()  # joins the group: the first gives its partitions up

        async def rebalancing() -> bool:
            return "stream partitions revoked" in first.log.read_text(errors="replace")

        await wait_until(rebalancing, timeout=120, interval=0.05)
        await _every_sender_held(system_env, sink, first)
        fault_at = await _kill_then_release(first, sink)
        # nobody restarts the first: the second takes its partitions and its unsent notifications
        await acknowledged_since(load, time.time(), 10)
    await check("kill -9 a worker during a rebalance", load, system_env, kafka, fault_at=fault_at)

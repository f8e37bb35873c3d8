"""The fault suite's world: the three-node Kafka cluster (replication 3, min.insync.replicas 2),
PostgreSQL, a sink the test controls, the customers service in this process, the orders service
in this process or as real processes (to kill their relay), and the notifications worker as real
processes. Run with `make test-faults`; not part of `make test`."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiohttp import ClientSession
from aiohttp.test_utils import TestClient

from kafka_integration import KafkaSettings
from tests.faults import cluster
from tests.faults.load import REPORT
from tests.faults.sink import FaultySink
from tests.support import ROOT, Tokens, start_infra, unique, wait_until
from tests.system.conftest import WorkerProcess

SENDERS = 4  # SMTP senders per worker


@pytest.fixture(scope="session")
def infra() -> dict[str, str]:
    env = start_infra(kafka_nodes=3)
    if env.get("KAFKA_NODES") != "3":
        pytest.skip("the fault suite needs the project's own three-node cluster (infra/kafka.sh)")
    return env


@pytest.fixture(autouse=True)
def whole_cluster(infra: dict[str, str]) -> Iterator[None]:
    """Each test starts and ends with all three nodes and PostgreSQL up (a failed test may have
    left one down)."""
    cluster.start_cluster()
    yield
    cluster.start_cluster()
    cluster.start_postgres()


@pytest.fixture
async def sink(tmp_path: Path) -> AsyncIterator[FaultySink]:
    server = FaultySink(tmp_path / "mail")
    await server.start()
    yield server
    server.release()
    await server.stop()


@pytest.fixture
def system_env(test_env: dict[str, str], tmp_path: Path, sink: FaultySink) -> dict[str, str]:
    return {
        **test_env,
        "MATERIALIZER_STATE_DIR": str(tmp_path / "state"),
        "CONSUMER_GROUP": unique("notifications-"),
        "JOIN_WAIT_SECONDS": "60",
        "WORKER_PORT": "0",
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(sink.port),
        "SMTP_SINK_DIR": str(sink.folder),
        "SMTP_CONCURRENCY": str(SENDERS),
    }


@pytest.fixture
def kafka(system_env: dict[str, str]) -> KafkaSettings:
    return KafkaSettings.from_env(system_env, client_id="tests")


@pytest.fixture
def workers(system_env: dict[str, str], tmp_path: Path) -> Iterator[list[WorkerProcess]]:
    """Two notification workers of one group (each its own state folder), not started yet."""
    made = [
        WorkerProcess(
            {**system_env, "MATERIALIZER_STATE_DIR": str(tmp_path / f"state{n}")}, tmp_path / f"w{n}.log"
        )
        for n in (1, 2)
    ]
    yield made
    for worker in made:
        worker.stop()


class ServiceProcess:
    """`python -m <service>` on a port of its own, to be killed with SIGKILL and started again."""

    def __init__(self, module: str, env: dict[str, str], port: int, log: Path) -> None:
        # module: `orders`, or a test hook's module path such as `tests.faults.orders_relay_pause`
        self.module, self.port, self.log = module, port, log
        self.env = {**os.environ, **env, "PORT": str(port), "HOST": "127.0.0.1"}
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", self.module], cwd=ROOT, env=self.env, stdout=out, stderr=out
            )

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()
        self.proc = None

    async def health(self) -> dict[str, Any] | None:
        try:
            async with ClientSession() as session, session.get(f"{self.url}/health") as resp:
                return dict(await resp.json()) if resp.status == 200 else None
        except Exception:
            return None

    async def wait_ready(self) -> None:
        async def ready() -> bool:
            return await self.health() is not None

        await wait_until(ready, timeout=120, interval=0.5)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
async def orders_processes(system_env: dict[str, str], tmp_path: Path) -> AsyncIterator[list[ServiceProcess]]:
    """Two instances of the orders service on a schema of their own, as in production (one relay
    per schema publishes at a time; the customers service in this process has the test's)."""
    schema = f"{system_env['DATABASE_SCHEMA']}_orders"
    env = {
        **system_env,
        "DATABASE_SCHEMA": schema,
        "FAULT_PAUSE_AFTER_PUBLISH": str(tmp_path / "pause-relay"),
    }
    made = [
        ServiceProcess("tests.faults.orders_relay_pause", env, free_port(), tmp_path / f"orders{n}.log")
        for n in (1, 2)
    ]
    yield made
    for process in made:
        process.stop()
    conn = await asyncpg.connect(system_env["DATABASE_URL"])
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()


@pytest.fixture
async def parties(customers_client: TestClient[Any, Any]) -> tuple[int, list[int]]:
    """An organization and eight customers (each with an address of the test) to order for."""
    made = await customers_client.post("/organizations", json={"organization": {"name": "FaultCo"}})
    org = await made.json()
    ids = []
    for n in range(8):
        body = {"customer": {"name": f"F{n}", "last_name": "T", "email": f"{unique('f')}@example.com"}}
        resp = await customers_client.post("/customers", json=body)
        assert resp.status == 201, await resp.text()
        ids.append((await resp.json())["id"])
    return org["id"], ids


@pytest.fixture
def admin_token(tokens: Tokens) -> str:
    return tokens.admin()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not REPORT:
        return
    write = terminalreporter.write_line
    write("")
    write(
        "| fault | orders placed | acknowledged | events published | emails received | duplicates "
        "| s to recover |"
    )
    write("|---|---|---|---|---|---|---|")
    for o in REPORT:
        write(
            f"| {o.fault} | {o.placed} | {o.acknowledged} | {o.events} ({o.records} records) | {o.emails} "
            f"| {o.duplicates} | {o.recover_seconds} |"
        )

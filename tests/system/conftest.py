"""The whole system in one test: customers, orders and notifications services on real ports,
and the notifications worker (in this process, or as a real process to kill)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from notifications.config import WorkerConfig
from notifications.worker import running_worker
from tests.support import ROOT, patient_parties, unique


@pytest.fixture
def test_env(test_env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    """The whole system's variables: the services' and the worker's (orders placed for parties
    created a moment ago: tests.support.patient_parties)."""
    return {
        **patient_parties(test_env),
        "MATERIALIZER_STATE_DIR": str(tmp_path / "state"),
        "CONSUMER_GROUP": unique("notifications-"),
        "JOIN_WAIT_SECONDS": "20",
        "WORKER_PORT": "0",
    }


@pytest.fixture
def system_env(test_env: dict[str, str]) -> dict[str, str]:
    return test_env


@pytest.fixture
def customers(customers_client: TestClient[Any, Any]) -> TestClient[Any, Any]:
    return customers_client


@pytest.fixture
def orders(orders_client: TestClient[Any, Any]) -> TestClient[Any, Any]:
    return orders_client


@pytest.fixture
async def worker(system_env: dict[str, str]) -> AsyncIterator[Any]:
    """The notifications worker running in this process."""
    async with running_worker(WorkerConfig.from_env(system_env)) as (materializer, notifier):
        yield materializer, notifier


class WorkerProcess:
    """`python -m notifications worker` as a real process: started, killed with SIGKILL, restarted."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env = {**os.environ, **env}
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None
        self.kills = 0

    def start(self) -> None:
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "notifications", "worker"],
                cwd=ROOT,
                env=self.env,
                stdout=out,
                stderr=out,
            )

    def pause(self) -> None:
        """SIGSTOP: the process holds still (no send, no mark) until it is killed."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGSTOP)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
            self.kills += 1
        self.proc = None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


@pytest.fixture
def worker_process(system_env: dict[str, str], tmp_path: Path) -> Iterator[WorkerProcess]:
    process = WorkerProcess(system_env, tmp_path / "worker.log")
    yield process
    process.stop()

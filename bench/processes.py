"""Start the project's processes for a benchmark: against the running infrastructure, in their
own schema and topic prefix, with a fresh signing key pair and an administrator's token."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from tests.support import ROOT, Tokens, start_infra, write_signing_keys


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class Started:
    """A process a benchmark started, and the port it listens on."""

    port: int
    process: subprocess.Popen[bytes]


class Bench:
    """The variables of one benchmark run, and the processes it started."""

    def __init__(self) -> None:
        schema = f"bench_{uuid.uuid4().hex[:8]}"
        self.folder = Path(tempfile.mkdtemp(prefix=f"{schema}-"))
        keys = write_signing_keys(self.folder / "jwt")
        self.env = {
            **os.environ,
            **start_infra(),
            **keys,
            "DATABASE_SCHEMA": schema,
            "KAFKA_TOPIC_PREFIX": f"{schema}.",
            "MESSAGE_ID_DOMAIN": f"{schema}.bench",
            "MATERIALIZER_STATE_DIR": str(self.folder / "state"),
            "CONSUMER_GROUP": f"{schema}-notifications",
        }
        self.token = Tokens(keys["JWT_PRIVATE_KEY_FILE"]).admin()
        self.headers = {"Authorization": f"Bearer {self.token}"}
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(
        self, args: Sequence[str], port_variable: str = "PORT", extra: Mapping[str, str] | None = None
    ) -> int:
        """`python -m <args>` on a free port (with `extra` variables); returns the port."""
        return self.spawn(args, port_variable, extra).port

    def spawn(
        self, args: Sequence[str], port_variable: str = "PORT", extra: Mapping[str, str] | None = None
    ) -> Started:
        """`python -m <args>` on a free port (with `extra` variables): its port and process."""
        port = free_port()
        log = open(self.folder / f"{args[0]}-{port}.log", "wb")
        env = {**self.env, **(extra or {}), port_variable: str(port)}
        proc = subprocess.Popen([sys.executable, "-m", *args], cwd=ROOT, env=env, stdout=log, stderr=log)
        self.processes.append(proc)
        return Started(port, proc)

    def stop(self) -> None:
        for proc in reversed(self.processes):
            proc.terminate()
        for proc in reversed(self.processes):
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()


@contextmanager
def bench_run() -> Iterator[Bench]:
    run = Bench()
    try:
        yield run
    finally:
        run.stop()


async def wait_healthy(port: int, timeout: float = 60) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    async with aiohttp.ClientSession() as session:
        while loop.time() < deadline:
            try:
                async with session.get(f"http://127.0.0.1:{port}/health") as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
    raise SystemExit(f"nothing healthy on port {port}")

"""`make run` (infra/run.py) as a real process on the infrastructure the tests use, in its own
run folder, schema, topic prefix and ports: a process that dies is reported at once with its log
and ends the run with status 1; the administrator is always the one the database holds."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.support import ROOT, unique

RUN_SECONDS = 300  # six processes starting on a small, busy machine


def _free(port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_port_base() -> int:
    """Six free ports in a row, where this suite may use them (64000-64999)."""
    for base in range(64100 + os.getpid() % 50 * 10, 64990, 10):
        if all(_free(base + i) for i in range(6)):
            return base
    raise RuntimeError("no six free ports in a row in 64100-64999")


@pytest.fixture
def run_env(test_env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    """The tests' Kafka, database and SMTP sink given from outside (so run.py starts none and
    stops none), and everything else of its own."""
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(("ADMIN_", "JWT_"))}
    given = ("BOOTSTRAP_SERVERS", "DATABASE_URL", "SMTP_HOST", "SMTP_PORT", "SMTP_SINK_DIR")
    return {
        **inherited,
        **{k: test_env[k] for k in given if k in test_env},
        "DATABASE_SCHEMA": test_env["DATABASE_SCHEMA"],
        "KAFKA_TOPIC_PREFIX": test_env["KAFKA_TOPIC_PREFIX"],
        "MESSAGE_ID_DOMAIN": test_env["MESSAGE_ID_DOMAIN"],
        "CONSUMER_GROUP": unique("run-"),
        "RUN_DIR": str(tmp_path / "run"),
        "PORT_BASE": str(free_port_base()),
    }


class Run:
    """infra/run.py running, its output read line by line."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.lines: list[str] = []

    async def until(self, text: str) -> str:
        """Read lines until one contains `text`; returns it (fails at the end of the output)."""
        assert self.proc.stdout is not None
        async with asyncio.timeout(RUN_SECONDS):
            while True:
                raw = await self.proc.stdout.readline()
                assert raw, f"run.py ended before {text!r}:\n" + "\n".join(self.lines)
                self.lines.append(raw.decode(errors="replace").rstrip("\n"))
                if text in self.lines[-1]:
                    return self.lines[-1]

    async def finish(self) -> tuple[int, str]:
        assert self.proc.stdout is not None
        async with asyncio.timeout(RUN_SECONDS):
            rest = await self.proc.stdout.read()
            self.lines.extend(rest.decode(errors="replace").splitlines())
            return await self.proc.wait(), "\n".join(self.lines)


@pytest.fixture
async def start_run() -> AsyncIterator[object]:
    runs: list[Run] = []

    async def start(env: dict[str, str], *args: str) -> Run:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "infra/run.py",
            *args,
            cwd=ROOT,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        runs.append(Run(proc))
        return runs[-1]

    yield start
    for run in runs:  # a failed test leaves nothing running: SIGTERM stops its children too
        if run.proc.returncode is None:
            run.proc.terminate()
            await run.proc.wait()


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.slow
async def test_a_process_that_dies_is_reported_with_its_log_and_the_run_ends_with_status_1(
    run_env: dict[str, str], start_run: object
) -> None:
    run = await start_run(run_env, "--no-demo")  # type: ignore[operator]
    await run.until("running, and watching the six processes")
    pids = {
        name: int(pid) for name, pid in re.findall(r"  ([\w-]+): started, pid (\d+),", "\n".join(run.lines))
    }
    assert set(pids) == {
        "customers",
        "orders",
        "notifications",
        "security",
        "notifications-worker",
        "console",
    }
    os.kill(pids["notifications-worker"], signal.SIGKILL)
    status, output = await run.finish()
    assert status == 1
    worker = pids["notifications-worker"]
    assert f"notifications-worker (pid {worker}) was killed by SIGKILL; the last lines of" in output
    shown = [
        line[6:] for line in output.split("was killed by SIGKILL", 1)[1].splitlines() if line[:6] == "    | "
    ]
    log = (Path(run_env["RUN_DIR"]) / "logs" / "notifications-worker.log").read_text().splitlines()
    assert shown and shown == log[-len(shown) :]  # the end of its log
    assert "the run ends with status 1" in output
    for name, pid in pids.items():
        assert not alive(pid), f"{name} (pid {pid}) still runs"


@pytest.mark.slow
async def test_a_run_after_one_with_admin_password_logs_in_and_a_wrong_one_says_why(
    run_env: dict[str, str], start_run: object
) -> None:
    admin_file = Path(run_env["RUN_DIR"]) / "admin"
    given = {**run_env, "ADMIN_EMAIL": "first@example.com", "ADMIN_PASSWORD": "given-password"}
    status, output = await (await start_run(given, "--no-demo", "--exit-after-demo")).finish()  # type: ignore[operator]
    assert status == 0, output
    assert "/login as first@example.com -> 201" in output
    assert admin_file.read_text() == "first@example.com\ngiven-password\n"
    assert admin_file.stat().st_mode & 0o777 == 0o600

    # plain `make run`: the demo, up to the invoice email, as the administrator the database holds
    status, output = await (await start_run(run_env, "--exit-after-demo")).finish()  # type: ignore[operator]
    assert status == 0, output
    assert "/login as first@example.com -> 201" in output
    assert "invoice email to jdo@gmail.com" in output

    # another password cannot replace the stored one: the run stops and says why and what to do
    wrong = {**run_env, "ADMIN_PASSWORD": "not-the-one\x1b[2J"}
    status, output = await (await start_run(wrong, "--exit-after-demo")).finish()  # type: ignore[operator]
    assert status == 1
    assert "/login as first@example.com -> 401" in output
    assert (
        "login refused: the database holds no administrator first@example.com with the ADMIN_PASSWORD given"
        in output
    )
    assert "plain `make run` uses the credentials that worked last" in output
    assert f"drop the schema `{run_env['DATABASE_SCHEMA']}`" in output or "make clean" in output
    assert "\x1b" not in output and "not-the-one" not in output  # the password is never printed
    assert admin_file.read_text() == "first@example.com\ngiven-password\n"  # the working one stays

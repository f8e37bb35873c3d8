"""Run one join engine in its own process and judge it by its output topic: started, watched
(end offsets only) until its output settles, stopped, its peak RSS taken from the kernel's
accounting of that process (`wait4`), then every output record checked (bench/output_check.py).

Its time is from the process's start to the broker time of its last output record: imports,
connecting, building its tables and the join are all in it, the same for every engine."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.output_check import check, wait_settled
from kafka_integration import KafkaSettings


def _stop(proc: subprocess.Popen[bytes], grace: float = 30.0) -> tuple[int, Any]:
    """SIGTERM, then SIGKILL after `grace` s; the exit status and the process's rusage."""
    if _alive(proc):
        proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            proc.returncode = os.waitstatus_to_exitcode(status)
            return proc.returncode, usage
        if time.monotonic() > deadline:
            proc.kill()
            deadline = float("inf")
        time.sleep(0.1)


def run_engine(
    name: str,
    cmd: Sequence[str],
    kafka: KafkaSettings,
    topic: str,
    expect: dict[int, tuple[Any, ...]],
    logs: Path,
    id_field: str = "id",
) -> dict[str, Any]:
    """Run `cmd` (its stdout and stderr kept in `logs`) and judge it by `topic`."""
    out_path, log_path = logs / f"{name}.out", logs / f"{name}.log"
    with out_path.open("wb") as out, log_path.open("wb") as log:
        start = time.time()
        # Popen's own wait would reap the process first and lose its rusage: _stop reaps it
        proc = subprocess.Popen(cmd, stdout=out, stderr=log)
        try:
            reason = asyncio.run(wait_settled(kafka, kafka.topic(topic), len(expect), lambda: _alive(proc)))
        finally:
            code, usage = _stop(proc)
    verdict = asyncio.run(check(kafka, kafka.topic(topic), expect, id_field))
    seconds = verdict.last_append_ms / 1000 - start if verdict.outputs else None
    result: dict[str, Any] = {
        "watch_ended": reason,
        "exit_code": code,
        "peak_rss_mb": round(usage.ru_maxrss / 1024),
        "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 1),
        "seconds_to_last_output": round(seconds, 2) if seconds is not None else None,
        # a rate only for a correct output: an engine that emits less or wrong is not timed
        "per_second": round(len(expect) / seconds) if verdict.ok and seconds else None,
        "check": verdict.as_dict(),
    }
    lines = out_path.read_text(errors="replace").strip().splitlines()
    if lines and lines[-1].startswith("{"):
        result["engine"] = json.loads(lines[-1])  # the materializer's own figures
    if not verdict.ok:
        result["log"] = str(log_path)
    return result


def _alive(proc: subprocess.Popen[bytes]) -> bool:
    """Whether the process still runs, without reaping it (that is _stop's, to get its rusage)."""
    return os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None

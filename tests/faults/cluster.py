"""The faults themselves: which Kafka node leads what, which one is the active controller, and
kill -9 / restart of a node or of PostgreSQL's postmaster (the project's own infra scripts)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterable

from aiokafka.admin import AIOKafkaAdminClient

from kafka_integration import KafkaSettings
from tests.support import ROOT

RUN = ROOT / ".run"


def kafka_script(*args: str) -> str:
    out = subprocess.run(
        ["bash", str(ROOT / "infra" / "kafka.sh"), *args],
        check=True,
        cwd=ROOT,
        env={**os.environ, "KAFKA_NODES": "3"},
        capture_output=True,
        text=True,
    )
    return out.stdout.strip()


def kill_node(node: int) -> None:
    kafka_script("kill-node", str(node))


def start_cluster() -> None:
    """Start the nodes that are not running (a killed one comes back with its data)."""
    kafka_script("start")


async def leaders(kafka: KafkaSettings, topics: Iterable[str]) -> dict[tuple[str, int], int]:
    """The leader node of each partition of these (logical) topics, as the cluster reports now."""
    names = {kafka.topic(t): t for t in topics}
    admin = AIOKafkaAdminClient(**kafka.client_kwargs())
    await admin.start()
    try:
        out = {}
        for topic in await admin.describe_topics(list(names)):
            for p in topic["partitions"]:
                out[(names[topic["topic"]], p["partition"])] = p["leader"]
        return out
    finally:
        await admin.close()


async def busiest_leader(kafka: KafkaSettings, topics: Iterable[str]) -> int:
    """The node leading the most partitions of these topics."""
    counts = Counter((await leaders(kafka, topics)).values())
    return counts.most_common(1)[0][0]


def active_controller() -> int:
    """The KRaft quorum's leader, from the quorum state each node keeps (highest epoch wins)."""
    best = (-1, -1)
    for node in (1, 2, 3):
        path = RUN / "kafka-cluster" / f"node{node}" / "data" / "__cluster_metadata-0" / "quorum-state"
        try:
            state = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if state.get("leaderId", -1) >= 0:
            best = max(best, (state["leaderEpoch"], state["leaderId"]))
    assert best[1] > 0, "no node knows the active controller"
    return best[1]


def kill_postmaster() -> None:
    """kill -9 PostgreSQL's postmaster (its backends notice and exit on their own)."""
    pid = int((RUN / "postgres" / "data" / "postmaster.pid").read_text().splitlines()[0])
    os.kill(pid, signal.SIGKILL)
    while _alive(pid):
        time.sleep(0.05)


def start_postgres() -> None:
    """Start PostgreSQL again; it refuses while the dead postmaster's backends still hold its
    shared memory, so this retries until they are gone."""
    deadline = time.monotonic() + 120
    while True:
        done = subprocess.run(
            ["bash", str(ROOT / "infra" / "postgres.sh"), "start"], cwd=ROOT, capture_output=True, text=True
        )
        if done.returncode == 0:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"postgres did not restart: {done.stderr[-2000:]}")
        time.sleep(1)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True

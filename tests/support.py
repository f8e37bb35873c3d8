"""Helpers for tests against the real broker, database and SMTP sink."""

from __future__ import annotations

import asyncio
import os
import subprocess
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from kafka_integration import KafkaSettings

ROOT = Path(__file__).resolve().parent.parent


def start_infra() -> dict[str, str]:
    """Start (or find) the local Kafka, PostgreSQL and SMTP sink with the project's own script,
    unless the environment already points at them; returns the variables to use."""
    given = {
        k: os.environ[k] for k in ("BOOTSTRAP_SERVERS", "DATABASE_URL", "SMTP_HOST") if os.environ.get(k)
    }
    if len(given) == 3:  # everything is configured from outside: start nothing
        extra = {k: os.environ[k] for k in ("SMTP_PORT", "SMTP_SINK_DIR", "LOCAL_KAFKA") if os.environ.get(k)}
        return {"SMTP_PORT": "25", **given, **extra}
    subprocess.run(["bash", str(ROOT / "infra" / "up.sh")], check=True, cwd=ROOT)
    env: dict[str, str] = {}
    for line in (ROOT / ".run" / "env").read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            env[key.strip()] = value.strip()
    for key in ("BOOTSTRAP_SERVERS", "DATABASE_URL", "SMTP_HOST", "SMTP_PORT"):
        if os.environ.get(key):
            env[key] = os.environ[key]
    return env


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}"


@dataclass(frozen=True)
class Message:
    topic: str
    partition: int
    offset: int
    key: str | None
    value: dict[str, Any] | None
    headers: dict[str, str]


async def read_topic(
    settings: KafkaSettings, topic: str, *, min_count: int = 0, timeout: float = 20.0
) -> list[Message]:
    """Every message of a (logical) topic from the beginning up to its current end; waits up to
    `timeout` for at least `min_count` messages."""
    name = settings.topic(topic)
    consumer = AIOKafkaConsumer(**settings.client_kwargs(), enable_auto_commit=False)
    await consumer.start()
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            out = await _read_to_end(consumer, topic, name)
            if len(out) >= min_count or loop.time() > deadline:
                return out
            await asyncio.sleep(0.2)
    finally:
        await consumer.stop()


async def _read_to_end(consumer: AIOKafkaConsumer, topic: str, name: str) -> list[Message]:
    cluster = await consumer._client.fetch_all_metadata()  # the topic may be new
    tps = [TopicPartition(name, p) for p in sorted(cluster.partitions_for_topic(name) or set())]
    if not tps:
        return []
    end = await consumer.end_offsets(tps)
    begin = await consumer.beginning_offsets(tps)
    remaining = {tp for tp in tps if end[tp] > begin[tp]}
    if not remaining:
        return []
    consumer.assign(tps)
    await consumer.seek_to_beginning(*tps)
    out: list[Message] = []
    while remaining:
        batch = await consumer.getmany(*remaining, timeout_ms=500)
        for tp, records in batch.items():
            out.extend(_message(topic, r) for r in records if r.offset < end[tp])
        for tp in list(remaining):
            if await consumer.position(tp) >= end[tp]:
                remaining.discard(tp)
    out.sort(key=lambda m: (m.partition, m.offset))
    return out


def _message(topic: str, r: Any) -> Message:
    return Message(
        topic=topic,
        partition=r.partition,
        offset=r.offset,
        key=r.key.decode() if r.key is not None else None,
        value=orjson.loads(r.value) if r.value is not None else None,
        headers={k: v.decode() for k, v in r.headers},
    )


def env_with(base: Mapping[str, str], **extra: str) -> dict[str, str]:
    return {**base, **extra}


def local_kafka(env: Mapping[str, str]) -> bool:
    return env.get("LOCAL_KAFKA") == "1"


def kafka_script(command: str) -> None:
    """Stop or start the project's own broker (data is kept across a stop)."""
    subprocess.run(["bash", str(ROOT / "infra" / "kafka.sh"), command], check=True, cwd=ROOT)


def mails(env: Mapping[str, str], to: str | None = None) -> list[Any]:
    """Messages in the SMTP sink (oldest first), parsed; optionally only those to `to`."""
    import email
    from email import policy

    folder = Path(env["SMTP_SINK_DIR"])
    out = []
    for path in sorted(folder.glob("*.eml")):
        message = email.message_from_bytes(path.read_bytes(), policy=policy.default)
        if to is None or message["To"] == to:
            out.append(message)
    return out


async def wait_for_mails(env: Mapping[str, str], to: str, count: int = 1, timeout: float = 30.0) -> list[Any]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        found = await asyncio.to_thread(mails, env, to)
        if len(found) >= count or loop.time() > deadline:
            return found
        await asyncio.sleep(0.2)

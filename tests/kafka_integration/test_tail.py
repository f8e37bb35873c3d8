"""`python -m kafka_integration tail TOPIC` against the real broker: every record with its key,
headers and value, hostile ones shown escaped (never raw control characters on a terminal), from
the beginning to the end found at start, or following new ones."""

from __future__ import annotations

import asyncio
import json
import os
import sys

from aiokafka import AIOKafkaProducer

from kafka_integration import KafkaSettings, TopicSpec, ensure_topics
from tests.support import ROOT


async def tail(env: dict[str, str], *args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "kafka_integration",
        "tail",
        *args,
        cwd=ROOT,
        env={"PATH": os.environ.get("PATH", ""), **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def produce(
    kafka: KafkaSettings, topic: str, *records: tuple[bytes | None, bytes | None, list[tuple[str, bytes]]]
) -> None:
    producer = AIOKafkaProducer(**kafka.client_kwargs())
    await producer.start()
    try:
        for key, value, headers in records:
            await producer.send_and_wait(kafka.topic(topic), value, key=key, headers=headers)
    finally:
        await producer.stop()


async def test_tail_prints_every_record_to_the_end_and_escapes_what_a_terminal_would_obey(
    kafka: KafkaSettings, test_env: dict[str, str]
) -> None:
    await ensure_topics(kafka, [TopicSpec("orders")])
    await produce(
        kafka,
        "orders",
        (b"1", b'{"id": 1, "po": "po002", "action": "created"}', [("event_type", b"order_created")]),
        (b"\xff\x1b[2J", b"not json \x1b]0;owned\x07", [("x\x1bh", b"\x1b[31mred")]),
        (b"1", None, []),  # a tombstone
        (b"big", b'{"po": "' + b"x" * 200_000 + b'"}', []),
    )
    proc = await tail(test_env, "orders", "--json")
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    assert b"\x1b" not in out and b"\x07" not in out
    records = [json.loads(line) for line in out.decode().splitlines()]
    assert [r["offset"] for r in records] == [0, 1, 2, 3]
    assert records[0]["key"] == "1" and records[0]["value"]["po"] == "po002"
    assert records[0]["headers"] == {"event_type": "order_created"}
    assert records[1]["key"] == "\\xff\\x1b[2J"
    assert records[1]["value"] == "not json \\x1b]0;owned\\x07"
    assert records[1]["headers"] == {"x\\x1bh": "\\x1b[31mred"}
    assert records[2]["value"] is None
    assert len(records[3]["value"]["po"]) == 200_000
    assert "4 record(s)" in err.decode()

    human = await tail(test_env, "orders", "--limit", "3")
    out, _ = await asyncio.wait_for(human.communicate(), 60)
    assert human.returncode == 0
    assert b"\x1b" not in out
    text = out.decode()
    assert "partition 0 offset 0  key 1" in text and "event_type=order_created" in text
    assert "(tombstone)" in text and "offset 3" not in text


async def test_tail_follows_new_records_from_the_end(kafka: KafkaSettings, test_env: dict[str, str]) -> None:
    await ensure_topics(kafka, [TopicSpec("customers")])
    await produce(kafka, "customers", (b"1", b'{"old": true}', []))
    proc = await tail(test_env, "customers", "--from-end", "--limit", "1", "--json")
    assert proc.stderr is not None
    line = await asyncio.wait_for(proc.stderr.readline(), 60)
    assert b"waiting for new records" in line  # it has found the end: what comes now is new
    await produce(kafka, "customers", (b"2", b'{"new": true}', []))
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    assert [json.loads(line)["value"] for line in out.decode().splitlines()] == [{"new": True}]


async def test_tail_of_a_missing_topic_says_so(test_env: dict[str, str]) -> None:
    proc = await tail(test_env, "no_such_topic\x1b[2J")
    _, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 1
    assert "no topic" in err.decode() and "no_such_topic" in err.decode()
    assert "Traceback" not in err.decode()

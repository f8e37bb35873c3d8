"""The worker's /health and lag gauge when Kafka cannot be asked: degraded, never a lag of 0.

The materializer here is a stand-in whose `partition_lag` fails as aiokafka does (or never
answers); the real one against the real broker is in tests/system/test_emails.py."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from aiokafka.errors import KafkaConnectionError

from notifications import worker_metrics
from notifications.worker import worker_app


class Unreachable:
    def __init__(self, hang: bool = False) -> None:
        self.hang = hang

    async def partition_lag(self) -> dict[tuple[str, int], int]:
        if self.hang:
            await asyncio.Event().wait()
        raise KafkaConnectionError("Unable to bootstrap from [('127.0.0.1', 1)]")


class Answering:
    async def partition_lag(self) -> dict[tuple[str, int], int]:
        return {("orders", 0): 3, ("orders", 1): 0, ("customers", 0): 2}


NOTIFIER = SimpleNamespace(sent=0, failed=0)


async def test_health_is_degraded_when_kafka_cannot_be_asked(serve: Any) -> None:
    client = await serve(worker_app(Unreachable(), NOTIFIER))  # type: ignore[arg-type]
    resp = await client.get("/health")
    assert resp.status == 503
    body = await resp.json()
    assert body["status"] == "degraded" and body["consumer_lag"] is None
    assert "KafkaConnectionError" in body["error"]
    metrics = await (await client.get("/metrics")).text()
    assert "consumer_lag_known 0.0" in metrics
    assert "consumer_lag{" not in metrics  # no sample rather than a false 0


async def test_health_is_degraded_when_kafka_does_not_answer_in_time(serve: Any, monkeypatch: Any) -> None:
    monkeypatch.setattr(worker_metrics, "LAG_TIMEOUT", 0.2)
    client = await serve(worker_app(Unreachable(hang=True), NOTIFIER))  # type: ignore[arg-type]
    resp = await client.get("/health")
    assert resp.status == 503
    assert "did not answer" in (await resp.json())["error"]


async def test_lag_is_labelled_by_topic_and_partition(serve: Any) -> None:
    client = await serve(worker_app(Answering(), NOTIFIER))  # type: ignore[arg-type]
    body = await (await client.get("/health")).json()
    assert body["status"] == "ok" and body["consumer_lag"] == 5
    assert body["partitions"] == {"customers/0": 2, "orders/0": 3, "orders/1": 0}
    metrics = await (await client.get("/metrics")).text()
    assert 'consumer_lag{partition="0",topic="orders"} 3.0' in metrics
    assert 'consumer_lag{partition="1",topic="orders"} 0.0' in metrics
    assert "consumer_lag_known 1.0" in metrics

"""The flow page's sampler against real Kafka, PostgreSQL and the worker: its Kafka clients kept
open between samples (and opened again after a failure), records in and out per topic and per
partition, a chart of each rate and lag (the outbox backlogs too), and the charts sent again on
the live stream at each sample."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import asyncpg
import pytest
from aiohttp.test_utils import TestClient
from aiokafka.errors import KafkaConnectionError

from console import lag, records
from console.config import OperationsSettings
from console.flow import Flow, Sample
from kafka_integration import Event, KafkaSettings, Producer
from tests.console.conftest import ADMIN, produce_organizations, sign_in
from tests.support import wait_until


@pytest.fixture
async def flow(pool: asyncpg.Pool, ops: OperationsSettings) -> AsyncIterator[Flow]:
    async with aiohttp.ClientSession() as session:
        made = Flow(pool, ops, session, ())
        yield made
        await made.kafka.close()


async def _sample(flow: Flow) -> Sample:
    sample = await flow.sample()
    flow.samples.append(sample)
    return sample


async def _organizations(kafka: KafkaSettings, per_partition: dict[int, int]) -> None:
    keys = [
        (f"{partition}{n:04d}", partition) for partition, count in per_partition.items() for n in range(count)
    ]
    await produce_organizations(kafka, [(k, p, {"id": int(k), "name": f"org {k}"}) for k, p in keys])


async def test_the_sampler_keeps_its_kafka_clients_and_reopens_them_after_a_failure(
    flow: Flow, kafka: KafkaSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _organizations(kafka, {0: 1})
    for _ in range(3):
        sample = await _sample(flow)
        assert "topics" not in sample.errors and "lag" not in sample.errors, sample.errors
    assert flow.kafka.opened == 1  # one set of clients for every sample, not one per sample
    kept = await flow.kafka.get()
    # one answer fails (aiokafka's clients reconnect by themselves after a broker comes back, so
    # the failure is injected where the sampler asks): the clients are dropped, new ones opened
    real = lag.group_lag

    async def failing(*args: Any) -> Any:
        monkeypatch.setattr(lag, "group_lag", real)
        raise KafkaConnectionError("the broker went away")

    monkeypatch.setattr(lag, "group_lag", failing)
    broken = await _sample(flow)
    assert (
        "lag" in broken.errors
        and broken.value("lag:") is None
        and "the broker went away" in broken.errors["lag"]
    )
    again = await _sample(flow)
    assert not again.errors.keys() & {"topics", "lag"} and again.value("part:organizations/0") == 1
    assert flow.kafka.opened == 2 and await flow.kafka.get() is not kept


async def _invoices(kafka: KafkaSettings, ids: range) -> None:
    """Invoices for a customer nobody has: the worker parks them, then dead-letters them."""
    producer = Producer(kafka)
    await producer.start()
    try:
        await producer.produce(
            [
                Event(
                    "invoices",
                    str(n),
                    {"id": n, "order_id": n, "customer_id": 99, "action": "created"},
                    "invoice_created",
                )
                for n in ids
            ]
        )
    finally:
        await producer.stop()


async def test_records_in_and_out_per_partition_and_a_chart_of_each_rate_and_lag(
    flow: Flow, kafka: KafkaSettings, worker: Any
) -> None:
    await _invoices(kafka, range(1, 13))

    async def consumed() -> bool:
        s = await _sample(flow)
        ends = {p: end for (t, p), end in s.ends.items() if t == "invoices"}
        return sum(ends.values()) == 12 and all(s.committed("invoices", p) == end for p, end in ends.items())

    await wait_until(consumed, interval=0.5)
    await _invoices(kafka, range(13, 25))
    await _sample(flow)
    async with records.reader(kafka) as consumer:
        tps = await records.partitions(kafka, "invoices")
        ends = {tp.partition: end for tp, end in (await consumer.end_offsets(tps)).items()}
    assert len(ends) > 1 and sum(ends.values()) == 24
    figures = flow.snapshot()
    assert figures["topic.invoices.records"] == 24 and figures["topic.invoices.rate"] > 0
    for p, end in ends.items():
        assert figures[f"part.invoices.{p}.in"] == end, p  # records in, per partition
        out = figures[f"part.invoices.{p}.out"]  # records out: the worker group's commits
        assert out is not None and out <= end and figures[f"part.invoices.{p}.lag"] == end - out
        assert figures[f"part.invoices.{p}.in_rate"] is not None
    assert sum(1 for p in ends if figures[f"part.invoices.{p}.in_rate"] > 0) >= 1
    names = [name for name, *_ in flow.chart_list()]
    for wanted in (
        "lag:",
        "lag:invoices",
        "lag:invoices/0",
        "outbox:customers",
        "outbox:orders",
        "topic:invoices",
        "out:invoices",
        "part:invoices/1",
        "part_out:invoices/1",
        "worker:emails_sent",
        "worker:records_in",
        "worker:parked",
    ):
        assert wanted in names, wanted
    for _ in range(2):  # a rate chart draws a line from two rates on: three samples
        await _sample(flow)
    drawn = flow.charts()
    assert set(drawn) == set(names)
    chart = drawn["part:invoices/0"]
    assert 'data-chart="part:invoices/0"' in chart and "invoices/0 in: " in chart and "<polyline" in chart
    latest = json.loads(flow.points())  # what the live stream sends: each chart's new point
    assert latest["at"] == flow.latest().at and set(latest["points"]) == set(names)
    now = flow.snapshot()
    assert latest["points"]["part:invoices/0"] == now["part.invoices.0.in_rate"]
    assert latest["points"]["lag:invoices/1"] == now["part.invoices.1.lag"]
    assert flow.points() is flow.points()  # worked out once per sample, however many watch


async def _events(resp: aiohttp.ClientResponse, wanted: str, count: int) -> list[Any]:
    """The data of the next `count` events named `wanted` on a server-sent event stream."""
    found: list[Any] = []
    name = ""
    while len(found) < count:
        line = (await resp.content.readline()).decode().rstrip("\r\n")
        if line.startswith("event:"):
            name = line.split(":", 1)[1].strip()
        elif line.startswith("data:") and name == wanted:
            found.append(json.loads(line.split(":", 1)[1]))
    return found


async def test_the_page_draws_every_chart_and_the_stream_sends_their_points_at_each_sample(
    console: TestClient[Any, Any],
) -> None:
    assert (await sign_in(console, *ADMIN)).status == 303

    async def drawn() -> bool:
        return 'data-chart="outbox:orders"' in await (await console.get("/")).text()

    await wait_until(drawn)
    page = await (await console.get("/")).text()
    for name in ("lag:", "outbox:customers", "worker:emails_sent", "worker:emails_failed"):
        assert f'data-chart="{name}"' in page, name
    async with console.get("/events") as resp:
        first, second = await _events(resp, "points", 2)
    # each sample sends the new point of every chart: the open page moves them on (console.js)
    assert "outbox:orders" in first["points"] and first["points"].keys() == second["points"].keys()
    assert second["at"] > first["at"] and first["points"]["outbox:orders"] == 0

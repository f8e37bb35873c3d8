"""The benchmark's output checker, shared by every join engine: against a real broker, an output
with every order once and the right names passes; duplicates, missing orders, wrong values,
records that are not JSON and ids that are no order are each counted and fail it."""

from __future__ import annotations

import time

import orjson
from aiokafka import AIOKafkaProducer

from bench.output_check import BROKER_TIME, check, expectation, wait_settled
from kafka_integration import KafkaSettings, TopicSpec, ensure_topics


async def fill(kafka: KafkaSettings, outputs: list[bytes]) -> None:
    await ensure_topics(
        kafka,
        [
            TopicSpec("organizations"),
            TopicSpec("customers"),
            TopicSpec("orders", compacted=False),
            TopicSpec("out", compacted=False, config=BROKER_TIME),
        ],
    )
    producer = AIOKafkaProducer(**kafka.client_kwargs())
    await producer.start()
    try:
        for i in range(2):
            await producer.send_and_wait(
                kafka.topic("organizations"), orjson.dumps({"id": i, "name": f"Org {i}"}), key=b"%d" % i
            )
            await producer.send_and_wait(
                kafka.topic("customers"),
                orjson.dumps({"id": i, "name": f"N{i}", "last_name": f"L{i}", "email": f"c{i}@x.test"}),
                key=b"%d" % i,
            )
        for i in range(3):
            order = {"id": i, "po": f"PO-{i}", "organization_id": i % 2, "customer_id": (i + 1) % 2}
            await producer.send_and_wait(kafka.topic("orders"), orjson.dumps(order), key=b"%d" % i)
        for value in outputs:
            await producer.send_and_wait(kafka.topic("out"), value)
    finally:
        await producer.stop()


def joined(i: int, id_field: str = "id", **changes: object) -> bytes:
    row = {
        id_field: i,
        "po": f"PO-{i}",
        "organization_id": i % 2,
        "customer_id": (i + 1) % 2,
        "organization_name": f"Org {i % 2}",
        "customer_name": f"N{(i + 1) % 2}",
        "customer_last_name": f"L{(i + 1) % 2}",
        "email": f"c{(i + 1) % 2}@x.test",
        "extra": "ignored",
    }
    return orjson.dumps({**row, **changes})


async def test_every_order_once_with_the_right_names_passes(kafka: KafkaSettings) -> None:
    before = time.time() * 1000
    await fill(kafka, [joined(2), joined(0), joined(1)])
    verdict = await check(kafka, kafka.topic("out"), await expectation(kafka))
    assert verdict.ok, verdict
    assert (verdict.outputs, verdict.distinct, verdict.missing) == (3, 3, 0)
    assert verdict.last_append_ms >= before - 1000  # the broker's clock, not the producer's


async def test_the_id_can_be_read_from_another_field(kafka: KafkaSettings) -> None:
    await fill(kafka, [joined(i, id_field="order_id") for i in range(3)])
    expect = await expectation(kafka)
    assert (await check(kafka, kafka.topic("out"), expect, id_field="order_id")).ok
    assert (await check(kafka, kafka.topic("out"), expect)).wrong == 3  # no "id" field at all


async def test_duplicates_missing_wrong_garbage_and_strangers_are_each_counted(kafka: KafkaSettings) -> None:
    await fill(
        kafka,
        [
            joined(0),
            joined(0),  # a duplicate
            joined(1, email="someone@else.test"),  # a wrong value
            joined(99),  # no such order
            b"\x00not json\x1b[2J",  # not JSON, control characters
            orjson.dumps({"id": "x" * 10_000}),  # an id that is no number
        ],
    )  # order 2: missing
    verdict = await check(kafka, kafka.topic("out"), await expectation(kafka))
    assert not verdict.ok
    assert verdict.outputs == 6
    assert (verdict.distinct, verdict.duplicates, verdict.missing, verdict.some_missing) == (2, 1, 1, [2])
    assert (verdict.wrong, verdict.unknown) == (3, 1)
    # the outputs have no key, so they lie on any partition: "first" is whichever wrong one is read
    # first, and the three are each a fair answer
    assert any(mark in verdict.first_wrong for mark in ("someone@else.test", "not json", "x" * 290))


async def test_fewer_outputs_than_orders_never_settle(kafka: KafkaSettings) -> None:
    await fill(kafka, [joined(0), joined(1)])
    topic = kafka.topic("out")
    assert await wait_settled(kafka, topic, 3, lambda: True, settle=0.5, idle=2) == "idle"
    assert await wait_settled(kafka, topic, 2, lambda: True, settle=0.5, idle=30) == "settled"
    assert await wait_settled(kafka, topic, 3, lambda: False) == "exited"

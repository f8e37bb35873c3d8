"""What one stream partition's commit costs the worker and the broker: the transaction the
notifications worker commits per partition every `COMMIT_INTERVAL_SECONDS` while records come
(its outputs are emails, so the transaction holds only the partition's next offset: begin,
AddOffsetsToTxn, TxnOffsetCommit, EndTxn; `materializer/runtime/transaction.py`).

    .venv/bin/python -m bench.txn_cost --transactions 500 --runs 3

Prints CPU milliseconds per transaction, in this process (aiokafka) and in the broker's JVM
(utime + stime from /proc, less its idle floor measured over as long a window just before), so
a commit interval's cost is a figure: at interval I, with P stream partitions receiving records,
the worker commits P / I transactions per second. Needs the local broker (`infra/up.sh`; its pid
in .run/kafka/pid)."""

from __future__ import annotations

import argparse
import asyncio
import os
import time

from aiokafka import TopicPartition

from bench.cpu import own_seconds
from kafka_integration import KafkaSettings, TopicSpec, ensure_topics
from materializer.runtime.transaction import start_transactional_producer
from materializer.settings import MaterializerSettings
from tests.support import ROOT


async def measure(settings: MaterializerSettings, broker: int, transactions: int) -> tuple[float, float]:
    tp = TopicPartition(settings.kafka.topic("bench_txn_cost"), 0)
    producer = await start_transactional_producer(settings, "bench_txn_cost", tp)
    try:
        # the broker's idle floor over about as long as the transactions will take
        started_wall = time.monotonic()
        for n in range(20):
            await producer.begin_transaction()
            await producer.send_offsets_to_transaction({tp: n + 1}, settings.group_id)
            await producer.commit_transaction()
        per_txn_wall = (time.monotonic() - started_wall) / 20
        idle_window = per_txn_wall * transactions
        idle_start = own_seconds(broker)
        await asyncio.sleep(idle_window)
        idle_rate = (own_seconds(broker) - idle_start) / idle_window
        mine, theirs, wall = time.process_time(), own_seconds(broker), time.monotonic()
        for n in range(transactions):
            await producer.begin_transaction()
            await producer.send_offsets_to_transaction({tp: 1000 + n}, settings.group_id)
            await producer.commit_transaction()
        wall = time.monotonic() - wall
        client = (time.process_time() - mine) * 1000 / transactions
        server = (own_seconds(broker) - theirs - idle_rate * wall) * 1000 / transactions
        return client, server
    finally:
        await producer.stop()


async def main(args: argparse.Namespace) -> None:
    kafka = KafkaSettings.from_env(os.environ, client_id="bench-txn-cost")
    await ensure_topics(kafka, [TopicSpec("bench_txn_cost", partitions=1, compacted=False)])
    settings = MaterializerSettings(kafka=kafka, group_id=f"bench-txn-cost-{os.getpid()}")
    broker = int((ROOT / ".run" / "kafka" / "pid").read_text().split()[0])
    for run in range(1, args.runs + 1):
        client, server = await measure(settings, broker, args.transactions)
        print(
            f"run {run}: {args.transactions} transactions: worker (aiokafka) {client:.2f} ms, "
            f"broker {server:.2f} ms CPU per transaction"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--transactions", type=int, default=500)
    parser.add_argument("--runs", type=int, default=3)
    asyncio.run(main(parser.parse_args()))

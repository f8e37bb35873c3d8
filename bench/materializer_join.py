"""The seed's `orders_created` join through the materializer, beside raw aiokafka consumption of
the same orders topic and the peers a Python team would pick doing the same join on the same
data, in one run.

    .venv/bin/python -m bench.materializer_join --rows 100000 --orders 1000000

Phases (each engine runs in its own subprocess, one after the other, so each peak RSS is its own):
1. fill: `organizations` and `customers` (`--rows` each) and `orders` (`--orders`, random
   organization and customer ids), 3 partitions each, under a fresh topic prefix; one output
   topic per engine, stamped with the broker's time (LogAppendTime);
2. raw: aiokafka reads the orders topic to its end (bytes only, and with orjson decoding);
3. materializer: start on an empty state folder (table rebuild rate from the topics), then the
   join of every order into `orders_created` (transactional, exactly once);
4. the peers, each in bench/peers/<name>_join.py (`--skip-<name>` leaves one out): Quix Streams,
   Faust, Pathway, Bytewax, each writing to `<name>_orders_created`;
5. restart: a materializer whose topology also keeps the orders as a table (1M+ rows of state) is
   built from the topics (rebuild rate), stopped, and started again (restart time).

Every engine of 3-4 is judged the same way (bench/engine_run.py, bench/output_check.py): from its
process's start to the broker time of its last output record, its peak RSS, and its output
checked: each order exactly once with its organization's and customer's names; an engine that
emits less, more or wrong values gets no rate.

Needs the running infrastructure (`bash infra/up.sh`) and the `bench` extra for the peers.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from bench.engine_run import run_engine
from bench.output_check import BROKER_TIME, expectation
from bench.peers import ID_FIELDS, output_topic
from kafka_integration import KafkaSettings, TopicSpec, ensure_topics
from materializer import Join, Materializer, MaterializerSettings, Topology

PARTITIONS = 3
PEERS = ("quix", "faust", "pathway", "bytewax")  # each bench/peers/<name>_join.py
ENGINES = ("materializer", *PEERS)
OUTPUT_TOPICS = {"materializer": "orders_created", **{peer: output_topic(peer) for peer in PEERS}}


def seed_topology(*, orders_table: bool = False, join: bool = True) -> Topology:
    topo = Topology()
    orgs = topo.table("organizations_table", topic="organizations", columns=("id", "name"))
    custs = topo.table(
        "customers_table", topic="customers", columns=("id", "name", "last_name", "email", "action")
    )
    if orders_table:
        topo.table("orders_table", topic="orders", columns=("id", "po", "organization_id", "customer_id"))
    if not join:
        return topo
    topo.join(
        "orders_created",
        stream=topo.stream(
            "orders_stream", topic="orders", columns=("id", "po", "organization_id", "customer_id")
        ),
        joins=[
            Join(orgs, on="organization_id", columns={"organization_name": "name"}),
            Join(
                custs,
                on="customer_id",
                columns={"customer_name": "name", "customer_last_name": "last_name", "email": "email"},
            ),
        ],
        to_topic="orders_created",
    )
    return topo


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def kafka_settings(prefix: str) -> KafkaSettings:
    env = dict(os.environ)
    env.setdefault("BOOTSTRAP_SERVERS", f"127.0.0.1:{env.get('KAFKA_PORT', '19092')}")
    env["KAFKA_TOPIC_PREFIX"] = prefix
    return KafkaSettings.from_env(env, client_id="bench")


async def fill(kafka: KafkaSettings, rows: int, orders: int) -> dict[str, Any]:
    await ensure_topics(
        kafka,
        [
            TopicSpec("organizations", partitions=PARTITIONS),
            TopicSpec("customers", partitions=PARTITIONS),
            TopicSpec("orders", partitions=PARTITIONS, compacted=False),
            *(
                TopicSpec(OUTPUT_TOPICS[engine], partitions=PARTITIONS, compacted=False, config=BROKER_TIME)
                for engine in ENGINES
            ),
            TopicSpec("materializer_dead_letters", partitions=1, compacted=False),
        ],
    )
    producer = AIOKafkaProducer(
        **kafka.client_kwargs(), linger_ms=20, max_batch_size=512 * 1024, compression_type=None, acks=1
    )
    await producer.start()
    rng = random.Random(7)
    start = time.perf_counter()
    try:

        async def send_all(topic: str, items: Any) -> None:
            name = kafka.topic(topic)
            pending = []
            for key, value in items:
                pending.append(await producer.send(name, orjson.dumps(value), key=str(key).encode()))
                if len(pending) >= 20000:
                    await asyncio.gather(*pending)
                    pending.clear()
            await asyncio.gather(*pending)

        await send_all("organizations", ((i, {"id": i, "name": f"Organization {i}"}) for i in range(rows)))
        await send_all(
            "customers",
            (
                (
                    i,
                    {
                        "id": i,
                        "name": f"Name{i}",
                        "last_name": f"Last{i}",
                        "email": f"c{i}@example.com",
                        "action": "created",
                    },
                )
                for i in range(rows)
            ),
        )
        await asyncio.sleep(0.01)  # orders strictly after the rows they reference
        await send_all(
            "orders",
            (
                (
                    i,
                    {
                        "id": i,
                        "po": f"PO-{i}",
                        "organization_id": rng.randrange(rows),
                        "customer_id": rng.randrange(rows),
                        "action": "created",
                    },
                )
                for i in range(orders)
            ),
        )
    finally:
        await producer.stop()
    elapsed = time.perf_counter() - start
    return {
        "records": 2 * rows + orders,
        "seconds": round(elapsed, 2),
        "per_second": round((2 * rows + orders) / elapsed),
    }


async def raw_consume(kafka: KafkaSettings, decode: bool) -> dict[str, Any]:
    consumer = AIOKafkaConsumer(
        **kafka.client_kwargs(),
        enable_auto_commit=False,
        max_partition_fetch_bytes=2 * 1024 * 1024,
        auto_offset_reset="earliest",  # with "latest", its reset can land after seek_to_beginning
    )
    await consumer.start()
    try:
        name = kafka.topic("orders")
        tps = [TopicPartition(name, p) for p in range(PARTITIONS)]
        consumer.assign(tps)
        end = await consumer.end_offsets(tps)
        await consumer.seek_to_beginning(*tps)
        total = sum(end.values())
        count = 0
        start = time.perf_counter()
        idle_since = time.perf_counter()
        while count < total and time.perf_counter() - idle_since < 60:
            batches = await consumer.getmany(timeout_ms=1000, max_records=10000)
            if batches:
                idle_since = time.perf_counter()
            for records in batches.values():
                count += len(records)
                if decode:
                    for r in records:
                        orjson.loads(r.value)
        elapsed = time.perf_counter() - start
    finally:
        await consumer.stop()
    return {
        "records": count,
        "seconds": round(elapsed, 2),
        "per_second": round(count / elapsed),
        "peak_rss_mb": round(peak_rss_mb()),
    }


async def run_materializer(kafka: KafkaSettings, state_dir: Path, orders: int) -> dict[str, Any]:
    settings = MaterializerSettings(
        kafka=kafka, group_id=f"bench-{uuid.uuid4().hex[:8]}", state_dir=state_dir, join_wait_seconds=30.0
    )
    m = Materializer(seed_topology(), settings)
    start = time.perf_counter()
    await m.start()
    await m.wait_caught_up()
    tables_done = time.perf_counter()
    table_rows = m.table_records_in
    while m.records_in < orders:
        await asyncio.sleep(0.05)
    join_done = time.perf_counter()
    await m.stop()
    join_seconds = join_done - tables_done
    return {
        "table_rows": table_rows,
        "table_build_seconds": round(tables_done - start, 2),
        "table_build_per_second": round(table_rows / (tables_done - start)),
        "orders": m.records_in,
        "outputs": m.records_out,
        "dead_letters": m.dead_letters,
        "join_seconds": round(join_seconds, 2),
        "join_per_second": round(orders / join_seconds),
        "peak_rss_mb": round(peak_rss_mb()),
    }


async def run_restart(kafka: KafkaSettings, state_dir: Path) -> dict[str, Any]:
    topo = seed_topology(orders_table=True, join=False)  # tables only: the rebuild measures them alone
    settings = MaterializerSettings(
        kafka=kafka, group_id=f"bench-{uuid.uuid4().hex[:8]}", state_dir=state_dir
    )
    m = Materializer(topo, settings)
    start = time.perf_counter()
    await m.start()
    await m.wait_caught_up()
    built = time.perf_counter() - start
    rows = m.table_records_in
    state_rows = sum(len(m.table(n)) for n in ("organizations_table", "customers_table", "orders_table"))
    await m.stop()
    again = Materializer(topo, settings)
    start = time.perf_counter()
    await again.start()
    await again.wait_caught_up()
    restart = time.perf_counter() - start
    reread = again.table_records_in
    probe = again.table("orders_table").get("0")
    await again.stop()
    return {
        "state_rows": state_rows,
        "rebuild_records": rows,
        "rebuild_seconds": round(built, 2),
        "rebuild_per_second": round(rows / built),
        "restart_seconds": round(restart, 3),
        "records_reread_on_restart": reread,
        "probe_ok": probe is not None,
        "peak_rss_mb": round(peak_rss_mb()),
    }


def phase_cmd(name: str, prefix: str, args: argparse.Namespace, workdir: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "bench.materializer_join",
        "--phase",
        name,
        "--prefix",
        prefix,
        "--rows",
        str(args.rows),
        "--orders",
        str(args.orders),
        "--workdir",
        str(workdir),
    ]


def phase(name: str, prefix: str, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """Run one phase in a subprocess; its last stdout line is the JSON result."""
    cmd = phase_cmd(name, prefix, args, workdir)
    out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True, timeout=3600).stdout
    return json.loads(out.strip().splitlines()[-1])  # type: ignore[no-any-return]


def run_phase(args: argparse.Namespace) -> dict[str, Any]:
    kafka = kafka_settings(args.prefix)
    workdir = Path(args.workdir)
    if args.phase == "raw":
        return {
            "bytes": asyncio.run(raw_consume(kafka, False)),
            "decoded": asyncio.run(raw_consume(kafka, True)),
        }
    if args.phase == "materializer":
        return asyncio.run(run_materializer(kafka, workdir / "mat-state", args.orders))
    if args.phase == "restart":
        return asyncio.run(run_restart(kafka, workdir / "restart-state"))
    raise SystemExit(f"unknown phase {args.phase}")


def engine(
    name: str,
    prefix: str,
    args: argparse.Namespace,
    workdir: Path,
    expect: dict[int, tuple[Any, ...]],
    logs: Path,
) -> dict[str, Any]:
    """The materializer's join phase or a peer, in its own process, checked by its output topic."""
    kafka = kafka_settings(prefix)
    if name == "materializer":
        cmd = phase_cmd("materializer", prefix, args, workdir)
    else:
        cmd = [
            sys.executable,
            "-m",
            f"bench.peers.{name}_join",
            "--bootstrap",
            kafka.bootstrap_servers,
            "--prefix",
            prefix,
            "--workdir",
            str(workdir / f"{name}-state"),
        ]
    return run_engine(name, cmd, kafka, OUTPUT_TOPICS[name], expect, logs, ID_FIELDS.get(name, "id"))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000, help="rows in each of the two tables")
    parser.add_argument("--orders", type=int, default=1_000_000)
    for peer in PEERS:
        parser.add_argument(f"--skip-{peer}", action="store_true")
    parser.add_argument("--phase", help=argparse.SUPPRESS)
    parser.add_argument("--prefix", help=argparse.SUPPRESS)
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        print(json.dumps(run_phase(args)))
        return
    prefix = f"bench_{uuid.uuid4().hex[:8]}."
    results: dict[str, Any] = {"rows": args.rows, "orders": args.orders, "prefix": prefix}
    with tempfile.TemporaryDirectory(prefix="bench-mat-") as tmp:
        workdir = Path(tmp)
        results["fill"] = asyncio.run(fill(kafka_settings(prefix), args.rows, args.orders))
        print("fill", results["fill"], flush=True)
        results["raw"] = phase("raw", prefix, args, workdir)
        print("raw", results["raw"], flush=True)
        expect = asyncio.run(expectation(kafka_settings(prefix)))
        logs = Path(tempfile.mkdtemp(prefix=f"{prefix}logs-"))  # kept: each engine's output and log
        results["logs"] = str(logs)
        for name in ENGINES:
            if not getattr(args, f"skip_{name}", False):
                results[name] = engine(name, prefix, args, workdir, expect, logs)
                print(name, results[name], flush=True)
        results["restart"] = phase("restart", prefix, args, workdir)
        print("restart", results["restart"], flush=True)
    mat = results["materializer"]
    if "engine" in mat:  # the materializer's own figures (absent if it was stopped before its end)
        results["vs_raw"] = round(mat["engine"]["join_per_second"] / results["raw"]["bytes"]["per_second"], 3)
    for peer in PEERS:  # end to end, both correct: the peer's time over the materializer's
        if peer in results and results[peer]["per_second"] and mat["per_second"]:
            results[f"vs_{peer}"] = round(
                results[peer]["seconds_to_last_output"] / mat["seconds_to_last_output"], 2
            )
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

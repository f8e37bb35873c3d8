"""The seed's `orders_created` join through the materializer, beside raw aiokafka consumption of
the same orders topic and Quix Streams doing the same join on the same data, in one run.

    .venv/bin/python -m bench.materializer_join --rows 100000 --orders 1000000

Phases (each engine runs in its own subprocess, so its peak RSS is its own):
1. fill: `organizations` and `customers` (`--rows` each) and `orders` (`--orders`, random
   organization and customer ids), 3 partitions each, under a fresh topic prefix;
2. raw: aiokafka reads the orders topic to its end (bytes only, and with orjson decoding);
3. materializer: start on an empty state folder (table rebuild rate from the topics), then the
   join of every order into `orders_created` (transactional, exactly once);
4. quix: Quix Streams has no global-table join; the equivalent is what its docs prescribe for
   enrichment: re-key the orders by customer_id (`group_by`, a repartition topic), `join_asof`
   with the customers table topic, re-key by organization_id, `join_asof` with organizations, and
   produce to `quix_orders_created` (at-least-once, its default; changelog topics off, as the
   materializer uses the source topics themselves to rebuild);
5. restart: a materializer whose topology also keeps the orders as a table (1M+ rows of state) is
   built from the topics (rebuild rate), stopped, and started again (restart time).

Needs the running infrastructure (`bash infra/up.sh`) and `pip install quixstreams` (the `bench`
extra). `--skip-quix` runs without it.
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

from kafka_integration import KafkaSettings, TopicSpec, ensure_topics
from materializer import Join, Materializer, MaterializerSettings, Topology

PARTITIONS = 3


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
    env.setdefault("BOOTSTRAP_SERVERS", "127.0.0.1:19092")
    env["KAFKA_TOPIC_PREFIX"] = prefix
    return KafkaSettings.from_env(env, client_id="bench")


async def fill(kafka: KafkaSettings, rows: int, orders: int) -> dict[str, Any]:
    await ensure_topics(
        kafka,
        [
            TopicSpec("organizations", partitions=PARTITIONS),
            TopicSpec("customers", partitions=PARTITIONS),
            TopicSpec("orders", partitions=PARTITIONS, compacted=False),
            TopicSpec("orders_created", partitions=PARTITIONS, compacted=False),
            TopicSpec("quix_orders_created", partitions=PARTITIONS, compacted=False),
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


def run_quix(kafka: KafkaSettings, state_dir: Path, orders: int) -> dict[str, Any]:
    import logging

    from quixstreams import Application

    app = Application(
        broker_address=kafka.bootstrap_servers,
        consumer_group=f"bench-quix-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        state_dir=str(state_dir),
        use_changelog_topics=False,
        loglevel=logging.WARNING,
        # aiokafka partitions by murmur2, as Java does; make librdkafka do the same for repartitions
        producer_extra_config={"partitioner": "murmur2_random"},
    )
    orders_t = app.topic(kafka.topic("orders"), key_deserializer="str")
    customers_t = app.topic(kafka.topic("customers"), key_deserializer="str")
    orgs_t = app.topic(kafka.topic("organizations"), key_deserializer="str")
    out_t = app.topic(kafka.topic("quix_orders_created"), key_serializer="str")
    customers = app.dataframe(customers_t)
    orgs = app.dataframe(orgs_t)
    sdf = app.dataframe(orders_t)
    sdf = sdf.group_by(
        lambda v: str(v["customer_id"]), name="by_customer", key_serializer="str", key_deserializer="str"
    )
    sdf = sdf.join_asof(
        customers,
        how="inner",
        on_merge=lambda o, c: {
            **o,
            "customer_name": c["name"],
            "customer_last_name": c["last_name"],
            "email": c["email"],
        },
    )
    sdf = sdf.group_by(
        lambda v: str(v["organization_id"]), name="by_org", key_serializer="str", key_deserializer="str"
    )
    sdf = sdf.join_asof(orgs, how="inner", on_merge=lambda o, g: {**o, "organization_name": g["name"]})
    done = {"n": 0, "first": 0.0}

    def count(value: Any) -> None:
        if done["n"] == 0:
            done["first"] = time.perf_counter()
        done["n"] += 1
        if done["n"] >= orders:
            app.stop()

    sdf = sdf.update(count)
    sdf.to_topic(out_t)
    start = time.perf_counter()
    app.run()
    elapsed = time.perf_counter() - start
    return {
        "outputs": done["n"],
        "seconds": round(elapsed, 2),
        "per_second": round(done["n"] / elapsed),
        "peak_rss_mb": round(peak_rss_mb()),
    }


def phase(name: str, prefix: str, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """Run one phase in a subprocess; its last stdout line is the JSON result."""
    cmd = [
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
    if args.phase == "quix":
        return run_quix(kafka, workdir / "quix-state", args.orders)
    raise SystemExit(f"unknown phase {args.phase}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000, help="rows in each of the two tables")
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--skip-quix", action="store_true")
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
        results["materializer"] = phase("materializer", prefix, args, workdir)
        print("materializer", results["materializer"], flush=True)
        if not args.skip_quix:
            results["quix"] = phase("quix", prefix, args, workdir)
            print("quix", results["quix"], flush=True)
        results["restart"] = phase("restart", prefix, args, workdir)
        print("restart", results["restart"], flush=True)
    mat = results["materializer"]["join_per_second"]
    results["vs_raw"] = round(mat / results["raw"]["bytes"]["per_second"], 3)
    if "quix" in results:
        results["vs_quix"] = round(mat / results["quix"]["per_second"], 2)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

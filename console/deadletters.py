"""Dead letters, both kinds, read back and replayed to where they came from.

- The materializer's: records a table or a join refused, on the dead-letter topic (see
  materializer/deadletter.py for the value: reason, name, source topic/partition/offset, key and
  the original value). Named `m-<partition>-<offset>` (their position on the dead-letter topic).
  Replaying one produces its key and value again to its source topic (a new offset, a new record
  time: a join reads the tables as they are now), with a `console-replay-of` header.
- The outbox's: events a service's relay moved to `kafka_outbox_dead` (see
  kafka_integration/deadletters.py). Named `o-<service>-<id>`. Replaying one moves it back into
  that service's outbox, behind what is there; its relay publishes it.

Each replay is recorded in `console_actions` (who, when, where the record went) under the
letter's one name: a letter is replayed once. An outbox letter is moved in the transaction that
claims it. A materializer letter is claimed (committed) before it is produced, and only a record
Kafka certainly did not take gives the claim back: when PostgreSQL or Kafka fails in between, it
stays claimed without a target ("not confirmed": look on its topic), never sent twice. Only the
topics the materializer reads are written to, whatever a dead letter says.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any

import asyncpg
import orjson
from aiokafka.errors import KafkaError, KafkaTimeoutError, RequestTimedOutError

from console import records
from console.config import SERVICES, OperationsSettings
from console.errors import InvalidInput, NotAllowed, NotFound, Unavailable
from kafka_integration import KafkaSettings, new_producer
from kafka_integration import deadletters as outbox_dead
from kafka_integration.errors import NoSuchDeadLetter

LETTER_ID = re.compile(
    r"^(?:m-(?P<partition>\d{1,5})-(?P<offset>\d{1,18})|o-(?P<service>[a-z]{1,20})-(?P<id>\d{1,18}))$",
    re.ASCII,
)
MAX_SELECTION = 500
REPLAY_HEADER = "console-replay-of"


@dataclass(frozen=True)
class Letter:
    """A dead letter of either kind, as the console shows it."""

    id: str
    kind: str  # 'materializer' or 'outbox'
    reason: str
    source: str  # where it came from: 'invoices/0/12' or 'outbox of orders'
    topic: str  # its source topic (logical)
    key: str | None
    value: Any
    timestamp_ms: int | None
    name: str | None = None  # the table or join that refused it
    replayed: dict[str, Any] | None = None  # the recorded replay, if any

    def as_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def parse_id(raw: str) -> tuple[str, Any, Any]:
    """('m', partition, offset) or ('o', service, id); InvalidInput naming `id` otherwise.
    Numbers are read as numbers: `m-0-05` is `m-0-5` (see `canonical`)."""
    match = LETTER_ID.fullmatch(raw) if len(raw) <= 64 else None
    if match is None:
        raise InvalidInput("id", "a dead letter id is m-<partition>-<offset> or o-<service>-<id>")
    if match["service"] is not None:
        if match["service"] not in SERVICES:
            raise InvalidInput("id", f"no service {match['service']!r}")
        return "o", match["service"], int(match["id"])
    return "m", int(match["partition"]), int(match["offset"])


def canonical(raw: str) -> str:
    """The one name of the letter `raw` names (`m-00-07` is `m-0-7`): what a replay is
    recorded under, so that no spelling of a letter replays it a second time."""
    kind, a, b = parse_id(raw)
    return f"{kind}-{a}-{b}"


def _materializer_letter(record: dict[str, Any]) -> Letter:
    body = record["value"] if isinstance(record["value"], dict) else {}
    position = (body.get("topic"), body.get("partition"), body.get("offset"))
    return Letter(
        id=f"m-{record['partition']}-{record['offset']}",
        kind="materializer",
        reason=str(body.get("reason", "(no reason: not a dead letter the materializer wrote)")),
        source="/".join(str(p) for p in position),
        topic=str(body.get("topic", "")),
        key=body.get("key"),
        value=body.get("value"),
        timestamp_ms=body.get("timestamp"),
        name=body.get("name"),
    )


async def _replays(pool: asyncpg.Pool) -> dict[str, dict[str, Any]]:
    rows = await pool.fetch(
        "SELECT source, actor, target, done_at FROM console_actions WHERE action = 'replay'"
    )
    return {
        r["source"]: {"actor": r["actor"], "target": r["target"], "at": r["done_at"].isoformat()}
        for r in rows
    }


async def listing(pool: asyncpg.Pool, ops: OperationsSettings, limit: int = 500) -> list[Letter]:
    """Both kinds, newest last: the last `limit` of the dead-letter topic, then every service's
    outbox dead letters."""
    done = await _replays(pool)
    letters: list[Letter] = []
    try:
        found = await records.read_topic(ops.kafka, ops.dead_letter_topic, limit=limit)
    except NotFound:  # no dead letter yet: the topic is created with the first
        found = []
    for record in found:
        letter = _materializer_letter(record)
        letters.append(_with_replay(letter, done))
    for service in SERVICES:
        async with pool.acquire() as conn:
            rows = await _outbox_rows(conn, ops.schemas[service])
        for row in rows:
            letter = Letter(
                id=f"o-{service}-{row['id']}",
                kind="outbox",
                reason=row["error"],
                source=f"outbox of {service}",
                topic=row["topic"],
                key=row["key"],
                value={"bytes": row["value_bytes"]},
                timestamp_ms=int(row["created_at"].timestamp() * 1000),
                name=service,
            )
            letters.append(_with_replay(letter, done))
    return letters


def _with_replay(letter: Letter, done: dict[str, dict[str, Any]]) -> Letter:
    replay = done.get(letter.id)
    return letter if replay is None else Letter(**{**letter.as_dict(), "replayed": replay})


async def _outbox_rows(conn: asyncpg.Connection, schema: str) -> list[dict[str, Any]]:
    exists = await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", f'"{schema}".kafka_outbox_dead')
    if not exists:
        return []
    async with conn.transaction():
        await conn.execute("SELECT set_config('search_path', $1, true)", schema)
        return await outbox_dead.listing(conn)


async def replay(
    pool: asyncpg.Pool, ops: OperationsSettings, ids: list[str], actor: str
) -> list[dict[str, Any]]:
    """Replay each letter (a selection of at most MAX_SELECTION); what became of each, in order.
    All ids are checked before any is replayed."""
    if not ids:
        raise InvalidInput("ids", "select at least one dead letter")
    if len(ids) > MAX_SELECTION:
        raise InvalidInput("ids", f"at most {MAX_SELECTION} at once")
    parsed = {canonical(raw): parse_id(raw) for raw in ids}  # each letter once, in the order given
    out = []
    for raw, (kind, a, b) in parsed.items():
        if kind == "m":
            target = await _replay_materializer(pool, ops, raw, a, b, actor)
        else:
            target = await _replay_outbox(pool, ops, raw, a, b, actor)
        out.append({"id": raw, "replayed_to": target})
    return out


async def _replay_materializer(
    pool: asyncpg.Pool, ops: OperationsSettings, raw: str, partition: int, offset: int, actor: str
) -> str:
    """Claimed (committed) first, then produced, then its target recorded: a failure between
    leaves it claimed with no target (shown as not confirmed), never free to be sent twice. A
    record Kafka certainly did not take (unreachable, refused) frees the claim again."""
    try:
        record = await records.read_one(ops.kafka, ops.dead_letter_topic, partition, offset)
    except NotFound:
        raise NotFound(f"no dead letter {raw}") from None
    letter = _materializer_letter(record)
    if not letter.topic or not isinstance(record["value"], dict):
        raise NotAllowed(f"{raw} does not say where it came from: it cannot be replayed")
    if letter.topic not in source_topics():
        raise NotAllowed(f"{raw} names topic {letter.topic!r}, which the materializer does not read")
    value = letter.value
    encoded = None if value is None else value.encode() if isinstance(value, str) else orjson.dumps(value)
    async with pool.acquire() as conn, conn.transaction():
        await _claim(conn, raw, actor, {"reason": letter.reason, "source": letter.source})
    try:
        target = await _produce(ops.kafka, letter, encoded, raw)
    except (KafkaTimeoutError, RequestTimedOutError) as exc:  # it may have been written: stays claimed
        raise Unavailable(f"{raw}: Kafka did not confirm the replay ({type(exc).__name__})") from None
    except (KafkaError, OSError) as exc:  # not written: the claim is given back
        await pool.execute("DELETE FROM console_actions WHERE source = $1 AND action = 'replay'", raw)
        raise Unavailable(f"{raw} was not replayed: Kafka refused it ({type(exc).__name__})") from None
    try:
        await pool.execute(
            "UPDATE console_actions SET target = $2 WHERE source = $1 AND action = 'replay'", raw, target
        )
    except (asyncpg.PostgresError, OSError) as exc:  # sent, claimed, its target not written
        raise Unavailable(
            f"{raw} was replayed to {target}; recording where failed ({type(exc).__name__})"
        ) from None
    return target


@functools.cache
def source_topics() -> frozenset[str]:
    """The topics the worker's materializer reads (tables and streams): the only ones its dead
    letters come from, so the only ones a replay writes to."""
    from notifications import streams

    async def ignore(row: dict[str, Any], source: Any) -> None:
        return None

    topology = streams.worker_topology(invoice=ignore, welcome=ignore, invitation=ignore)
    return frozenset(topology.table_topics() | {s.topic for s in topology.streams.values()})


async def _produce(kafka: KafkaSettings, letter: Letter, value: bytes | None, raw: str) -> str:
    producer = new_producer(kafka)
    await producer.start()
    try:
        key = None if letter.key is None else str(letter.key).encode()
        headers = [(REPLAY_HEADER, f"{letter.source} via {raw}".encode())]
        meta = await producer.send_and_wait(kafka.topic(letter.topic), value, key=key, headers=headers)
    finally:
        await producer.stop()
    return f"{letter.topic}/{meta.partition}/{meta.offset}"


async def _replay_outbox(
    pool: asyncpg.Pool, ops: OperationsSettings, raw: str, service: str, ident: int, actor: str
) -> str:
    async with pool.acquire() as conn, conn.transaction():
        await _claim(conn, raw, actor, {"service": service})
        await conn.execute("SELECT set_config('search_path', $1, true)", ops.schemas[service])
        try:
            new_id = await outbox_dead.republish(conn, ident)
        except (NoSuchDeadLetter, asyncpg.UndefinedTableError):
            raise NotFound(f"no dead letter {raw}") from None
        target = f"outbox of {service}, id {new_id}"
        await conn.execute(
            f'UPDATE "{ops.db.schema}".console_actions SET target = $2'
            " WHERE source = $1 AND action = 'replay'",
            raw,
            target,
        )
    return target


async def _claim(conn: asyncpg.Connection, raw: str, actor: str, detail: dict[str, Any]) -> None:
    """Record the replay (in the caller's transaction); NotAllowed if it was replayed before."""
    inserted = await conn.fetchval(
        """INSERT INTO console_actions (action, actor, source, detail) VALUES ('replay', $1, $2, $3)
           ON CONFLICT (source) WHERE action = 'replay' DO NOTHING RETURNING id""",
        actor,
        raw,
        detail,
    )
    if inserted is None:
        raise NotAllowed(f"{raw} was replayed already")

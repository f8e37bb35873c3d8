"""`python -m kafka_integration tail TOPIC`: print a topic's records (key, value, headers), from
the beginning up to the end the broker reports when it starts, or from the end, or on and on
with `--follow`. No consumer group: reading commits nothing and disturbs no service.

Records are printed as they are: a value that is not JSON, a key or header that is not UTF-8, or
text with control characters is shown escaped, never written raw to the terminal.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TextIO

import orjson
from aiokafka import AIOKafkaConsumer

from kafka_integration.config import KafkaSettings
from kafka_integration.errors import TopicMissing
from kafka_integration.metadata import TopicMetadata


@dataclass(frozen=True)
class TailOptions:
    """What to read and how to print it."""

    topic: str  # logical name; KafkaSettings.topic() adds KAFKA_TOPIC_PREFIX
    from_end: bool = False
    follow: bool = False
    limit: int | None = None  # stop after this many records
    as_json: bool = False  # one JSON object per record, for jq


def escape_controls(text: str, keep: str = "") -> str:
    """`text` with its control (non-printable) characters escaped (`\\x1b`), but those in `keep`."""
    return "".join(
        c if c.isprintable() or c in keep else c.encode("unicode_escape").decode("ascii") for c in text
    )


def _text(raw: bytes | None) -> str | None:
    """Bytes as text a terminal can show: UTF-8, undecodable bytes and control characters escaped."""
    if raw is None:
        return None
    return escape_controls(raw.decode("utf-8", errors="backslashreplace"))


def _value(raw: bytes | None) -> Any:
    """A JSON value as the object it holds; anything else as escaped text."""
    if raw is None:
        return None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return _text(raw)


def record_as_dict(record: Any) -> dict[str, Any]:
    return {
        "topic": record.topic,
        "partition": record.partition,
        "offset": record.offset,
        "timestamp": record.timestamp,
        "key": _text(record.key),
        "headers": {_text(k.encode()): _text(v) for k, v in record.headers or ()},
        "value": _value(record.value),
    }


def format_record(record: Any, as_json: bool) -> str:
    data = record_as_dict(record)
    if as_json:  # ensure_ascii: control and non-ASCII characters of the value come out escaped
        return json.dumps(data, ensure_ascii=True)
    value = "(tombstone)" if data["value"] is None else json.dumps(data["value"], ensure_ascii=True)
    headers = " ".join(f"{k}={v}" for k, v in data["headers"].items()) or "-"
    return (
        f"{data['topic']} partition {data['partition']} offset {data['offset']}"
        f"  key {data['key']!s}\n  headers {headers}\n  value   {value}"
    )


async def tail(
    settings: KafkaSettings, options: TailOptions, out: TextIO, note: Callable[[str], None]
) -> int:
    """Print the records; returns how many. Without `follow`, stops at the end found at start."""
    name = settings.topic(options.topic)
    async with TopicMetadata(settings) as metadata:
        tps = await metadata.partitions(name)
    if not tps:
        raise TopicMissing(f"no topic {name!r} on {settings.bootstrap_servers}")
    consumer = AIOKafkaConsumer(**settings.client_kwargs(), enable_auto_commit=False, group_id=None)
    await consumer.start()
    try:
        consumer.assign(tps)
        if options.from_end:
            await consumer.seek_to_end(*tps)
        else:
            await consumer.seek_to_beginning(*tps)
        end = await consumer.end_offsets(tps)
        remaining = {tp for tp in tps if await consumer.position(tp) < end[tp]}
        follow = options.follow or options.from_end
        note(
            f"{name}: {len(tps)} partition(s), reading from the {'end' if options.from_end else 'beginning'}"
            + ("; waiting for new records (Ctrl-C stops)" if follow else "")
        )
        printed = 0
        while follow or remaining:
            batch = await consumer.getmany(timeout_ms=500)
            for tp in sorted(batch, key=lambda tp: tp.partition):
                for record in batch[tp]:
                    if not follow and record.offset >= end[tp]:
                        continue
                    print(format_record(record, options.as_json), file=out, flush=True)
                    printed += 1
                    if options.limit is not None and printed >= options.limit:
                        return printed
            for tp in list(remaining):
                if await consumer.position(tp) >= end[tp]:
                    remaining.discard(tp)
        return printed
    finally:
        await consumer.stop()

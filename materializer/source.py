"""What a record is inside the engine, and where it came from (`Source`, given to callbacks)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from materializer.errors import PoisonRecord


@dataclass(frozen=True, slots=True)
class Source:
    """Where a stream record came from: unique per record, so an embedder can deduplicate on it.
    `topic` is the logical name given to the topology (no prefix)."""

    topic: str
    partition: int
    offset: int
    timestamp: int
    key: str | None


@dataclass(frozen=True, slots=True)
class Record:
    """One Kafka record as the engine sees it: logical topic, raw key and value."""

    topic: str
    partition: int
    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None

    def source(self) -> Source:
        return Source(self.topic, self.partition, self.offset, self.timestamp, self.text_key())

    def text_key(self) -> str | None:
        if self.key is None:
            return None
        return self.key.decode("utf-8", errors="replace")


def decode_object(raw: bytes) -> dict[str, Any]:
    """A record value as a JSON object, or PoisonRecord saying why not."""
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise PoisonRecord(f"value is not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise PoisonRecord(f"value is a JSON {type(value).__name__}, not an object")
    return value

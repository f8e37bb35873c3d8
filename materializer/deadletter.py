"""Dead letters: a record that cannot be processed, with where it came from and why.

The value written to the dead-letter topic is a JSON object:
`{"reason", "name", "topic", "partition", "offset", "timestamp", "key", "value"}` where `value` is
the original record (parsed when it is JSON, else its text) and `name` the table or join that
refused it. The key is the original key.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from materializer.source import Record


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A record refused by a table or a join, and the reason."""

    record: Record
    reason: str
    name: str

    def as_dict(self) -> dict[str, Any]:
        value: Any = None
        if self.record.value is not None:
            try:
                value = orjson.loads(self.record.value)
            except orjson.JSONDecodeError:
                value = self.record.value.decode("utf-8", errors="replace")
        return {
            "reason": self.reason,
            "name": self.name,
            "topic": self.record.topic,
            "partition": self.record.partition,
            "offset": self.record.offset,
            "timestamp": self.record.timestamp,
            "key": self.record.text_key(),
            "value": value,
        }

    def encode(self) -> bytes:
        return orjson.dumps(self.as_dict())

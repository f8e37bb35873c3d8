"""The same engine without Kafka: feed records in-process, advance a virtual clock, read outputs.

For fast unit tests of the semantics. Stream records of one partition are handled in order: a
record waiting for a missing row holds back the later records of its partition, as in the Kafka
runner; `advance(seconds)` moves the clock so waits expire.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any

import orjson

from materializer.deadletter import DeadLetter
from materializer.engine import Engine
from materializer.source import Record, Source
from materializer.state import MemoryState, Store, restore
from materializer.tables import TableView
from materializer.topology import Topology


@dataclass(frozen=True, slots=True)
class Emitted:
    """One output of a join: its name, the topic it would go to, the row, and its source."""

    name: str
    topic: str | None
    value: dict[str, Any]
    source: Source


class OfflineMaterializer:
    """A materializer fed by hand. Values may be dicts (encoded as JSON), raw bytes or str (for
    poison records), or None (a tombstone)."""

    def __init__(
        self, topology: Topology, *, state: Store | None = None, join_wait_seconds: float = 30.0
    ) -> None:
        self.topology = topology
        self.store = state if state is not None else MemoryState()
        restore(self.store, topology.fingerprint())
        self.engine = Engine(topology, self.store)
        self.join_wait_seconds = join_wait_seconds
        self.now = 0.0
        self.outputs: list[Emitted] = []
        self.dead_letters: list[DeadLetter] = []
        self._offsets: dict[tuple[str, int], int] = {}
        self._stream_next: dict[tuple[str, int], int] = {}
        self._queues: dict[tuple[str, int], deque[Record]] = {}
        self._since: dict[tuple[str, int], float] = {}

    def table(self, name: str) -> TableView:
        return TableView(self.store, self.topology.get_table(name))

    def outputs_of(self, name: str) -> list[dict[str, Any]]:
        return [e.value for e in self.outputs if e.name == name]

    async def feed(
        self,
        topic: str,
        value: dict[str, Any] | bytes | str | None,
        *,
        key: str | int | None = None,
        partition: int = 0,
        offset: int | None = None,
        timestamp: int | None = None,
    ) -> Record:
        """Deliver one record as Kafka would (offsets count up per partition unless given)."""
        tp = (topic, partition)
        if offset is None:
            offset = self._offsets.get(tp, 0)
        self._offsets[tp] = max(self._offsets.get(tp, 0), offset + 1)
        raw = (
            orjson.dumps(value)
            if isinstance(value, dict)
            else value.encode()
            if isinstance(value, str)
            else value
        )
        record = Record(
            topic=topic,
            partition=partition,
            offset=offset,
            timestamp=int(self.now * 1000) if timestamp is None else timestamp,
            key=None if key is None else str(key).encode(),
            value=raw,
        )
        if self.engine.is_table_topic(topic):
            self.dead_letters.extend(self.engine.apply_tables([record]))
        if self.engine.is_stream_topic(topic) and record.offset >= self._stream_next.get(tp, 0):
            self._stream_next[tp] = record.offset + 1
            self._queues.setdefault(tp, deque()).append(record)
        await self._drain()
        return record

    async def advance(self, seconds: float) -> None:
        """Move the virtual clock; records that waited past the bound are settled."""
        self.now += seconds
        await self._drain()

    def waiting(self) -> int:
        return sum(len(q) for q in self._queues.values())

    async def _drain(self) -> None:
        for tp, queue in self._queues.items():
            while queue:
                record = queue[0]
                since = self._since.setdefault(tp, self.now)
                waited = self.now - since
                outcome = self.engine.decide(record, expired=waited >= self.join_wait_seconds, waited=waited)
                if outcome.wait:
                    break
                queue.popleft()
                self._since.pop(tp, None)
                self.dead_letters.extend(outcome.dead)
                for spec, output in outcome.emits:
                    self.outputs.append(Emitted(spec.name, spec.to_topic, output, record.source()))
                    if spec.on_output is not None:
                        await spec.on_output(output, record.source())

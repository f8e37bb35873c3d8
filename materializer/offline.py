"""The same engine without Kafka: feed records in-process, advance a virtual clock, read outputs.

For fast unit tests of the semantics. A stream record is joined as of its time; one waiting for
a missing row is parked with the later records of its key (`parking.py`), as in the Kafka runner,
while other keys go on. The tables count as read up to the virtual clock (or the latest table
record's time, if later): `advance(seconds)` moves the clock, so waits expire.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from materializer.deadletter import DeadLetter
from materializer.engine import Engine, Outcome
from materializer.parking import ParkingLot
from materializer.source import Record, Source
from materializer.state import DEFAULT_RETENTION_MS, MemoryState, Store, restore
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
        self,
        topology: Topology,
        *,
        state: Store | None = None,
        join_wait_seconds: float = 30.0,
        retention_ms: int = DEFAULT_RETENTION_MS,
    ) -> None:
        self.topology = topology
        self.store = state if state is not None else MemoryState()
        restore(self.store, topology.fingerprint())
        self.engine = Engine(
            topology, self.store, join_wait_seconds=join_wait_seconds, retention_ms=retention_ms
        )
        self.join_wait_seconds = join_wait_seconds
        self.now = 0.0
        self.outputs: list[Emitted] = []
        self.dead_letters: list[DeadLetter] = []
        self.older_than_retention = 0
        self._offsets: dict[tuple[str, int], int] = {}
        self._stream_next: dict[tuple[str, int], int] = {}
        self._lots: dict[tuple[str, int], ParkingLot] = {}
        self._table_time = -1

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
            self._table_time = max(self._table_time, record.timestamp)
        if self.engine.is_stream_topic(topic) and record.offset >= self._stream_next.get(tp, 0):
            self._stream_next[tp] = record.offset + 1
            lot = self._lots.setdefault(tp, ParkingLot())
            outcome = lot.admit(self.engine, record, self._aligned)
            if outcome is not None:
                await self._carry_out(record, outcome)
        await self._drain()
        return record

    async def advance(self, seconds: float) -> None:
        """Move the virtual clock; records that waited past the bound are settled."""
        self.now += seconds
        await self._drain()

    def waiting(self) -> int:
        """Records parked, waiting for a row."""
        return sum(len(lot) for lot in self._lots.values())

    def _aligned(self) -> int:
        return max(int(self.now * 1000), self._table_time)

    async def _drain(self) -> None:
        for lot in self._lots.values():
            for record, outcome in lot.release(self.engine, self._aligned()):
                await self._carry_out(record, outcome)

    async def _carry_out(self, record: Record, outcome: Outcome) -> None:
        self.older_than_retention += outcome.too_old
        self.dead_letters.extend(outcome.dead)
        for spec, output in outcome.emits:
            self.outputs.append(Emitted(spec.name, spec.to_topic, output, record.source()))
            if spec.on_output is not None:
                await spec.on_output(output, record.source())

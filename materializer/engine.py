"""The engine both runners share: fold table records into state, decide what a stream record gives.

It does no I/O besides the store: the Kafka runtime (`runner.py`, `runtime/`) and the offline runner
(`offline.py`) feed it records and carry out its decisions.

A stream record of time T is joined with each table's version as of T (`decide`). When a row it
waits for is missing at T, the record is parked (`parking.py`) and `settle` decides it later: it is
joined as of the first time in (T, T + wait] at which no row is missing, once the tables have been
read to that time, or it expires once they have been read to T + wait (INNER: dead letter; LEFT:
nulls as of T). Both depend only on the tables' versions, never on when the record is processed,
so a live run and a catch-up run give the same outputs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from materializer.deadletter import DeadLetter
from materializer.errors import PoisonRecord
from materializer.join import Decision, JoinedStream, evaluate, join_keys
from materializer.source import Record, decode_object
from materializer.state import DEFAULT_RETENTION_MS, Batch, Store, TopicPartitionKey
from materializer.topology import Topology


@dataclass(slots=True)
class Outcome:
    """What one stream record gives across the joins reading its topic."""

    wait: bool = False
    missing: tuple[str, ...] = ()
    emits: list[tuple[JoinedStream, dict[str, Any]]] = field(default_factory=list)
    dead: list[DeadLetter] = field(default_factory=list)
    too_old: bool = False  # joined with the oldest version kept: older than the tables' retention


class Engine:
    """Table folding and join decisions over one store. `join_wait_seconds` bounds, in record
    time, how long a record waits for a missing row; `retention_ms` how long versions are kept."""

    def __init__(
        self,
        topology: Topology,
        store: Store,
        *,
        join_wait_seconds: float = 30.0,
        retention_ms: int = DEFAULT_RETENTION_MS,
    ) -> None:
        self.topology = topology
        self.store = store
        self.join_wait_seconds = join_wait_seconds
        self.wait_ms = int(join_wait_seconds * 1000)
        self.retention_ms = retention_ms
        self._tables = topology.tables_by_topic()
        self._joins = topology.joins_by_topic()
        self.positions: dict[TopicPartitionKey, int] = store.offsets()

    def reload(self) -> None:
        self.positions = self.store.offsets()

    def is_table_topic(self, topic: str) -> bool:
        return topic in self._tables

    def is_stream_topic(self, topic: str) -> bool:
        return topic in self._joins

    def stream_tables(self, topic: str) -> set[str]:
        """The table topics a stream topic's joins read."""
        return {j.table.topic for spec in self._joins.get(topic, ()) for j in spec.joins}

    def apply_tables(self, records: Sequence[Record]) -> list[DeadLetter]:
        """Fold and write at once (see `fold_tables` and `write`)."""
        batch, dead = self.fold_tables(records)
        self.write(batch)
        return dead

    def write(self, batch: Batch) -> None:
        """Rows and next offsets of one poll in ONE store write."""
        if len(batch):
            self.store.write(batch)
            self.positions.update(batch.offsets)

    def fold_tables(self, records: Sequence[Record]) -> tuple[Batch, list[DeadLetter]]:
        """A poll's table records as one batch, and the records refused. Records below the
        stored offset (redeliveries) are ignored."""
        batch = self.store.batch(self.retention_ms)
        dead: list[DeadLetter] = []
        positions = self.positions
        for record in records:
            tp = (record.topic, record.partition)
            if record.offset < positions.get(tp, 0):
                continue
            try:
                value = None if record.value is None else decode_object(record.value)
            except PoisonRecord as exc:
                dead.append(DeadLetter(record, exc.reason, record.topic))
            else:
                for table in self._tables.get(record.topic, ()):
                    try:
                        table.apply(batch, record, value)
                    except PoisonRecord as exc:
                        dead.append(DeadLetter(record, f"{table.name}: {exc.reason}", table.name))
            batch.offset(record.topic, record.partition, record.offset + 1)
        batch.sweep()
        return batch, dead

    def decide(
        self, record: Record, *, as_of: int | None = None, expired: bool = False, waited: float = 0.0
    ) -> Outcome:
        """Join one stream record with each table's version as of `as_of` (default: its time)."""
        specs = self._joins.get(record.topic, ())
        at = record.timestamp if as_of is None else as_of
        outcome = Outcome()
        if record.value is None:
            outcome.dead.extend(DeadLetter(record, "tombstone on a stream", s.name) for s in specs)
            return outcome
        try:
            value = decode_object(record.value)
        except PoisonRecord as exc:
            outcome.dead.extend(DeadLetter(record, exc.reason, s.name) for s in specs)
            return outcome
        decisions: list[tuple[JoinedStream, Decision]] = []
        for spec in specs:
            try:
                decision = evaluate(spec, value, self.store, as_of=at, expired=expired, waited=waited)
            except PoisonRecord as exc:
                decision = Decision("dead", reason=f"{spec.name}: {exc.reason}")
            except Exception as exc:  # a failing `where` predicate must not stop the stream
                decision = Decision("dead", reason=f"{spec.name}: {type(exc).__name__}: {exc}")
            if decision.verdict == "wait":
                outcome.wait = True
                outcome.missing += decision.missing
            outcome.too_old = outcome.too_old or decision.too_old
            decisions.append((spec, decision))
        if outcome.wait:
            return outcome
        for spec, decision in decisions:
            if decision.verdict == "emit" and decision.output is not None:
                outcome.emits.append((spec, decision.output))
            elif decision.verdict == "dead":
                outcome.dead.append(DeadLetter(record, decision.reason, spec.name))
        return outcome

    def settle(self, record: Record, aligned: int) -> Outcome | None:
        """A parked record, once the tables have been read to time `aligned` (ms): joined as of
        the first time in [T, T + wait] at which no row is missing, or expired when the tables
        have been read past T + wait. None: it still waits."""
        start = record.timestamp
        end = start + self.wait_ms
        for at in [start, *self._version_times(record, start, min(end, aligned))]:
            outcome = self.decide(record, as_of=at)
            if not outcome.wait:
                return outcome
        if aligned >= end:
            return self.decide(record, expired=True, waited=self.join_wait_seconds)
        return None

    def _version_times(self, record: Record, after: int, until: int) -> list[int]:
        """Times in (after, until] at which a row the record reads changed."""
        if until <= after or record.value is None:
            return []
        try:
            value = decode_object(record.value)
        except PoisonRecord:
            return []
        times: set[int] = set()
        for spec in self._joins.get(record.topic, ()):
            for table, key in join_keys(spec, value):
                history = self.store.history(table, key)
                if history is not None:
                    times.update(history.times(after, until))
        return sorted(times)

"""Parked stream records of one partition: a record whose row is missing waits here, not in line.

A record that must wait (`Engine.decide` says so) is parked in a queue of its stream key; a later
record of the same key is parked behind it without being joined, so order per key holds; records
of other keys go on. `release` settles each queue's head as the tables advance (`Engine.settle`):
a settled head leaves with its outcome and the next record of its key is tried at once.

No I/O here: the runners make parking durable (the Kafka runtime writes each park and release to
a changelog topic in the partition's transaction) and carry out the outcomes.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator

from materializer.engine import Engine, Outcome
from materializer.source import Record


class ParkingLot:
    """The parked records of one stream partition, in a queue per stream key (offset order)."""

    def __init__(self) -> None:
        self._queues: dict[bytes | None, deque[Record]] = {}
        self._size = 0  # kept, not summed: the partition loop asks for it before every record

    def __len__(self) -> int:
        return self._size

    def __iter__(self) -> Iterator[Record]:
        for queue in self._queues.values():
            yield from queue

    def restore(self, records: list[Record]) -> None:
        """Put back the records parked before a restart or a rebalance (one per offset, any order)."""
        for record in sorted(records, key=lambda r: r.offset):
            self._queues.setdefault(record.key, deque()).append(record)
        self._size += len(records)

    def admit(self, engine: Engine, record: Record, aligned: Callable[[], int]) -> Outcome | None:
        """A new record, the tables read to its time: its outcome, or None when it is parked
        (behind its key's queue, or because a row is missing and it cannot be settled yet).
        `aligned()`, the time the tables are read to, is asked only when a row is missing."""
        queue = self._queues.get(record.key)
        if queue:
            queue.append(record)
            self._size += 1
            return None
        outcome = engine.decide(record)
        if not outcome.wait:
            return outcome
        settled = engine.settle(record, aligned())
        if settled is not None:
            return settled
        self._queues[record.key] = deque([record])
        self._size += 1
        return None

    def release(self, engine: Engine, aligned: int) -> list[tuple[Record, Outcome]]:
        """The parked records that the tables, read to time `aligned`, now settle: per key in
        offset order, each with its outcome. They leave the lot."""
        out: list[tuple[Record, Outcome]] = []
        for key in list(self._queues):
            queue = self._queues[key]
            while queue:
                outcome = engine.settle(queue[0], aligned)
                if outcome is None:
                    break
                out.append((queue.popleft(), outcome))
                self._size -= 1
            if not queue:
                del self._queues[key]
        return out

    def next_deadline(self, wait_ms: int) -> int | None:
        """The earliest record time + wait among the heads (when one expires at the latest)."""
        heads = [q[0].timestamp + wait_ms for q in self._queues.values() if q]
        return min(heads) if heads else None

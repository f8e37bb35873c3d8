"""The parking lot's own bookkeeping (no Kafka): its size follows every park and release."""

from __future__ import annotations

import random

from materializer.engine import Outcome
from materializer.parking import ParkingLot
from materializer.source import Record


class RowsArriveLater:
    """An engine whose rows for a key appear at a given time: a record waits until then."""

    def __init__(self, ready_at: dict[bytes, int]) -> None:
        self.ready_at = ready_at

    def decide(self, record: Record) -> Outcome:
        return Outcome(wait=True, missing=("customers",))

    def settle(self, record: Record, aligned: int) -> Outcome | None:
        return Outcome() if aligned >= self.ready_at[record.key or b""] else None


def test_the_lot_counts_what_it_holds_through_parks_restores_and_releases() -> None:
    rng = random.Random(7)
    keys = [f"k{i}".encode() for i in range(50)]
    engine = RowsArriveLater({k: rng.randrange(0, 1000) for k in keys})
    lot = ParkingLot()
    lot.restore([Record("orders", 0, offset, 0, rng.choice(keys), b"{}") for offset in range(20)])
    assert len(lot) == 20 == len(list(lot))
    offset, released = 20, 0
    for aligned in range(0, 1100, 50):
        for _ in range(30):
            lot.admit(engine, Record("orders", 0, offset, aligned, rng.choice(keys), b"{}"), lambda: -1)
            offset += 1
        released += len(lot.release(engine, aligned))
        assert len(lot) == len(list(lot)) == offset - released
    assert len(lot) == 0 and released == offset

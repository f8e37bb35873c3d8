"""The runtime's counters, in one object handed to those that count.

Plain integers bumped on the event loop (no locks needed): the table reader counts table records,
the dead-letter producer and the partition workers count dead letters, the partition workers
count stream records and outputs. The facade reads them for metrics; nothing else writes them.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class Counters:
    """What the runtime has done, for metrics and tests. One object, handed to those that count:
    the table reader, the dead-letter producer and the partition workers."""

    records_in: int = 0  # stream records handled
    table_records_in: int = 0  # table records applied
    records_out: int = 0  # joined outputs
    dead_letters: int = 0  # records refused, from tables and streams
    older_than_retention: int = 0  # stream records joined with the oldest version kept
    rebuilt: bool = False  # the state was wiped (damaged, another topology, stale) and rebuilt

"""A stream materializer in pure Python: ksqlDB's tables and stream-table joins on RocksDB.

- `Topology`: declare tables (`LATEST_BY_OFFSET` per column, nulls ignored, tombstones delete),
  filtered tables, streams, and stream-table joins (INNER or LEFT) with their output.
- `Materializer(topology, MaterializerSettings(...))`: runs it against Kafka (global tables,
  stream partitions in a consumer group, transactional exactly-once output); read the tables
  with `m.table(name).get(key)`.
- `OfflineMaterializer(topology)`: the same engine fed by hand, for unit tests of semantics.
- `MemoryState` / `RocksState`: the state backends.
- `materializer.sql.parse_sql(text)`: a topology declared in ksqlDB's SQL; `python -m materializer
  check FILE.sql` prints it.
"""

from __future__ import annotations

from materializer.deadletter import DeadLetter
from materializer.errors import (
    MaterializerError,
    NotStarted,
    PoisonRecord,
    SqlError,
    StateError,
    TopologyError,
    UnknownTable,
)
from materializer.join import Join, JoinedStream, Stream
from materializer.offline import Emitted, OfflineMaterializer
from materializer.runner import Materializer
from materializer.settings import MaterializerSettings
from materializer.source import Record, Source
from materializer.state import MemoryState, RocksState, Store
from materializer.tables import FilteredTable, Table, TableView
from materializer.topology import Topology

Output = dict  # a joined record: the stream's columns plus the joined tables' columns

__all__ = [
    "DeadLetter",
    "Emitted",
    "FilteredTable",
    "Join",
    "JoinedStream",
    "Materializer",
    "MaterializerError",
    "MaterializerSettings",
    "MemoryState",
    "NotStarted",
    "OfflineMaterializer",
    "Output",
    "PoisonRecord",
    "Record",
    "RocksState",
    "Source",
    "SqlError",
    "StateError",
    "Store",
    "Stream",
    "Table",
    "TableView",
    "Topology",
    "TopologyError",
    "UnknownTable",
]

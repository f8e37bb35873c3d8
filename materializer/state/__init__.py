"""Table state in layers, as Quix Streams' `state/`: the versions of one key (`history.py`), an
abstract store and its write batch (`store.py`), a memory backend (`memory.py`), a RocksDB backend
(`rocks.py`), and the check that state belongs to its topology (`fingerprint.py`). Imports run one
way: history <- store <- memory, rocks, fingerprint; this module only re-exports.
"""

from __future__ import annotations

from materializer.state.fingerprint import restore
from materializer.state.history import DEFAULT_RETENTION_MS, History, Row
from materializer.state.memory import MemoryState
from materializer.state.rocks import RocksState
from materializer.state.store import Batch, Store, TopicPartitionKey

__all__ = [
    "DEFAULT_RETENTION_MS",
    "Batch",
    "History",
    "MemoryState",
    "RocksState",
    "Row",
    "Store",
    "TopicPartitionKey",
    "restore",
]

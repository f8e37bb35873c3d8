"""The memory backend: everything in dicts."""

from __future__ import annotations

from collections.abc import Iterator

from materializer.state.history import History, Row
from materializer.state.store import Batch, Store, TopicPartitionKey


class MemoryState(Store):
    """Everything in dicts: for the offline engine, unit tests, and workers that rebuild at start."""

    def __init__(self) -> None:
        self._rows: dict[str, dict[str, Row]] = {}
        self._histories: dict[tuple[str, str], History] = {}
        self._stream_times: dict[str, int] = {}
        self._deletions: set[tuple[str, int, str]] = set()
        self._offsets: dict[TopicPartitionKey, int] = {}
        self._fingerprint: str | None = None

    def get(self, table: str, key: str) -> Row | None:
        rows = self._rows.get(table)
        return None if rows is None else rows.get(key)

    def history(self, table: str, key: str) -> History | None:
        return self._histories.get((table, key))

    def stream_time(self, table: str) -> int:
        return self._stream_times.get(table, -1)

    def deletions_before(self, table: str, boundary: int) -> list[tuple[int, str]]:
        return sorted((ts, key) for t, ts, key in self._deletions if t == table and ts <= boundary)

    def items(self, table: str) -> Iterator[tuple[str, Row]]:
        yield from sorted(self._rows.get(table, {}).items())

    def count(self, table: str) -> int:
        return len(self._rows.get(table, {}))

    def offsets(self) -> dict[TopicPartitionKey, int]:
        return dict(self._offsets)

    def write(self, batch: Batch) -> None:
        for (table, key), row in batch.rows.items():
            rows = self._rows.setdefault(table, {})
            if row is None:
                rows.pop(key, None)
            else:
                rows[key] = row
        for table_key, history in batch.histories.items():
            if history is None:
                self._histories.pop(table_key, None)
            else:
                self._histories[table_key] = history
        self._stream_times.update(batch.stream_times)
        for deletion, add in batch.deletions.items():
            if add:
                self._deletions.add(deletion)
            else:
                self._deletions.discard(deletion)
        self._offsets.update(batch.offsets)

    def fingerprint(self) -> str | None:
        return self._fingerprint

    def set_fingerprint(self, value: str) -> None:
        self._fingerprint = value

    def wipe(self) -> None:
        self._rows.clear()
        self._histories.clear()
        self._stream_times.clear()
        self._deletions.clear()
        self._offsets.clear()
        self._fingerprint = None

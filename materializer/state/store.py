"""The abstract store and the batch that writes to it.

A `Batch` collects the row changes, their versions (see `history`) and the consumed offsets of
one poll; `Store.write` applies it at once, so rows, histories and offsets can never disagree
after a crash (Faust wrote them separately). Reads inside a poll see the batch first
(`Batch.get`), then the store. A deleted key is indexed by the time of its deletion, so
`Batch.sweep` forgets its history once the retention has passed: state stays bounded by the keys
alive and the changes within the retention.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator

from materializer.state.history import DEFAULT_RETENTION_MS, History, Row

TopicPartitionKey = tuple[str, int]

_DELETED = object()


class Batch:
    """Row puts and deletes, their versions, plus the next offset of each partition, written
    together. `retention_ms` bounds the versions kept per key (see `History`). A batch is
    written once and then dropped: the store may keep its histories as they are."""

    __slots__ = (
        "counts",
        "deletions",
        "histories",
        "offsets",
        "retention_ms",
        "rows",
        "store",
        "stream_times",
    )

    def __init__(self, store: Store, retention_ms: int = DEFAULT_RETENTION_MS) -> None:
        self.store = store
        self.retention_ms = retention_ms
        self.rows: dict[tuple[str, str], Row | None] = {}
        self.histories: dict[tuple[str, str], History | None] = {}
        self.stream_times: dict[str, int] = {}
        self.deletions: dict[tuple[str, int, str], bool] = {}  # (table, time, key): add or drop
        self.offsets: dict[TopicPartitionKey, int] = {}
        self.counts: dict[str, int] = {}

    def get(self, table: str, key: str) -> Row | None:
        """The row as this batch would leave it."""
        found = self.rows.get((table, key), _DELETED)
        if found is not _DELETED:
            return found  # type: ignore[return-value]
        return self.store.get(table, key)

    def put(self, table: str, key: str, row: Row, existed: bool, ts: int = 0) -> None:
        self.rows[(table, key)] = row
        if not existed:
            self.counts[table] = self.counts.get(table, 0) + 1
        self._version(table, key, ts, row)

    def delete(self, table: str, key: str, existed: bool, ts: int = 0) -> None:
        self.rows[(table, key)] = None
        if existed:
            self.counts[table] = self.counts.get(table, 0) - 1
        self._version(table, key, ts, None)

    def _history(self, table: str, key: str) -> History | None:
        found = self.histories.get((table, key), _DELETED)
        if found is _DELETED:
            stored = self.store.history(table, key)
            return None if stored is None else stored.copy()
        return found  # type: ignore[return-value]

    def _version(self, table: str, key: str, ts: int, row: Row | None) -> None:
        stream_time = max(self.stream_times.get(table, self.store.stream_time(table)), ts)
        self.stream_times[table] = stream_time
        history = self._history(table, key) or History()
        boundary = stream_time - self.retention_ms
        history.add(ts, row, boundary)
        self.histories[(table, key)] = None if history.expired(boundary) else history
        if row is None:
            self.deletions[(table, ts, key)] = True

    def sweep(self) -> None:
        """Forget the histories of keys deleted before the retention of the tables changed here."""
        for table, stream_time in self.stream_times.items():
            boundary = stream_time - self.retention_ms
            for ts, key in self.store.deletions_before(table, boundary):
                history = self._history(table, key)
                if history is not None and history.expired(boundary):
                    self.histories[(table, key)] = None
                self.deletions[(table, ts, key)] = False

    def offset(self, topic: str, partition: int, next_offset: int) -> None:
        self.offsets[(topic, partition)] = next_offset

    def __len__(self) -> int:
        return len(self.rows) + len(self.offsets)


class Store(ABC):
    """Rows by (table, key) with their histories, the next offset to read per table partition,
    and a fingerprint."""

    @abstractmethod
    def get(self, table: str, key: str) -> Row | None: ...

    @abstractmethod
    def history(self, table: str, key: str) -> History | None:
        """The versions of a key (None: none kept). Callers must not change it."""

    @abstractmethod
    def stream_time(self, table: str) -> int:
        """The largest record timestamp the table has seen (-1: none)."""

    @abstractmethod
    def deletions_before(self, table: str, boundary: int) -> list[tuple[int, str]]:
        """(time, key) of the deletions indexed at or before `boundary`."""

    @abstractmethod
    def items(self, table: str) -> Iterator[tuple[str, Row]]: ...

    @abstractmethod
    def count(self, table: str) -> int: ...

    @abstractmethod
    def offsets(self) -> dict[TopicPartitionKey, int]: ...

    @abstractmethod
    def write(self, batch: Batch) -> None: ...

    @abstractmethod
    def fingerprint(self) -> str | None: ...

    @abstractmethod
    def set_fingerprint(self, value: str) -> None: ...

    @abstractmethod
    def wipe(self) -> None:
        """Forget everything (the tables are then rebuilt from the beginning of the topics)."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release files; the memory backend has none."""

    def batch(self, retention_ms: int = DEFAULT_RETENTION_MS) -> Batch:
        return Batch(self, retention_ms)

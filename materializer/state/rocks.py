"""The RocksDB backend: rows, histories and offsets in one database, each batch ONE WriteBatch."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
from rocksdict import Options, Rdict, WriteBatch, WriteOptions

from materializer.errors import StateError
from materializer.state.history import History, Row
from materializer.state.store import Batch, Store, TopicPartitionKey

log = logging.getLogger(__name__)

# Decoded histories kept in front of RocksDB (a join reads one per table and record; a miss is a
# RocksDB read and a decode, several times a hit's cost). About 0.5-1 KB of memory per key.
HISTORY_CACHE_SIZE = 250_000

# RocksDB key layout (raw bytes): one prefix byte, then the name, a NUL, then the key.
_ROW, _OFFSET, _COUNT, _META, _HISTORY, _TIME, _DELETION = b"r", b"o", b"c", b"m", b"v", b"t", b"d"
_TIME_SHIFT = 1 << 62  # deletion times as fixed-width non-negative text, so they sort
_FINGERPRINT = _META + b"fingerprint"


def _row_key(table: str, key: str) -> bytes:
    return _ROW + table.encode() + b"\0" + key.encode()


def _history_key(table: str, key: str) -> bytes:
    return _HISTORY + table.encode() + b"\0" + key.encode()


def _deletion_key(table: str, ts: int, key: str) -> bytes:
    return _DELETION + table.encode() + b"\0" + b"%020d" % (ts + _TIME_SHIFT) + b"\0" + key.encode()


def _offset_key(topic: str, partition: int) -> bytes:
    return _OFFSET + topic.encode() + b"\0" + str(partition).encode()


class RocksState(Store):
    """Rows and offsets in one RocksDB database (rocksdict, raw bytes). A folder that cannot be
    opened is moved aside and started empty: the tables are then rebuilt from the topics."""

    def __init__(self, path: Path, *, cache_keys: int = HISTORY_CACHE_SIZE) -> None:
        self.path = Path(path)
        self._cache_keys = cache_keys
        self.rebuilt = False
        self._db: Any = self._open()
        self._write_options = WriteOptions()  # WAL on, no fsync: survives kill -9, not power loss
        self._counts: dict[str, int] = {}
        self._stream_times: dict[str, int] = {}
        # a bounded read cache by (table, key), kept by `write`: a hit builds no RocksDB key
        self._histories: dict[tuple[str, str], History] = {}

    def _open(self) -> Any:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            return self._open_db()
        except Exception as exc:  # RocksDB reports corruption as a plain exception
            log.warning("state at %s is damaged (%s): rebuilding from the topics", self.path, exc)
            shutil.rmtree(self.path, ignore_errors=True)
            self.rebuilt = True
            try:
                return self._open_db()
            except Exception as again:
                raise StateError(f"cannot open state at {self.path}: {again}") from again

    def _open_db(self) -> Any:
        options = Options(raw_mode=True)
        options.create_if_missing(True)
        options.set_paranoid_checks(True)
        db = Rdict(str(self.path), options=options)
        probe = db.get(_FINGERPRINT)
        if probe is not None:
            probe.decode()  # a damaged value fails here rather than later
        return db

    def get(self, table: str, key: str) -> Row | None:
        raw = self._db.get(_row_key(table, key))
        return None if raw is None else orjson.loads(raw)  # type: ignore[no-any-return,unused-ignore]

    def history(self, table: str, key: str) -> History | None:
        cache = self._histories
        found = cache.get((table, key))
        if found is not None:
            return found
        raw = self._db.get(_history_key(table, key))
        if raw is None:
            return None  # not cached: a table build would fill the cache with new keys
        history = History.decode(raw)
        if len(cache) >= self._cache_keys:
            cache.clear()
        cache[(table, key)] = history
        return history

    def stream_time(self, table: str) -> int:
        if table not in self._stream_times:
            raw = self._db.get(_TIME + table.encode())
            self._stream_times[table] = int(raw) if raw is not None else -1
        return self._stream_times[table]

    def deletions_before(self, table: str, boundary: int) -> list[tuple[int, str]]:
        prefix = _DELETION + table.encode() + b"\0"
        out = []
        for raw_key in self._db.keys(from_key=prefix):
            if not raw_key.startswith(prefix):
                break
            at, _, key = raw_key[len(prefix) :].partition(b"\0")
            ts = int(at) - _TIME_SHIFT
            if ts > boundary:
                break
            out.append((ts, key.decode()))
        return out

    def items(self, table: str) -> Iterator[tuple[str, Row]]:
        prefix = _ROW + table.encode() + b"\0"
        for raw_key, raw in self._db.items(from_key=prefix):
            if not raw_key.startswith(prefix):
                break
            yield raw_key[len(prefix) :].decode(), orjson.loads(raw)

    def count(self, table: str) -> int:
        if table not in self._counts:
            raw = self._db.get(_COUNT + table.encode())
            self._counts[table] = int(raw) if raw is not None else 0
        return self._counts[table]

    def offsets(self) -> dict[TopicPartitionKey, int]:
        out: dict[TopicPartitionKey, int] = {}
        for raw_key, raw in self._db.items(from_key=_OFFSET):
            if not raw_key.startswith(_OFFSET):
                break
            topic, _, partition = raw_key[1:].rpartition(b"\0")
            out[(topic.decode(), int(partition))] = int(raw)
        return out

    def write(self, batch: Batch) -> None:
        wb = WriteBatch(raw_mode=True)
        dumps = orjson.dumps
        for (table, key), row in batch.rows.items():
            if row is None:
                wb.delete(_row_key(table, key))
            else:
                wb.put(_row_key(table, key), dumps(row))
        cache = self._histories
        cached: list[tuple[tuple[str, str], History]] = []
        for table_key, history in batch.histories.items():
            db_key = _history_key(*table_key)
            if history is None:
                cache.pop(table_key, None)
                wb.delete(db_key)
            else:
                wb.put(db_key, history.encode())
                cached.append((table_key, history))
        for table, stream_time in batch.stream_times.items():
            wb.put(_TIME + table.encode(), str(stream_time).encode())
        for (table, ts, key), add in batch.deletions.items():
            if add:
                wb.put(_deletion_key(table, ts, key), b"")
            else:
                wb.delete(_deletion_key(table, ts, key))
        totals = {t: self.count(t) + d for t, d in batch.counts.items() if d}
        for table, total in totals.items():
            wb.put(_COUNT + table.encode(), str(total).encode())
        for (topic, partition), offset in batch.offsets.items():
            wb.put(_offset_key(topic, partition), str(offset).encode())
        self._db.write(wb, self._write_options)
        # A batch is written once and dropped (its histories are copies, never the cache's), so
        # the cache takes its histories as they are: the joins that follow decode none of them.
        for table_key, history in cached:
            if len(cache) >= self._cache_keys:
                cache.clear()
            cache[table_key] = history
        self._counts.update(totals)
        self._stream_times.update(batch.stream_times)

    def fingerprint(self) -> str | None:
        raw = self._db.get(_FINGERPRINT)
        return None if raw is None else bytes(raw).decode()

    def set_fingerprint(self, value: str) -> None:
        self._db.put(_FINGERPRINT, value.encode(), self._write_options)

    def wipe(self) -> None:
        self._db.close()
        shutil.rmtree(self.path, ignore_errors=True)
        self._db = self._open_db()
        self._counts.clear()
        self._stream_times.clear()
        self._histories.clear()
        self.rebuilt = True

    def close(self) -> None:
        self._db.close()

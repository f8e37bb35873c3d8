"""Options of a Kafka-backed materializer (a frozen dataclass, built once by the embedder)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from kafka_integration import KafkaSettings
from materializer.errors import TopologyError


@dataclass(frozen=True)
class MaterializerSettings:
    """How to reach Kafka, where state lives, and the bounds of waiting and batching.

    - `group_id`: the consumer group of the stream partitions; also the stem of the transactional
      ids (`{group_id}.{topic}.{partition}`), so it must be the same for all workers of one job.
    - `state_dir`: the RocksDB folder (required unless the state is kept in memory).
    - `join_wait_seconds`: how long, in record time, a stream record waits (parked) for a
      missing table row: a row whose version is at most this much younger than the record joins.
    - `table_history_seconds`: how long, in record time, each table keeps a key's versions
      (a stream record older than that joins the oldest version kept).
    - `dead_letter_topic`: logical name of the topic for refused records (None: logged only).
    - `commit_interval_seconds` / `max_batch_records`: a stream partition commits its transaction
      (outputs + offsets) at least this often / after this many records.
    - `handler_concurrency`: how many `on_output` calls of one stream partition may run at once
      (1: each is awaited before the next record is joined). Calls of one stream key never
      overlap: a record whose key has a call running waits for the running calls, so each key's
      calls run in offset order; all have returned before the offsets of their records commit.
    - `max_queued_records`: fetched records held per partition before its fetching pauses.
    - `topic_partitions`: partitions of the topics the materializer creates when missing.
    - `cache_keys`: table keys whose versions are kept decoded in memory in front of RocksDB
      (about 0.5-1 KB each). Joins read one per table and record: with more keys than this,
      most lookups read RocksDB (at 200k keys and a 50k cache the join ran 2.4x slower).
    """

    kafka: KafkaSettings
    group_id: str = "materializer"
    state_dir: Path | None = None
    join_wait_seconds: float = 30.0
    table_history_seconds: float = 3600.0
    dead_letter_topic: str | None = "materializer_dead_letters"
    commit_interval_seconds: float = 0.2
    max_batch_records: int = 5000
    handler_concurrency: int = 1
    max_queued_records: int = 10000
    table_poll_records: int = 20000
    topic_partitions: int = 3
    cache_keys: int = 250_000
    session_timeout_ms: int = 10000
    heartbeat_interval_ms: int = 1000
    transaction_timeout_ms: int = 60000
    create_topics: bool = True

    def __post_init__(self) -> None:
        if self.join_wait_seconds < 0:
            raise TopologyError("join_wait_seconds must be >= 0")
        if self.table_history_seconds < self.join_wait_seconds:
            raise TopologyError("table_history_seconds must be >= join_wait_seconds")
        if not self.group_id:
            raise TopologyError("group_id must not be empty")
        if self.cache_keys < 1:
            raise TopologyError("cache_keys must be positive")
        if self.max_batch_records < 1 or self.max_queued_records < 1:
            raise TopologyError("max_batch_records and max_queued_records must be positive")
        if self.handler_concurrency < 1:
            raise TopologyError("handler_concurrency must be positive")

"""The runtime's own pieces: topic metadata against the real broker, and the state restore rule."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from kafka_integration import KafkaSettings, TopicMetadata, TopicMissing, TopicSpec, ensure_topics
from materializer import MemoryState, RocksState, Store
from materializer.state import restore
from tests.support import PATIENCE, unique


async def test_partitions_of_a_topic_created_a_moment_ago(kafka: KafkaSettings) -> None:
    name = unique("fresh_")
    await ensure_topics(kafka, [TopicSpec(name, partitions=5, compacted=False)])
    async with TopicMetadata(kafka) as metadata:
        tps = await metadata.wait_partitions(kafka.topic(name), timeout=PATIENCE)
        counts = await metadata.partition_counts()
    assert [tp.partition for tp in tps] == [0, 1, 2, 3, 4]
    assert {tp.topic for tp in tps} == {kafka.topic(name)}
    assert counts[kafka.topic(name)] == 5


@pytest.mark.parametrize("name", ["missing_topic", "a" * 249, "with\x00nul", "../etc", ""])
async def test_asking_for_a_missing_or_malformed_topic_finds_nothing_and_creates_nothing(
    kafka: KafkaSettings, name: str
) -> None:
    physical = kafka.topic(unique("") + name)
    async with TopicMetadata(kafka) as metadata:
        assert await metadata.partitions(physical) == []
        with pytest.raises(TopicMissing, match="does not exist"):
            await metadata.wait_partitions(physical, timeout=0.3)
        assert physical not in await metadata.partition_counts()  # not auto-created by the lookup


@pytest.fixture(params=["memory", "rocksdb"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    s: Store = MemoryState() if request.param == "memory" else RocksState(tmp_path / "s")
    yield s
    s.close()


def written(store: Store) -> Store:
    batch = store.batch()
    batch.put("t", "1", {"id": 1}, existed=False)
    batch.offset("topic", 0, 7)
    store.write(batch)
    return store


def test_restore_keeps_state_of_the_same_topology(store: Store) -> None:
    assert restore(store, "fp") is False
    written(store)
    assert restore(store, "fp") is False
    assert store.get("t", "1") == {"id": 1} and store.offsets() == {("topic", 0): 7}


def test_restore_wipes_state_of_another_topology(store: Store) -> None:
    restore(store, "old")
    written(store)
    assert restore(store, "new") is True
    assert store.get("t", "1") is None and store.offsets() == {} and store.fingerprint() == "new"


def test_restore_wipes_state_of_unknown_origin(store: Store) -> None:
    written(store)  # rows and offsets, never a fingerprint
    assert restore(store, "fp") is True
    assert store.offsets() == {} and store.fingerprint() == "fp"


def test_restore_wipes_stale_state_and_keeps_the_fingerprint(store: Store) -> None:
    restore(store, "fp")
    written(store)
    assert restore(store, "fp", stale=True) is True
    assert store.get("t", "1") is None and store.offsets() == {} and store.fingerprint() == "fp"

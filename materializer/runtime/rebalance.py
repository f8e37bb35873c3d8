"""The rebalance listener: the stream partitions this worker owns, as the group moves them.

A partition is handed over cleanly: its old worker finishes its current record and commits
before the revocation returns; its new worker's transactional producer fences the old owner and
settles its open transaction before the worker reads from the committed offset.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiokafka import ConsumerRebalanceListener, TopicPartition

from materializer.runtime.partition import PartitionWorker

log = logging.getLogger(__name__)


class Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    """The stream partitions this worker owns, as the group assigns and revokes them.

    Assigned: `open_partition` makes each new partition's worker (its transactional producer's
    start fences a previous owner and settles its open transaction), then the worker starts.
    Revoked: each worker finishes its current record, commits, and stops, before the group moves
    the partition on (aiokafka awaits this listener)."""

    def __init__(self, open_partition: Callable[[TopicPartition], Awaitable[PartitionWorker]]) -> None:
        self._open = open_partition
        self.workers: dict[TopicPartition, PartitionWorker] = {}

    async def on_partitions_revoked(self, revoked: Any) -> None:
        await self.revoke(set(revoked))

    async def on_partitions_assigned(self, assigned: Any) -> None:
        await self.assign(set(assigned))

    async def assign(self, assigned: set[TopicPartition]) -> None:
        new = [tp for tp in sorted(assigned) if tp not in self.workers]
        opened = await asyncio.gather(*(self._open(tp) for tp in new))
        for tp, worker in zip(new, opened, strict=True):
            self.workers[tp] = worker
            worker.start()
        log.info("stream partitions assigned: %s", [f"{t.topic}:{t.partition}" for t in new])

    async def revoke(self, revoked: set[TopicPartition]) -> None:
        gone = [self.workers.pop(tp) for tp in sorted(revoked) if tp in self.workers]
        for worker in gone:
            worker.release()  # at once: a worker recovering from a failure must not restart
        await asyncio.gather(*(w.stop() for w in gone))
        if gone:
            log.info("stream partitions revoked: %s", [f"{w.tp.topic}:{w.tp.partition}" for w in gone])

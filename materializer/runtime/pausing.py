"""Pause and resume of the stream consumer's partitions: the bound on fetched records.

A partition whose worker holds `max_queued_records` fetched records stops being fetched until
the worker is down to half; the other partitions go on. Rewinding a partition (after a failure,
or for records fetched before their worker existed) seeks it, only while it is still assigned.
"""

from __future__ import annotations

from aiokafka import AIOKafkaConsumer, TopicPartition


class Pausing:
    """Pause and resume of the stream consumer's partitions, and rewinding one to an offset.

    A partition whose worker holds `max_queued` fetched records is paused; it is resumed once the
    worker is down to half of that, or when the worker rewinds after a failure."""

    def __init__(self, consumer: AIOKafkaConsumer, max_queued: int) -> None:
        self._consumer = consumer
        self._high = max_queued
        self._low = max_queued // 2
        self._paused: set[TopicPartition] = set()  # paused here (a rebalance may have resumed them)

    def owns(self, tp: TopicPartition) -> bool:
        """Whether the consumer is still assigned `tp`."""
        return tp in self._consumer.assignment()

    def pause_if_full(self, tp: TopicPartition, queued: int) -> None:
        if queued >= self._high:
            self._consumer.pause(tp)
            self._paused.add(tp)

    def resume_if_drained(self, tp: TopicPartition, queued: int) -> None:
        if queued < self._low and tp in self._paused:
            self.resume(tp)

    def resume(self, tp: TopicPartition) -> None:
        self._paused.discard(tp)
        if tp in self._consumer.paused():
            self._consumer.resume(tp)

    def rewind(self, tp: TopicPartition, offset: int) -> None:
        """Fetch `tp` again from `offset` (if still assigned); what was fetched after is dropped."""
        if self.owns(tp):
            self._consumer.seek(tp, offset)

"""The worker's Prometheus figures: the materializer's counters, the emails sent and failed, and
the stream lag, read at scrape time."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from materializer import Materializer
from notifications.notify import Notifier


class WorkerCollector(Collector):
    """Materializer and email figures, read at scrape time."""

    def __init__(self, materializer: Materializer, notifier: Notifier) -> None:
        self.materializer = materializer
        self.notifier = notifier
        self.lag = 0  # refreshed by `refresh()` before each scrape (asking Kafka is async)

    async def refresh(self) -> None:
        self.lag = await stream_lag(self.materializer)

    def collect(self) -> Iterator[Any]:
        m = self.materializer
        for name, help_text, value in (
            ("materializer_records_in", "records consumed", getattr(m, "records_in", 0)),
            ("materializer_records_out", "joined records emitted", getattr(m, "records_out", 0)),
            (
                "materializer_dead_letters",
                "records sent to the dead-letter topic",
                getattr(m, "dead_letters", 0),
            ),
            ("emails_sent", "emails accepted by the SMTP server", self.notifier.sent),
            ("emails_failed", "emails refused by the SMTP server", self.notifier.failed),
        ):
            yield CounterMetricFamily(name, help_text, value=float(value))
        lag = GaugeMetricFamily("consumer_lag", "records behind the end of the stream topics")
        lag.add_metric([], float(self.lag))
        yield lag


async def stream_lag(materializer: Materializer) -> int:
    """Records behind the end of the stream topics (0 while Kafka cannot be asked)."""
    try:
        return sum((await materializer.lag()).values())
    except Exception:
        return 0

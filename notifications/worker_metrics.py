"""The worker's Prometheus figures: the materializer's counters, the emails sent and failed, and
the lag per topic and partition, read at scrape time.

The lag is asked of Kafka (end offsets). When Kafka cannot be asked (down, unreachable, slower
than `LAG_TIMEOUT`), the lag is unknown, not 0: the gauge has no sample, `consumer_lag_known`
is 0, and /health says `degraded` with the reason.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from materializer import Materializer
from notifications.notify import Notifier

LAG_TIMEOUT = 5.0  # seconds given to Kafka to answer the end offsets


@dataclass(frozen=True, slots=True)
class Lag:
    """The lag per (logical topic, partition), or why it is unknown."""

    partitions: dict[tuple[str, int], int] = field(default_factory=dict)
    error: str | None = None

    @property
    def known(self) -> bool:
        return self.error is None

    def total(self) -> int | None:
        return sum(self.partitions.values()) if self.known else None

    def as_dict(self) -> dict[str, Any]:
        """For /health: the total, and each partition as `topic/partition`."""
        return {
            "consumer_lag": self.total(),
            "partitions": {f"{t}/{p}": n for (t, p), n in sorted(self.partitions.items())},
            **({"error": self.error} if self.error else {}),
        }


async def stream_lag(materializer: Materializer, timeout: float | None = None) -> Lag:
    """The lag per partition, as Kafka says it now; unknown (with the reason) when it cannot."""
    timeout = LAG_TIMEOUT if timeout is None else timeout
    try:
        return Lag(await asyncio.wait_for(materializer.partition_lag(), timeout))
    except TimeoutError:
        return Lag(error=f"Kafka did not answer the end offsets within {timeout:g} s")
    except Exception as exc:  # any failure to ask is reported, never taken for 0
        return Lag(error=f"Kafka cannot be asked the end offsets: {type(exc).__name__}: {exc}")


def state_size(materializer: Materializer) -> int | None:
    """Bytes of the materializer's state folder on disk (None: kept in memory)."""
    settings = getattr(materializer, "settings", None)
    folder = None if settings is None else settings.state_dir
    if folder is None or not Path(folder).is_dir():
        return None
    total = 0
    for path in Path(folder).rglob("*"):
        with contextlib.suppress(OSError):  # RocksDB removes files while it compacts
            if path.is_file():
                total += path.stat().st_size
    return total


class WorkerCollector(Collector):
    """Materializer and email figures, read at scrape time."""

    def __init__(self, materializer: Materializer, notifier: Notifier) -> None:
        self.materializer = materializer
        self.notifier = notifier
        self.lag = Lag(error="not asked yet")  # refreshed by `refresh()` before each scrape
        self.state_bytes: int | None = None

    async def refresh(self) -> None:
        self.lag = await stream_lag(self.materializer)
        self.state_bytes = await asyncio.to_thread(state_size, self.materializer)

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
        parked = GaugeMetricFamily("materializer_parked", "stream records waiting (parked) for a table row")
        parked.add_metric([], float(m.parked()) if hasattr(m, "parked") else 0.0)
        yield parked
        lag = GaugeMetricFamily(
            "consumer_lag", "records behind the end, per topic and partition", labels=["topic", "partition"]
        )
        for (topic, partition), n in sorted(self.lag.partitions.items()):
            lag.add_metric([topic, str(partition)], float(n))
        yield lag
        if self.state_bytes is not None:
            size = float(self.state_bytes)
            yield GaugeMetricFamily("materializer_state_bytes", "RocksDB state on disk, bytes", value=size)
        known = GaugeMetricFamily("consumer_lag_known", "1 when Kafka answered the end offsets, else 0")
        known.add_metric([], 1.0 if self.lag.known else 0.0)
        yield known

"""The notifications service's settings, read from the environment in one place: `Config` for the
API, `WorkerConfig` for the worker (which checks no token, so needs no key)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from kafka_integration import KafkaSettings
from materializer import MaterializerSettings
from notifications.mailer import SmtpSettings
from servicekit.config import env_float, env_int, env_str
from servicekit.db import DatabaseSettings
from servicekit.settings import ServiceConfig

HANDLER_CONCURRENCY = 256  # email handlers running at once per stream partition
MAX_COMMIT_INTERVAL_SECONDS = 30.0  # well inside the stream transactions' timeout (60 s)


@dataclass(frozen=True)
class WorkerSettings:
    """MATERIALIZER_STATE_DIR (RocksDB state), JOIN_WAIT_SECONDS (how much younger than an invoice
    its customer or organization may be: the invoice is parked that long, in record time, before
    it is dead-lettered), TABLE_HISTORY_SECONDS (how long the tables keep each key's versions, for
    joins as of a record's time), CONSUMER_GROUP, NOTIFICATIONS_TENANT,
    DEAD_LETTER_TOPIC, HOST and WORKER_PORT (the worker's /health and /metrics), SMTP_CONCURRENCY (senders),
    NOTIFICATION_MAX_FAILURES (attempts that fail with neither an SMTP refusal nor an unreachable
    server before a notification is `failed` for good), COMMIT_INTERVAL_SECONDS and
    MAX_BATCH_RECORDS (a stream partition's transaction commits at least this often / after this
    many records: a record's email waits for nothing of it, but each commit is a few Kafka
    requests, so a shorter interval costs the worker and the broker CPU per second)."""

    state_dir: Path
    join_wait_seconds: float
    group_id: str
    tenant: str
    dead_letter_topic: str = "notifications_dead_letters"
    table_history_seconds: float = 3600.0
    host: str = "127.0.0.1"
    port: int = 3005
    smtp_concurrency: int = 8
    max_failures: int = 5
    commit_interval_seconds: float = 0.2
    max_batch_records: int = 5000

    def __post_init__(self) -> None:
        # NaN compares false both ways: `not (0 < x <= ...)` refuses it too
        if not 0 < self.commit_interval_seconds <= MAX_COMMIT_INTERVAL_SECONDS:
            raise ValueError(
                f"COMMIT_INTERVAL_SECONDS must be above 0 and at most {MAX_COMMIT_INTERVAL_SECONDS:g} "
                f"(the transaction timeout is 60), got {self.commit_interval_seconds!r}"
            )
        if self.max_batch_records < 1:
            raise ValueError(f"MAX_BATCH_RECORDS must be at least 1, got {self.max_batch_records!r}")

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> WorkerSettings:
        return cls(
            state_dir=Path(env_str(environ, "MATERIALIZER_STATE_DIR", ".run/materializer")),
            join_wait_seconds=env_float(environ, "JOIN_WAIT_SECONDS", 30.0),
            group_id=env_str(environ, "CONSUMER_GROUP", "notifications"),
            tenant=env_str(environ, "NOTIFICATIONS_TENANT", "default"),
            dead_letter_topic=env_str(environ, "DEAD_LETTER_TOPIC", "notifications_dead_letters"),
            table_history_seconds=env_float(environ, "TABLE_HISTORY_SECONDS", 3600.0),
            host=env_str(environ, "HOST", "127.0.0.1"),
            port=env_int(environ, "WORKER_PORT", 3005),
            smtp_concurrency=env_int(environ, "SMTP_CONCURRENCY", 8),
            max_failures=env_int(environ, "NOTIFICATION_MAX_FAILURES", 5),
            commit_interval_seconds=env_float(environ, "COMMIT_INTERVAL_SECONDS", 0.2),
            max_batch_records=env_int(environ, "MAX_BATCH_RECORDS", 5000),
        )


@dataclass(frozen=True)
class WorkerConfig:
    """The worker's settings: the materializer's, the database and SMTP; no token key."""

    db: DatabaseSettings
    kafka: KafkaSettings
    smtp: SmtpSettings
    worker: WorkerSettings

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> WorkerConfig:
        return cls(
            db=DatabaseSettings.from_env(environ, schema="notifications"),
            kafka=KafkaSettings.from_env(environ, client_id="notifications"),
            smtp=SmtpSettings.from_env(environ),
            worker=WorkerSettings.from_env(environ),
        )


@dataclass(frozen=True)
class Config(ServiceConfig):
    """The API's settings: the worker's (it serves the tables too) plus HTTP and the token key."""

    smtp: SmtpSettings
    worker: WorkerSettings

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Config:
        return cls(
            **cls.common(environ, name="notifications", port=3003),
            smtp=SmtpSettings.from_env(environ),
            worker=WorkerSettings.from_env(environ),
        )


def materializer_settings(
    config: Config | WorkerConfig, role: Literal["api", "worker"]
) -> MaterializerSettings:
    """The materializer's settings for the worker or the API: each keeps its own state folder and
    consumer group (the API's group is the worker's with `-api`), with the same join wait and
    dead-letter topic."""
    worker = config.worker
    return MaterializerSettings(
        kafka=config.kafka,
        state_dir=worker.state_dir / role,
        group_id=worker.group_id if role == "worker" else f"{worker.group_id}-{role}",
        join_wait_seconds=worker.join_wait_seconds,
        table_history_seconds=max(worker.table_history_seconds, worker.join_wait_seconds),
        dead_letter_topic=worker.dead_letter_topic,
        commit_interval_seconds=worker.commit_interval_seconds,
        max_batch_records=worker.max_batch_records,
        # the email handlers of a partition's records run together, so their notifications are
        # recorded by one INSERT per batch (notifications.claims); the API has no handlers
        handler_concurrency=HANDLER_CONCURRENCY,
    )

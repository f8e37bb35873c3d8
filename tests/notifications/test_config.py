"""The worker's settings from the environment: the stream transactions' commit interval and batch."""

from __future__ import annotations

import pytest

from notifications.config import WorkerConfig, materializer_settings

BASE = {"DATABASE_URL": "postgresql://u:p@127.0.0.1:5432/app", "BOOTSTRAP_SERVERS": "127.0.0.1:9092"}


def test_the_commit_interval_and_batch_default_to_the_materializers() -> None:
    settings = materializer_settings(WorkerConfig.from_env(BASE), "worker")
    assert (settings.commit_interval_seconds, settings.max_batch_records) == (0.2, 5000)


def test_the_commit_interval_and_batch_come_from_the_environment_for_worker_and_api() -> None:
    environ = {**BASE, "COMMIT_INTERVAL_SECONDS": "0.05", "MAX_BATCH_RECORDS": "200"}
    config = WorkerConfig.from_env(environ)
    for role in ("worker", "api"):
        settings = materializer_settings(config, role)  # type: ignore[arg-type]
        assert (settings.commit_interval_seconds, settings.max_batch_records) == (0.05, 200)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("COMMIT_INTERVAL_SECONDS", "0"),
        ("COMMIT_INTERVAL_SECONDS", "-1"),
        ("COMMIT_INTERVAL_SECONDS", "nan"),
        ("COMMIT_INTERVAL_SECONDS", "inf"),
        ("COMMIT_INTERVAL_SECONDS", "61"),
        ("COMMIT_INTERVAL_SECONDS", "0.2s"),
        ("COMMIT_INTERVAL_SECONDS", "\x00" * 10_000),
        ("MAX_BATCH_RECORDS", "0"),
        ("MAX_BATCH_RECORDS", "-5"),
        ("MAX_BATCH_RECORDS", "1.5"),
    ],
)
def test_a_bad_commit_interval_or_batch_is_refused_naming_the_variable(name: str, value: str) -> None:
    with pytest.raises(ValueError, match=name):
        WorkerConfig.from_env({**BASE, name: value})

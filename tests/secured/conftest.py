"""The system against a broker as production runs it: SASL_SSL, one principal per process, ACLs.

Run with `make test-secured` (not part of `make test`): it starts the secured broker of
`KAFKA_SECURITY=sasl_ssl bash infra/kafka.sh start` on its own ports (KAFKA_SECURED_PORT and
KAFKA_SECURED_CONTROLLER_PORT, 19094/19095 by default), beside the usual PostgreSQL and SMTP sink.
The ACLs name physical topics, so the whole run shares the one topic prefix the broker was
started with (`secured.`); tests stay apart by their own database schema and unique data.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from kafka_integration import KafkaSettings
from tests.support import ROOT, unique

SECURED_DIR = ROOT / ".run" / "kafka-secured"
SERVICES = ("security", "customers", "orders", "notifications", "notifications-worker")


def _read_env(path: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)


@pytest.fixture(scope="session")
def infra() -> dict[str, str]:
    """The secured broker (started unless running), PostgreSQL and the SMTP sink; no credentials."""
    env = {**os.environ, "KAFKA_SECURITY": "sasl_ssl", "KAFKA_TOPIC_PREFIX": "secured."}
    env["KAFKA_PORT"] = os.environ.get("KAFKA_SECURED_PORT", "19094")
    env["KAFKA_CONTROLLER_PORT"] = os.environ.get("KAFKA_SECURED_CONTROLLER_PORT", "19095")
    for piece in ("kafka", "postgres", "smtp"):
        subprocess.run(["bash", str(ROOT / "infra" / f"{piece}.sh"), "start"], check=True, cwd=ROOT, env=env)
    return {
        **_read_env(SECURED_DIR / "client.env"),
        "DATABASE_URL": f"postgresql://postgres:postgres@127.0.0.1:{os.environ.get('PGPORT', '15432')}/app",
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": os.environ.get("SMTP_SINK_PORT", "11025"),
        "SMTP_SINK_DIR": str(ROOT / ".run" / "mail"),
    }


@pytest.fixture(scope="session")
def passwords(infra: dict[str, str]) -> dict[str, str]:
    lines = (SECURED_DIR / "credentials").read_text().splitlines()
    return dict(line.split(":", 1) for line in lines if line)


@pytest.fixture
async def test_env(infra: dict[str, str], signing_keys: dict[str, str]) -> AsyncIterator[dict[str, str]]:
    """A test's variables: its own schema; the run's topic prefix; no Kafka principal yet."""
    schema = unique("s_")
    yield {
        **infra,
        **signing_keys,
        "DATABASE_SCHEMA": schema,
        "EVENT_DELIVERY_TIMEOUT": "5",
        "MESSAGE_ID_DOMAIN": f"{schema}.test",
    }
    conn = await asyncpg.connect(infra["DATABASE_URL"])
    try:
        for (name,) in await conn.fetch(
            "SELECT nspname FROM pg_namespace WHERE nspname = $1 OR nspname LIKE $1 || '\\_%'", schema
        ):
            await conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
    finally:
        await conn.close()


@pytest.fixture
def as_principal(test_env: dict[str, str], passwords: dict[str, str]):  # type: ignore[no-untyped-def]
    """The variables of one process logged in as `user` (its own password unless given), with its
    own database schema as in production: one outbox per service, published by its own principal."""

    def env(user: str, password: str | None = None, **extra: str) -> dict[str, str]:
        secret = passwords[user] if password is None else password
        schema = f"{test_env['DATABASE_SCHEMA']}_{user.replace('-', '_')}"
        return {
            **test_env,
            "DATABASE_SCHEMA": schema,
            "SASL_USERNAME": user,
            "SASL_PASSWORD": secret,
            **extra,
        }

    return env


@pytest.fixture
def kafka(as_principal) -> KafkaSettings:  # type: ignore[no-untyped-def]
    """The tests' own reads and writes, as the administrator (a super user)."""
    return KafkaSettings.from_env(as_principal("admin"), client_id="tests")

"""The console's settings, read from the environment in one place (the only reader of it).

CONSOLE_PORT (3006) and HOST; DATABASE_URL, with DATABASE_SCHEMA when every service shares one
schema (tests), else each service's own (`customers`, `orders`, `security`, `notifications`) and
the console's (`console`); Kafka as every service (BOOTSTRAP_SERVERS, KAFKA_TOPIC_PREFIX, ...);
CONSUMER_GROUP, DEAD_LETTER_TOPIC and NOTIFICATIONS_TENANT as the worker's (the notifications
of other tenants, in the same table, are not shown or retried); WORKER_URLS (comma separated, the workers'
/health and /metrics; default http://127.0.0.1:3005); SECURITY_URL (sign-in, default
http://127.0.0.1:3004); NOTIFICATIONS_URL (the materialized tables, default
http://127.0.0.1:3003); JWT_PUBLIC_KEY_FILE and the other token settings as every service;
CONSOLE_COOKIE_SECURE (1 behind HTTPS).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from kafka_integration import KafkaSettings
from servicekit.auth import AuthSettings
from servicekit.config import env_bool, env_int, env_str
from servicekit.db import DatabaseSettings
from servicekit.settings import HttpSettings

SERVICES = ("customers", "orders", "security", "notifications")


@dataclass(frozen=True)
class OperationsSettings:
    """Where the system's data is: the database schemas per service, the worker's consumer group
    and dead-letter topic (logical name)."""

    db: DatabaseSettings  # the console's own schema (its record of actions)
    kafka: KafkaSettings
    schemas: dict[str, str] = field(default_factory=dict)  # service -> schema
    group_id: str = "notifications"
    dead_letter_topic: str = "notifications_dead_letters"
    tenant: str = "default"  # the notifications this system's workers send (NOTIFICATIONS_TENANT)

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> OperationsSettings:
        return cls(
            db=DatabaseSettings.from_env(environ, schema="console"),
            kafka=KafkaSettings.from_env(environ, client_id="console"),
            schemas={s: DatabaseSettings.from_env(environ, schema=s).schema for s in SERVICES},
            group_id=env_str(environ, "CONSUMER_GROUP", "notifications"),
            dead_letter_topic=env_str(environ, "DEAD_LETTER_TOPIC", "notifications_dead_letters"),
            tenant=env_str(environ, "NOTIFICATIONS_TENANT", "default"),
        )


@dataclass(frozen=True)
class Config:
    """The console's settings: operations, HTTP, token checks, where to sign in and the workers."""

    ops: OperationsSettings
    http: HttpSettings
    auth: AuthSettings
    security_url: str = "http://127.0.0.1:3004"
    notifications_url: str = "http://127.0.0.1:3003"
    worker_urls: tuple[str, ...] = ("http://127.0.0.1:3005",)
    cookie_secure: bool = False

    @property
    def kafka(self) -> KafkaSettings:
        return self.ops.kafka

    @property
    def db(self) -> DatabaseSettings:
        return self.ops.db

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Config:
        return cls(
            ops=OperationsSettings.from_env(environ),
            http=HttpSettings(
                host=env_str(environ, "HOST", "127.0.0.1"), port=env_int(environ, "CONSOLE_PORT", 3006)
            ),
            auth=AuthSettings.from_env(environ),
            security_url=env_str(environ, "SECURITY_URL", "http://127.0.0.1:3004").rstrip("/"),
            notifications_url=env_str(environ, "NOTIFICATIONS_URL", "http://127.0.0.1:3003").rstrip("/"),
            worker_urls=tuple(
                u.strip().rstrip("/")
                for u in env_str(environ, "WORKER_URLS", "http://127.0.0.1:3005").split(",")
                if u.strip()
            ),
            cookie_secure=env_bool(environ, "CONSOLE_COOKIE_SECURE", False),
        )

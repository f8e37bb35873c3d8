"""What every service's frozen Config holds: where it listens, its database schema, Kafka, and
the key that checks tokens. A service's Config extends it with its own settings:

    @dataclass(frozen=True)
    class Config(ServiceConfig):
        parties: PartiesSettings

        @classmethod
        def from_env(cls, environ: Mapping[str, str] = os.environ) -> Config:
            return cls(**cls.common(environ, name="orders", port=3002), parties=...)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kafka_integration import KafkaSettings
from servicekit.auth import AuthSettings
from servicekit.config import env_float, env_int, env_str
from servicekit.db import DatabaseSettings


@dataclass(frozen=True)
class HttpSettings:
    """Where a service listens and how long a request waits for its events to reach Kafka."""

    host: str = "127.0.0.1"
    port: int = 8080
    delivery_timeout: float = 2.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str], default_port: int) -> HttpSettings:
        return cls(
            host=env_str(environ, "HOST", "127.0.0.1"),
            port=env_int(environ, "PORT", default_port),
            delivery_timeout=env_float(environ, "EVENT_DELIVERY_TIMEOUT", 2.0),
        )


@dataclass(frozen=True)
class ServiceConfig:
    http: HttpSettings
    db: DatabaseSettings
    kafka: KafkaSettings
    auth: AuthSettings

    @staticmethod
    def common(
        environ: Mapping[str, str], *, name: str, port: int, auth: AuthSettings | None = None
    ) -> dict[str, Any]:
        """The shared settings of the service `name` (its schema, Kafka client id and default
        port); `auth` when the service finds its key another way (security derives it)."""
        return {
            "http": HttpSettings.from_env(environ, default_port=port),
            "db": DatabaseSettings.from_env(environ, schema=name),
            "kafka": KafkaSettings.from_env(environ, client_id=name),
            "auth": auth if auth is not None else AuthSettings.from_env(environ),
        }

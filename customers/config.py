"""The customers service's settings, read from the environment in one place."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from kafka_integration import KafkaSettings
from servicekit.app import HttpSettings
from servicekit.auth import AuthSettings
from servicekit.db import DatabaseSettings


@dataclass(frozen=True)
class Config:
    http: HttpSettings
    db: DatabaseSettings
    kafka: KafkaSettings
    auth: AuthSettings

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Config:
        return cls(
            http=HttpSettings.from_env(environ, default_port=3001),
            db=DatabaseSettings.from_env(environ, schema="customers"),
            kafka=KafkaSettings.from_env(environ, client_id="customers"),
            auth=AuthSettings.from_env(environ),
        )

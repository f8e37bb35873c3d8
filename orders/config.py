"""The orders service's settings, read from the environment in one place."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from servicekit.config import env_bool, env_float
from servicekit.settings import ServiceConfig


@dataclass(frozen=True)
class PartiesSettings:
    """ORDERS_REQUIRE_KNOWN_PARTIES (default true): refuse an order whose organization or customer
    this service has not seen on the `organizations`/`customers` topics; KNOWN_PARTIES_WAIT_SECONDS:
    how long an unknown id waits for those topics to be read to their end before the answer;
    KNOWN_PARTIES_FRESH_SECONDS: how long a known id waits for the same (to see a deletion) before
    it is accepted on what the view holds."""

    required: bool = True
    wait_seconds: float = 5.0
    fresh_seconds: float = 1.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> PartiesSettings:
        return cls(
            required=env_bool(environ, "ORDERS_REQUIRE_KNOWN_PARTIES", True),
            wait_seconds=env_float(environ, "KNOWN_PARTIES_WAIT_SECONDS", 5.0),
            fresh_seconds=env_float(environ, "KNOWN_PARTIES_FRESH_SECONDS", 1.0),
        )


@dataclass(frozen=True)
class Config(ServiceConfig):
    parties: PartiesSettings

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Config:
        return cls(**cls.common(environ, name="orders", port=3002), parties=PartiesSettings.from_env(environ))

"""The customers service's settings, read from the environment in one place."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from servicekit.settings import ServiceConfig


@dataclass(frozen=True)
class Config(ServiceConfig):
    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Config:
        return cls(**cls.common(environ, name="customers", port=3001))

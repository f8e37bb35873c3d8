"""Reading the environment: the typed helpers each service's frozen Config uses. They live in
`kafka_integration.env` (the lower layer needs them too) and are re-exported here."""

from __future__ import annotations

from kafka_integration.env import Secret, env_bool, env_float, env_int, env_str

__all__ = ["Secret", "env_bool", "env_float", "env_int", "env_str"]

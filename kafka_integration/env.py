"""Reading the environment: small typed helpers for frozen settings objects, and a `Secret` that
hides its value from repr and logs. The base of both kafka_integration's settings and each
service's Config (servicekit.config re-exports them)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Secret:
    """A value hidden from repr and logs; `.reveal()` gives it."""

    _value: str

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')" if self._value else "Secret('')"

    __str__ = __repr__

    def __bool__(self) -> bool:
        return bool(self._value)


def _shown(raw: str) -> str:
    """A bad value as an error message quotes it: escaped, and cut short if it is long."""
    return repr(raw) if len(raw) <= 40 else f"{raw[:40]!r}... ({len(raw)} characters)"


def env_str(environ: Mapping[str, str], name: str, default: str = "") -> str:
    value = environ.get(name, "").strip()
    return value if value else default


def env_int(environ: Mapping[str, str], name: str, default: int) -> int:
    raw = env_str(environ, name)
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ValueError(f"{name} must be an integer, got {_shown(raw)}") from exc


def env_float(environ: Mapping[str, str], name: str, default: float) -> float:
    raw = env_str(environ, name)
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise ValueError(f"{name} must be a number, got {_shown(raw)}") from exc


def env_bool(environ: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env_str(environ, name).lower()
    if not raw:
        return default
    if raw in {"1", "true", "yes", "on"}:
        return True
    if raw in {"0", "false", "no", "off"}:
        return False
    raise ValueError(f"{name} must be a boolean, got {_shown(raw)}")

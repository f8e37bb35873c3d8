"""Plumbing the four services share: configuration, database, HTTP errors, OpenAPI, running."""

from __future__ import annotations

from servicekit.config import Secret, env_float, env_int, env_str
from servicekit.errors import (
    BadRequest,
    Conflict,
    FieldProblem,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    ServiceError,
    Unauthorized,
    ValidationFailed,
)

__all__ = [
    "BadRequest",
    "Conflict",
    "FieldProblem",
    "Forbidden",
    "NotFound",
    "PayloadTooLarge",
    "Secret",
    "ServiceError",
    "Unauthorized",
    "ValidationFailed",
    "env_float",
    "env_int",
    "env_str",
]

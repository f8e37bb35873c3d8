"""What each security-service write emits.

- `users`: the user row without its password hash (id, email, admin, created_at, updated_at)
  plus `action`, keyed by id.
- `grants`: the grant row (id, user_id, organization_id, role, created_at, updated_at) plus
  `action`, keyed by id.
- `revocations` (compacted, read whole by every service, see servicekit.auth):
  `jti:<jti>` {"kind": "token", "jti", "exp", "action": "created"} revokes one token (logout);
  `user:<id>` {"kind": "user", "user_id", "not_before", "action": "created"} revokes every token of
  that user issued before `not_before` (grants, password, email or admin changed; user deleted).
  A `jti:` revocation is tombstoned once its token has expired (security.housekeeping).
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from typing import Any

from kafka_integration import Event, TopicSpec, entity_events
from servicekit.auth import REVOCATIONS_TOPIC

TOPICS = [TopicSpec("users"), TopicSpec("grants")]  # service_app adds REVOCATIONS_TOPIC

PUBLIC_USER_FIELDS = ("id", "email", "admin", "created_at", "updated_at")


def public_user(row: Mapping[str, Any]) -> dict[str, Any]:
    """The part of a user row that may leave the service: never the hash."""
    return {k: row[k] for k in PUBLIC_USER_FIELDS}


def user(action: str, row: Mapping[str, Any]) -> list[Event]:
    return entity_events("users", "user", action, public_user(row))


def grant(action: str, row: Mapping[str, Any]) -> list[Event]:
    return entity_events("grants", "grant", action, row)


def token_revoked(jti: str, exp: int) -> Event:
    return Event(
        topic=REVOCATIONS_TOPIC.name,
        key=f"jti:{jti}",
        value={"kind": "token", "jti": jti, "exp": exp, "action": "created"},
        type="token_revoked",
    )


def token_revocation_expired(jti: str) -> Event:
    """The tombstone of `jti:<jti>` once its token has expired: no one can present it any more."""
    return Event(topic=REVOCATIONS_TOPIC.name, key=f"jti:{jti}", value=None, type="token_revocation_expired")


def cut_off() -> int:
    """The `not_before` of a user revocation made now: the next whole second, so every token
    issued up to now (iat has whole seconds) is before it; new tokens get iat >= it."""
    return math.floor(time.time()) + 1


def user_revoked(user_id: int, not_before: int) -> Event:
    return Event(
        topic=REVOCATIONS_TOPIC.name,
        key=f"user:{user_id}",
        value={"kind": "user", "user_id": user_id, "not_before": not_before, "action": "created"},
        type="user_tokens_revoked",
    )

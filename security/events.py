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
- `api_keys` (compacted, read whole by the services that accept keys, see servicekit.apikeys):
  the key with its secret's SHA-256 and its user's email, admin flag and grants, keyed by the
  key id; published again when the user changes, tombstoned when the key is revoked, its user
  deleted or the user's password changed.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from typing import Any

from kafka_integration import Event, TopicSpec, entity_events
from servicekit.apikeys import API_KEYS_TOPIC
from servicekit.auth import REVOCATIONS_TOPIC

TOPICS = [TopicSpec("users"), TopicSpec("grants"), API_KEYS_TOPIC]  # service_app adds REVOCATIONS_TOPIC

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


def api_key(key: Mapping[str, Any], user: Mapping[str, Any], orgs: Mapping[int, str]) -> Event:
    """A key in force, with what it may do: its user's email, admin flag and grants now."""
    return Event(
        topic=API_KEYS_TOPIC.name,
        key=str(key["key"]),
        value={
            "kind": "api_key",
            "id": key["id"],
            "key": key["key"],
            "user_id": user["id"],
            "email": user["email"],
            "admin": bool(user["admin"]),
            "orgs": {str(org): role for org, role in sorted(orgs.items())},
            "secret_sha256": key["secret_sha256"],
            "action": "created",
        },
        type="api_key_published",
    )


def api_key_revoked(key: str) -> Event:
    """The tombstone of a key: every service that reads the topic stops accepting it."""
    return Event(topic=API_KEYS_TOPIC.name, key=key, value=None, type="api_key_revoked")

"""API keys, as ksqlDB and Confluent Cloud clients send them: `Authorization: Basic
base64(key:secret)`, checked by a service itself with no call to the security service.

The security service issues a key to a user (`security.db.create_api_key`): a public key id and
a secret of 256 random bits, shown once. It stores only the secret's SHA-256 (a fast hash is
enough for a random secret of that size: there is no dictionary to try; argon2 would cost 64 MiB
per request) and publishes on the compacted `api_keys` topic, keyed by the key id:

    {"kind": "api_key", "id", "key", "user_id", "email", "admin", "orgs": {"<org id>": role},
     "secret_sha256", "action"}

The user's email, admin flag and grants ride along and are published again, for each of the
user's keys, whenever they change (a key acts with its user's grants of the moment); revoking a
key, or deleting its user, tombstones it. A service that accepts keys (`service_app(api_keys=True)`)
reads the topic whole (`kafka_integration.TopicView`): a revocation takes effect once the view has
read the tombstone, milliseconds after the security service answers. Until the view has read the
topic to its end once, a request with a key gets 503 (fail closed), as with the revocations.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from kafka_integration import KafkaSettings, TopicSpec, TopicView
from servicekit.auth import BASIC_AUTH, NOT_READY_RETRY_AFTER, Principal
from servicekit.errors import Unauthorized, Unavailable

API_KEYS_TOPIC = TopicSpec("api_keys")
KEY_PREFIX = "KR"  # "kafka-rails": tells a key from other Basic user names at a glance
_NEVER = datetime.max.replace(tzinfo=UTC)
_NO_HASH = "0" * 64  # no secret hashes to it (the digest of a record with none)


def new_key() -> tuple[str, str]:
    """A fresh (key id, secret): the id 16 characters of base32 after the prefix, the secret 43
    URL-safe characters (256 bits); neither holds a ':' (Basic's separator)."""
    key = KEY_PREFIX + base64.b32encode(secrets.token_bytes(10)).decode()[:16]
    return key, secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def basic_credentials(header: str) -> tuple[str, str]:
    """The (key, secret) of an `Authorization: Basic ...` header, or Unauthorized saying why not."""
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic" or not encoded.strip():
        raise Unauthorized("an Authorization: Basic <base64 key:secret> header is required")
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        raise Unauthorized("the Basic credentials are not base64 of UTF-8 key:secret") from None
    key, colon, secret = decoded.partition(":")
    if not colon or not key or not secret:
        raise Unauthorized("the Basic credentials must be key:secret, both non-empty")
    return key, secret


class ApiKeys:
    """The API keys in force, by key id, fed by the `api_keys` topic."""

    def __init__(self, view: TopicView) -> None:
        self.view = view

    @property
    def ready(self) -> bool:
        return self.view.ready.is_set()

    def authenticate(self, header: str) -> Principal:
        """servicekit.auth.BasicChecker: the principal of an `Authorization: Basic` header."""
        return self.check(*basic_credentials(header))

    def check(self, key: str, secret: str) -> Principal:
        """The principal a key and secret stand for (its user, with the user's grants), or
        Unauthorized (unknown or revoked key, wrong secret, a record the security service would
        not write: the same answer, after the same work)."""
        if not self.ready:
            raise Unavailable(
                "the service has not read the API keys yet; try again shortly", NOT_READY_RETRY_AFTER
            )
        record = self.view.get(key) if len(key) <= 64 else None
        expected = record.get("secret_sha256") if record is not None else None
        if not isinstance(expected, str) or not expected.isascii():
            expected = _NO_HASH  # compared all the same: an unknown key costs what a known one does
        matches = hmac.compare_digest(expected.encode(), hash_secret(secret).encode())
        if record is None or not matches or record.get("key") != key:
            raise Unauthorized("unknown API key or wrong secret")
        return _principal(record)


def _principal(record: dict[str, Any]) -> Principal:
    """The record's principal, its fields as the security service writes them (an `admin` that
    is not a boolean, `orgs` that is not an object, is a record it did not write)."""
    user_id, admin, orgs = record.get("user_id"), record.get("admin"), record.get("orgs")
    if type(user_id) is not int or not isinstance(admin, bool) or not isinstance(orgs, dict):
        raise Unauthorized("unknown API key or wrong secret")
    try:
        return Principal(
            user_id=user_id,
            email=str(record.get("email", "")),
            admin=admin,
            orgs={int(org): str(role) for org, role in orgs.items()},
            token_id=f"key:{record['key']}",
            issued_at=0,
            expires_at=_NEVER,
        )
    except (KeyError, TypeError, ValueError):
        raise Unauthorized("unknown API key or wrong secret") from None


def api_keys_context(kafka: KafkaSettings) -> Callable[[web.Application], AsyncIterator[None]]:
    """cleanup_ctx step: read the `api_keys` topic in the background for the app's lifetime."""

    async def api_keys(app: web.Application) -> AsyncIterator[None]:
        view = TopicView(kafka, API_KEYS_TOPIC.name)
        app[BASIC_AUTH] = ApiKeys(view)
        await view.start()
        yield
        await view.stop()

    return api_keys

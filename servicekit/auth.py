"""Token checks every service does itself, with no call to the security service per request.

The security service signs tokens (JWT, EdDSA/Ed25519) with its private key; the other services
are given the public key (`JWT_PUBLIC_KEY_FILE`, or the PEM text in `JWT_PUBLIC_KEY`). Claims:

    iss "security", aud "kafka-rails", sub "<user id>", email, admin (bool),
    orgs {"<organization id>": "member" | "viewer"}, iat, exp, jti

A member reads and writes an organization's data, a viewer reads it, an admin does everything.
Revocations come from the compacted `revocations` topic, read whole by every service
(`kafka_integration.TopicView`): `jti:<id>` revokes one token (logout), `user:<id>` with
`not_before` revokes every token of that user issued before then (grants or password changed,
user deleted). A revocation takes effect when the view has read it: milliseconds after the
security service answers, not before.

Fail closed: until the view has read the topic to its end once (Kafka may be down when the
service starts), a request that needs a token gets 503 with Retry-After, never an answer made
with an incomplete list; /health says "starting". `jti:` entries whose token has expired are
dropped from memory (the security service also tombstones them on the topic).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import jwt
from aiohttp import web
from aiohttp.typedefs import Middleware

from kafka_integration import KafkaSettings, TopicSpec, TopicView
from servicekit.config import env_str
from servicekit.errors import Forbidden, Unauthorized, Unavailable
from servicekit.http import Handler

log = logging.getLogger(__name__)

ISSUER = "security"
AUDIENCE = "kafka-rails"
ALGORITHM = "EdDSA"
ROLES = ("member", "viewer")
REVOCATIONS_TOPIC = TopicSpec("revocations")
PUBLIC_PATHS = frozenset({"/health", "/openapi.json", "/metrics"})
EXPIRY_MARGIN_SECONDS = 60  # a token is forgotten this long after its exp (beyond any leeway)
PRUNE_INTERVAL_SECONDS = 60.0
NOT_READY_RETRY_AFTER = 2
# A token in the one spelling the security service writes (three unpadded base64url segments) and
# of a bounded length: the only kind VerifiedTokens keeps. Decoders accept other spellings of the
# same token ('=' padding; PyJWT before 2.14 also skipped characters outside the alphabet), so a
# client holding one valid token could otherwise fill the cache with copies of it.
_CACHEABLE = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
MAX_CACHED_TOKEN_CHARS = 2048


class AuthConfigError(RuntimeError):
    """The verifying key is missing or unreadable."""


@dataclass(frozen=True)
class AuthSettings:
    """The public key tokens are verified with, and the clock leeway."""

    public_key: str = field(repr=False)
    leeway_seconds: int = 5

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> AuthSettings:
        inline = env_str(environ, "JWT_PUBLIC_KEY")
        path = env_str(environ, "JWT_PUBLIC_KEY_FILE")
        if inline:
            return cls(public_key=inline)
        if path:
            try:
                return cls(public_key=Path(path).read_text())
            except OSError as exc:
                raise AuthConfigError(f"JWT_PUBLIC_KEY_FILE={path}: {exc}") from exc
        raise AuthConfigError(
            "set JWT_PUBLIC_KEY_FILE (or JWT_PUBLIC_KEY) to the security service's public key"
        )


@dataclass(frozen=True)
class Principal:
    """Who a valid token speaks for, and what they may see."""

    user_id: int
    email: str
    admin: bool
    orgs: Mapping[int, str]
    token_id: str
    issued_at: int
    expires_at: datetime

    def can_read(self, organization_id: int) -> bool:
        return self.admin or organization_id in self.orgs

    def can_write(self, organization_id: int) -> bool:
        return self.admin or self.orgs.get(organization_id) == "member"

    def require_admin(self) -> None:
        if not self.admin:
            raise Forbidden("this needs an administrator")

    def require_read(self, organization_id: int) -> None:
        if not self.can_read(organization_id):
            raise Forbidden(f"no access to organization {organization_id}")

    def require_write(self, organization_id: int) -> None:
        if not self.can_write(organization_id):
            raise Forbidden(f"no write access to organization {organization_id}")

    def readable(self) -> list[int] | None:
        """The organizations this principal may read; None means all (admin)."""
        return None if self.admin else sorted(self.orgs)


class Revocations:
    """Revoked token ids and per-user cut-off times, fed by the `revocations` topic. `loaded` is
    set once the topic has been read to its end (until then no token may be trusted)."""

    def __init__(self, loaded: asyncio.Event | None = None) -> None:
        self.tokens: dict[str, int] = {}
        self.users: dict[int, int] = {}
        self.loaded = loaded if loaded is not None else asyncio.Event()

    @property
    def ready(self) -> bool:
        return self.loaded.is_set()

    def prune(self, now: float | None = None) -> int:
        """Forget revoked tokens that expired more than EXPIRY_MARGIN_SECONDS ago (no one can
        present them any more); the number forgotten."""
        limit = (time.time() if now is None else now) - EXPIRY_MARGIN_SECONDS
        expired = [jti for jti, exp in self.tokens.items() if exp < limit]
        for jti in expired:
            del self.tokens[jti]
        return len(expired)

    def on_change(self, key: str, value: dict[str, Any] | None) -> None:
        kind, _, ident = key.partition(":")
        if kind == "jti":
            exp = int(value.get("exp") or 0) if value is not None else 0
            if value is None or exp < time.time() - EXPIRY_MARGIN_SECONDS:  # gone, or long expired
                self.tokens.pop(ident, None)
            else:
                self.tokens[ident] = exp
        elif kind == "user" and ident.isdigit():
            if value is None:
                self.users.pop(int(ident), None)
            else:
                self.users[int(ident)] = int(value.get("not_before") or 0)

    def is_revoked(self, principal: Principal) -> bool:
        if principal.token_id in self.tokens:
            return True
        return principal.issued_at < self.users.get(principal.user_id, 0)


def verify(settings: AuthSettings, token: str) -> Principal:
    """The principal of a token, or Unauthorized saying why not (forged, expired, malformed)."""
    try:
        claims = jwt.decode(
            token,
            settings.public_key,
            algorithms=[ALGORITHM],
            audience=AUDIENCE,
            issuer=ISSUER,
            leeway=settings.leeway_seconds,
            options={"require": ["exp", "iat", "sub", "jti", "iss", "aud"]},
        )
    except jwt.ExpiredSignatureError as exc:
        raise Unauthorized("the token has expired") from exc
    except jwt.InvalidTokenError as exc:
        raise Unauthorized(f"the token is not valid: {exc}") from exc
    try:
        orgs = {int(org): str(role) for org, role in dict(claims.get("orgs") or {}).items()}
        return Principal(
            user_id=int(claims["sub"]),
            email=str(claims.get("email", "")),
            admin=claims.get("admin", False) is True,  # only JSON true: "false" or 1 is not admin
            orgs=orgs,
            token_id=str(claims["jti"]),
            issued_at=int(claims["iat"]),
            expires_at=datetime.fromtimestamp(int(claims["exp"]), UTC),
        )
    except (TypeError, ValueError) as exc:
        raise Unauthorized("the token's claims are malformed") from exc


class VerifiedTokens:
    """Tokens already verified, with their principal: a client that sends the same token again
    is not verified again (an Ed25519 signature check and the claims' decoding were a tenth of
    the orders service's CPU per order). Only verified tokens are kept, by their exact text, at
    most `size` (the oldest goes first); expiry is checked again at each use, and revocations
    are the caller's to check every time, as before. A token in another spelling than the
    issuer's, or longer than MAX_CACHED_TOKEN_CHARS, is verified every time and never kept: a
    client cannot fill the cache with spellings of one token, and its memory is bounded."""

    def __init__(self, settings: AuthSettings, size: int = 4096) -> None:
        self.settings = settings
        self.size = size
        self._known: dict[str, Principal] = {}

    def principal(self, token: str) -> Principal:
        """As `verify`: the principal, or Unauthorized saying why not."""
        who = self._known.get(token)
        if who is not None:
            if time.time() < who.expires_at.timestamp() + self.settings.leeway_seconds:
                return who
            del self._known[token]
            raise Unauthorized("the token has expired")
        who = verify(self.settings, token)
        if len(token) > MAX_CACHED_TOKEN_CHARS or _CACHEABLE.fullmatch(token) is None:
            return who
        if len(self._known) >= self.size:
            del self._known[next(iter(self._known))]
        self._known[token] = who
        return who


def bearer_token(request: web.Request) -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("an Authorization: Bearer <token> header is required")
    return token.strip()


class BasicChecker(Protocol):
    """What checks `Authorization: Basic` credentials where a service accepts them
    (servicekit.apikeys.ApiKeys)."""

    @property
    def ready(self) -> bool:
        """Whether it has read what it checks against once (until then: 503, fail closed)."""
        ...

    def authenticate(self, header: str) -> Principal:
        """The principal of a whole `Basic ...` header value, or Unauthorized/Unavailable."""
        ...


PRINCIPAL = web.RequestKey("servicekit.principal", Principal)
REVOCATIONS = web.AppKey("servicekit.revocations", Revocations)
BASIC_AUTH = web.AppKey("servicekit.basic_auth", BasicChecker)


def principal(request: web.Request) -> Principal:
    """The checked principal of this request (set by the auth middleware)."""
    try:
        return request[PRINCIPAL]
    except KeyError:
        raise Unauthorized("an Authorization: Bearer <token> header is required") from None


def auth_middleware(settings: AuthSettings, public_paths: frozenset[str] = PUBLIC_PATHS) -> Middleware:
    tokens = VerifiedTokens(settings)

    @web.middleware
    async def check_token(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path in public_paths:
            return await handler(request)
        if request.match_info.http_exception is not None:  # unknown route or method: no data to guard
            return await handler(request)
        if (public := getattr(request.match_info.handler, "public", False)) and public:
            return await handler(request)
        header = request.headers.get("Authorization", "")
        basic = request.app.get(BASIC_AUTH)
        if basic is not None and header[:6].lower() == "basic ":
            request[PRINCIPAL] = basic.authenticate(header)
            return await handler(request)
        who = tokens.principal(bearer_token(request))
        revocations = request.app[REVOCATIONS]
        if not revocations.ready:
            raise Unavailable(
                "the service has not read the token revocations yet; try again shortly",
                NOT_READY_RETRY_AFTER,
            )
        if revocations.is_revoked(who):
            raise Unauthorized("the token has been revoked")
        request[PRINCIPAL] = who
        return await handler(request)

    return check_token


def public(handler: Handler) -> Handler:
    """Mark a handler that needs no token (e.g. the security service's login)."""
    handler.public = True  # type: ignore[attr-defined]
    return handler


def revocations_context(kafka: KafkaSettings) -> Callable[[web.Application], AsyncIterator[None]]:
    """cleanup_ctx step: read the `revocations` topic in the background for the app's lifetime,
    and forget expired tokens' entries now and then."""

    async def revocations(app: web.Application) -> AsyncIterator[None]:
        state = Revocations()
        view = TopicView(kafka, REVOCATIONS_TOPIC.name, on_change=state.on_change)
        state.loaded = view.ready
        app[REVOCATIONS] = state
        await view.start()

        async def prune() -> None:
            while True:
                await asyncio.sleep(PRUNE_INTERVAL_SECONDS)
                if dropped := state.prune():
                    log.info("revocations: forgot %d expired tokens", dropped)

        pruning = asyncio.create_task(prune(), name="revocations-prune")
        yield
        pruning.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await pruning
        await view.stop()

    return revocations

"""The security service's application state, behind typed keys."""

from __future__ import annotations

from aiohttp import web

from security.attempts import AttemptLocks
from security.config import LoginPolicy
from security.passwords import Hasher
from security.tokens import TokenIssuer

ISSUER = web.AppKey("security.issuer", TokenIssuer)
LOGIN_POLICY = web.AppKey("security.login_policy", LoginPolicy)
HASHER = web.AppKey("security.hasher", Hasher)
LOGIN_ATTEMPTS = web.AppKey("security.login_attempts", AttemptLocks)

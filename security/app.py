"""create_app: the security service's application."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from security import db, events, passwords
from security.attempts import AttemptLocks
from security.config import Config
from security.housekeeping import housekeeping_context
from security.keys import HASHER, ISSUER, LOGIN_ATTEMPTS, LOGIN_POLICY
from security.tokens import TokenIssuer
from security.views import routes
from servicekit.app import DB_POOL, service_app

log = logging.getLogger(__name__)


def create_app(config: Config) -> web.Application:
    app = service_app(config, title="security", topics=events.TOPICS, routes=routes)
    app[ISSUER] = TokenIssuer.from_pem(config.tokens.private_key.reveal(), config.tokens.ttl_seconds)
    app[LOGIN_POLICY] = config.login
    app[LOGIN_ATTEMPTS] = AttemptLocks()
    hasher = app[HASHER] = passwords.Hasher(config.login.hash_concurrency)

    async def first_admin(app: web.Application) -> AsyncIterator[None]:
        """With no user at all and ADMIN_EMAIL/ADMIN_PASSWORD set, create that administrator."""
        await asyncio.to_thread(passwords.warm_up)
        if config.admin_email and config.admin_password:
            password_hash = await hasher.hash(config.admin_password.reveal())
            row = await db.bootstrap_admin(app[DB_POOL], config.admin_email, password_hash)
            if row is not None:
                log.info("security: created the first administrator (user %s)", row["id"])
            else:  # say so: a changed ADMIN_PASSWORD changes nothing once users exist
                log.info("security: users exist already; ADMIN_EMAIL/ADMIN_PASSWORD are not used")
        yield

    app.cleanup_ctx.append(first_admin)
    app.cleanup_ctx.append(housekeeping_context(config.login))
    return app

"""HTTP handlers of the security service: check access, parse, call db, answer.

Access: `/login` needs no token (failures slow down per email and client address, see
security.config.LoginPolicy); `/logout` any valid token. Users and grants are the
administrators' business, except that a user may read and change their own record (but not
make themselves an administrator).
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
from typing import Any

from aiohttp import web

from security import db
from security.keys import HASHER, ISSUER, LOGIN_ATTEMPTS, LOGIN_POLICY
from security.models import (
    ApiKey,
    ApiKeyBody,
    Grant,
    GrantBody,
    LoginAnswer,
    LoginBody,
    NewApiKey,
    User,
    UserBody,
    UserUpdateBody,
)
from servicekit.apikeys import hash_secret, new_key
from servicekit.app import DB_POOL
from servicekit.auth import principal
from servicekit.errors import Forbidden, TooManyRequests, Unauthorized
from servicekit.http import json_response, path_id
from servicekit.pages import PageQuery, page_response
from servicekit.routes import Routes

log = logging.getLogger(__name__)
routes = Routes()


def _own_user_id(request: web.Request) -> int:
    """The user of the path (`/users/{id}...`), once the caller may act for them: an
    administrator, or that user themselves (404 for a malformed id, 403 for another's)."""
    user_id = path_id(request)
    who = principal(request)
    if not who.admin and who.user_id != user_id:
        raise Forbidden("this needs an administrator, or the user themselves")
    return user_id


# tokens


def client_address(request: web.Request, trust_forwarded_for: bool) -> str:
    """Who is calling, for counting failed logins: the connection's peer; behind a proxy that
    says so (LOGIN_TRUST_FORWARDED_FOR), the last address of X-Forwarded-For, the one that proxy
    added (the earlier ones are whatever the client wrote)."""
    if trust_forwarded_for:
        forwarded = request.headers.get("X-Forwarded-For", "").rsplit(",", 1)[-1].strip()
        with contextlib.suppress(ValueError):
            return str(ipaddress.ip_address(forwarded))
    return request.remote or "unknown"


@routes.post(
    "/login",
    "a token for an email and password",
    body=LoginBody,
    answer=LoginAnswer,
    status=201,
    public=True,
    errors=(401, 429),
    tag="tokens",
    example={"email": "admin@example.com", "password": "the password"},
)
async def login(request: web.Request, body: LoginBody) -> web.Response:
    """One attempt of a pair at a time: may it try, check the password with no connection held,
    then count the failure or forget the failures."""
    policy, pool = request.app[LOGIN_POLICY], request.app[DB_POOL]
    address = client_address(request, policy.trust_forwarded_for)
    async with request.app[LOGIN_ATTEMPTS].one_at_a_time(body.email, address):
        try:
            user = await db.login_allowed(pool, body.email, address, policy)
        except TooManyRequests as exc:
            log.warning("login refused: too many failures from %s (retry in %ss)", address, exc.retry_after)
            raise
        stored = user["password_hash"] if user is not None else None  # None: a dummy hash, same cost
        if not await request.app[HASHER].verify(stored, body.password) or user is None:
            failures = await db.record_login_failure(pool, body.email, address, policy)
            log.info("failed login from %s (%s failures of that email there)", address, failures)
            raise Unauthorized(db.WRONG_CREDENTIALS)
        found, orgs, not_before = await db.finish_login(
            pool, body.email, address, user["id"], user["password_hash"]
        )
    issued = await request.app[ISSUER].issue(found, orgs, not_before)
    log.info("user %s logged in (token %s)", found["id"], issued.jti)
    return json_response({"jwt": issued.token, "expires_at": issued.expires_at}, status=201)


@routes.post("/logout", "revoke the token presented", status=204, tag="tokens")
async def logout(request: web.Request) -> web.Response:
    who = principal(request)
    await db.revoke_token(request.app[DB_POOL], who.token_id, int(who.expires_at.timestamp()))
    log.info("user %s logged out (token %s revoked)", who.user_id, who.token_id)
    return web.Response(status=204)


# users


@routes.post("/users", "create a user (admin)", body=UserBody, answer=User, status=201)
async def create_user(request: web.Request, body: UserBody) -> web.Response:
    principal(request).require_admin()
    fields = body.user
    row = await db.create_user(
        request.app[DB_POOL], fields.email, await request.app[HASHER].hash(fields.password), fields.admin
    )
    return json_response(row, status=201)


@routes.get("/users", "list users (admin)", query=PageQuery, answer=User, paged=True)
async def list_users(request: web.Request, query: PageQuery) -> web.Response:
    principal(request).require_admin()
    rows = await db.list_users(request.app[DB_POOL], query.after, query.limit)
    return page_response(request, rows, query.limit)


@routes.get("/users/{id}", "one user (admin or themselves)", answer=User)
async def get_user(request: web.Request) -> web.Response:
    user_id = _own_user_id(request)
    return json_response(await db.get_user(request.app[DB_POOL], user_id))


@routes.put("/users/{id}", "change a user (admin or themselves)", body=UserUpdateBody, answer=User)
@routes.patch("/users/{id}", "change a user (admin or themselves)", body=UserUpdateBody, answer=User)
async def update_user(request: web.Request, body: UserUpdateBody) -> web.Response:
    user_id = _own_user_id(request)
    fields = body.user
    if not principal(request).admin and "admin" in fields.model_fields_set:
        raise Forbidden("only an administrator may change who is an administrator")
    changes: dict[str, Any] = {"email": fields.email, "admin": fields.admin}
    if fields.password is not None:
        changes["password_hash"] = await request.app[HASHER].hash(fields.password)
    return json_response(await db.update_user(request.app[DB_POOL], user_id, changes))


@routes.delete("/users/{id}", "delete a user (admin)", status=204)
async def delete_user(request: web.Request) -> web.Response:
    principal(request).require_admin()
    await db.delete_user(request.app[DB_POOL], path_id(request))
    return web.Response(status=204)


# grants


@routes.post(
    "/users/{id}/grants",
    "give a role in an organization (admin); 200 when the grant existed",
    body=GrantBody,
    answer=Grant,
    status=201,
    also=(200,),
    tag="grants",
)
async def create_grant(request: web.Request, body: GrantBody) -> web.Response:
    principal(request).require_admin()
    user_id = path_id(request)
    fields = body.grant
    row, created = await db.put_grant(request.app[DB_POOL], user_id, fields.organization_id, fields.role)
    return json_response(row, status=201 if created else 200)


@routes.get("/users/{id}/grants", "a user's grants (admin)", answer=Grant, paged=True, tag="grants")
async def list_grants(request: web.Request) -> web.Response:
    principal(request).require_admin()
    return page_response(request, await db.list_grants(request.app[DB_POOL], path_id(request)), 0)


@routes.delete("/users/{id}/grants/{organization_id}", "take a grant away (admin)", status=204, tag="grants")
async def delete_grant(request: web.Request) -> web.Response:
    principal(request).require_admin()
    await db.delete_grant(request.app[DB_POOL], path_id(request), path_id(request, "organization_id"))
    return web.Response(status=204)


# API keys: HTTP Basic key:secret for ksqlDB-style clients (servicekit.apikeys)


@routes.post(
    "/users/{id}/api_keys",
    "issue an API key to a user (admin or themselves); the secret is shown this once; 409 when"
    " the user has the most keys a user may have",
    body=ApiKeyBody,
    answer=NewApiKey,
    status=201,
    errors=(409,),
    tag="api_keys",
    example={"api_key": {"description": "reporting"}},
)
async def create_api_key(request: web.Request, body: ApiKeyBody) -> web.Response:
    user_id = _own_user_id(request)
    key, secret = new_key()
    row = await db.create_api_key(
        request.app[DB_POOL], user_id, key, hash_secret(secret), body.api_key.description
    )
    log.info("API key %s issued to user %s", key, user_id)
    return json_response({**row, "secret": secret}, status=201)


@routes.get(
    "/users/{id}/api_keys",
    "a user's API keys, without their secrets (admin or themselves)",
    query=PageQuery,
    answer=ApiKey,
    paged=True,
    tag="api_keys",
)
async def list_api_keys(request: web.Request, query: PageQuery) -> web.Response:
    user_id = _own_user_id(request)
    rows = await db.list_api_keys(request.app[DB_POOL], user_id, query.after, query.limit)
    return page_response(request, rows, query.limit)


@routes.delete(
    "/users/{id}/api_keys/{key_id}",
    "revoke an API key (admin or themselves): refused everywhere once the services read it",
    status=204,
    tag="api_keys",
)
async def revoke_api_key(request: web.Request) -> web.Response:
    user_id = _own_user_id(request)
    row = await db.revoke_api_key(request.app[DB_POOL], user_id, path_id(request, "key_id"))
    log.info("API key %s of user %s revoked", row["key"], user_id)
    return web.Response(status=204)

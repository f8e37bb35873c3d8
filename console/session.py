"""Signing in and CSRF.

- Sign in: the security service's `POST /login` with the operator's email and password; the
  token it answers is verified here (signature, audience, expiry) and must be an administrator's.
  It is kept in an HttpOnly, SameSite=Strict cookie (Secure with CONSOLE_COOKIE_SECURE), never
  shown to the page's scripts. Signing out revokes it at the security service; the console reads
  the revocations topic as every service does, so a revoked token is refused here too.
- CSRF: every response sets (once) a random `console_csrf` cookie; every form carries
  `HMAC(app secret, that cookie and the session cookie)`; every POST without the matching field,
  or with an Origin header naming another host than Host (or X-Forwarded-Host: a proxy in front
  passes one of them), is refused (403) before anything is done, sign-in included.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web

from console.config import Config
from console.errors import Unavailable
from console.keys import CONFIG, HTTP, SECRET
from servicekit.auth import REVOCATIONS, Principal, verify

SESSION_COOKIE = "console_session"
CSRF_COOKIE = "console_csrf"
CSRF_FIELD = "csrf"
PRINCIPAL = web.RequestKey("console.principal", Principal)
NEW_CSRF = web.RequestKey("console.new_csrf", str)
MAX_FORM_BYTES = 64 * 1024


class SignInRefused(Exception):
    """Wrong credentials, not an administrator, or the security service not answering."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def csrf_cookie(request: web.Request) -> str:
    value = request.cookies.get(CSRF_COOKIE, "")
    if len(value) != 43 or not value.isascii():
        value = request.get(NEW_CSRF) or secrets.token_urlsafe(32)
        request[NEW_CSRF] = value
    return value


def csrf_token(request: web.Request) -> str:
    """The field every form of this page carries: bound to the CSRF cookie and to the session
    (a token of one session, or of before signing in, is refused in another)."""
    message = f"{csrf_cookie(request)}\x00{request.cookies.get(SESSION_COOKIE, '')}".encode()
    return hmac.new(request.app[SECRET], message, hashlib.sha256).hexdigest()


def csrf_ok(request: web.Request, form: Any) -> bool:
    """The form's CSRF field matches, and the browser says it comes from this console's own
    pages (an Origin, when sent, naming this host: a sibling site can plant cookies, not that)."""
    origin = request.headers.get("Origin")
    # behind a proxy, the host the browser used is Host (passed on) or X-Forwarded-Host; a form
    # posted by a browser from another site can set neither
    hosts = {request.host, request.headers.get("X-Forwarded-Host", "").split(",")[0].strip()}
    if origin is not None and _host_of(origin) not in hosts - {""}:
        return False
    given = form.get(CSRF_FIELD, "") if form is not None else ""
    if CSRF_COOKIE not in request.cookies or not isinstance(given, str) or len(given) != 64:
        return False
    return hmac.compare_digest(given, csrf_token(request))


def _host_of(origin: str) -> str | None:
    try:
        return urlsplit(origin).netloc
    except ValueError:  # not a URL ('http://[')
        return None


def set_cookies(request: web.Request, response: web.StreamResponse) -> None:
    """The new CSRF cookie, if this request made one."""
    new = request.get(NEW_CSRF)
    if new and not response.prepared:
        response.set_cookie(
            CSRF_COOKIE,
            new,
            httponly=True,
            samesite="Strict",
            secure=request.app[CONFIG].cookie_secure,
            path="/",
        )


def signed_in(request: web.Request) -> Principal | None:
    token = request.cookies.get(SESSION_COOKIE, "")
    if not token or len(token) > 8192:
        return None
    try:
        who = verify(request.app[CONFIG].auth, token)
    except Exception:  # any bad token: simply not signed in
        return None
    revocations = request.app[REVOCATIONS]
    if not revocations.ready:  # fail closed until the revocations are read
        raise Unavailable("the console has not read the token revocations yet; try again shortly")
    return who if who.admin and not revocations.is_revoked(who) else None


async def sign_in(request: web.Request, email: str, password: str) -> str:
    """The token of an administrator, or SignInRefused saying why."""
    config: Config = request.app[CONFIG]
    session: aiohttp.ClientSession = request.app[HTTP]
    try:
        async with session.post(
            f"{config.security_url}/login",
            json={"email": email, "password": password},
            timeout=aiohttp.ClientTimeout(total=15),
        ) as resp:
            body = await resp.json(content_type=None) if resp.content_type.endswith("json") else {}
            status = resp.status
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise SignInRefused(f"the security service does not answer ({type(exc).__name__})", 503) from None
    if status == 429:
        raise SignInRefused("too many failed sign-ins: wait a moment", 429)
    if status != 201 or not isinstance(body, dict) or not isinstance(body.get("jwt"), str):
        raise SignInRefused("wrong email or password", 401)
    token = str(body["jwt"])
    try:
        who = verify(config.auth, token)
    except Exception:  # whatever the reason, not a token this console trusts
        raise SignInRefused("the security service's token cannot be verified here", 503) from None
    if not who.admin:
        raise SignInRefused("this console is for administrators only", 403)
    return token


async def sign_out(request: web.Request) -> None:
    """Revoke the session's token at the security service (best effort)."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return
    config: Config = request.app[CONFIG]
    try:
        async with request.app[HTTP].post(
            f"{config.security_url}/logout",
            headers={"Authorization": f"Bearer {token}"},
            timeout=aiohttp.ClientTimeout(total=5),
        ):
            pass
    except (aiohttp.ClientError, TimeoutError):
        pass

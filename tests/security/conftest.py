from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from security.app import create_app
from security.config import Config
from tests.support import Tokens

ADMIN_EMAIL = "root@example.com"
ADMIN_PASSWORD = "root-password-0"


@pytest.fixture
def security_env(test_env: dict[str, str]) -> dict[str, str]:
    return {**test_env, "ADMIN_EMAIL": ADMIN_EMAIL, "ADMIN_PASSWORD": ADMIN_PASSWORD}


@pytest.fixture
async def security_client(security_env: dict[str, str], serve: Callable[..., Any]) -> TestClient[Any, Any]:
    """The security service with its first administrator, called without a token."""
    client: TestClient[Any, Any] = await serve(create_app(Config.from_env(security_env)))
    return client


@pytest.fixture
async def admin_token(security_client: TestClient[Any, Any]) -> str:
    resp = await security_client.post("/login", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
    assert resp.status == 201, await resp.text()
    token: str = (await resp.json())["jwt"]
    return token


@pytest.fixture
def admin(admin_token: str) -> dict[str, str]:
    return Tokens.header(admin_token)


@pytest.fixture
def make_user(security_client: TestClient[Any, Any], admin: dict[str, str]) -> Callable[..., Any]:
    """Create a user (as the administrator) and return its row."""

    async def make(email: str, password: str = "a-good-password", is_admin: bool = False) -> dict[str, Any]:
        resp = await security_client.post(
            "/users", json={"user": {"email": email, "password": password, "admin": is_admin}}, headers=admin
        )
        assert resp.status == 201, await resp.text()
        row: dict[str, Any] = await resp.json()
        return row

    return make


@pytest.fixture
def login(security_client: TestClient[Any, Any]) -> Callable[..., Any]:
    """Log in; the bearer header of the new token."""

    async def log_in(email: str, password: str = "a-good-password") -> dict[str, str]:
        resp = await security_client.post("/login", json={"email": email, "password": password})
        assert resp.status == 201, await resp.text()
        return Tokens.header((await resp.json())["jwt"])

    return log_in

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from customers.app import create_app as customers_app
from customers.config import Config as CustomersConfig
from orders.app import create_app
from orders.config import Config
from tests.support import Tokens


@pytest.fixture
async def orders_client(
    test_env: dict[str, str], serve: Callable[..., Any], tokens: Tokens
) -> TestClient[Any, Any]:
    """The orders service, called with an administrator's token."""
    client: TestClient[Any, Any] = await serve(create_app(Config.from_env(test_env)), tokens.admin())
    return client


@pytest.fixture
async def customers_client(
    test_env: dict[str, str], serve: Callable[..., Any], tokens: Tokens
) -> TestClient[Any, Any]:
    client: TestClient[Any, Any] = await serve(
        customers_app(CustomersConfig.from_env(test_env)), tokens.admin()
    )
    return client


@pytest.fixture
async def parties(customers_client: TestClient[Any, Any]) -> tuple[int, int]:
    """An organization and a customer created through the customers service."""
    org = await (
        await customers_client.post("/organizations", json={"organization": {"name": "SuperCompany"}})
    ).json()
    customer = await (
        await customers_client.post(
            "/customers", json={"customer": {"name": "John", "last_name": "Do", "email": "jdo@gmail.com"}}
        )
    ).json()
    return org["id"], customer["id"]

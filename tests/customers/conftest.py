from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from customers.app import create_app
from customers.config import Config


@pytest.fixture
async def customers_client(test_env: dict[str, str], serve: Callable[..., Any]) -> TestClient[Any, Any]:
    client: TestClient[Any, Any] = await serve(create_app(Config.from_env(test_env)))
    return client

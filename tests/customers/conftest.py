from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from customers.app import create_app
from customers.config import Config
from tests.support import Tokens


@pytest.fixture
async def customers_client(
    test_env: dict[str, str], serve: Callable[..., Any], tokens: Tokens
) -> TestClient[Any, Any]:
    """The customers service, called with an administrator's token."""
    client: TestClient[Any, Any] = await serve(create_app(Config.from_env(test_env)), tokens.admin())
    return client

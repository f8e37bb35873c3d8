from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.support import PATIENCE


@pytest.fixture
def test_env(test_env: dict[str, str]) -> dict[str, str]:
    """The orders service's bounds on reading the parties' topics (orders/parties.py), raised to
    the tests' PATIENCE: these tests check read-your-writes ("deleted there, refused here by the
    very next order"), which holds only if the view reads to the broker's end within the bound.
    With the production 1 s for a known id, a busy machine taking longer would accept the order
    for a deleted customer (the documented fallback) and fail the test. No test here stops
    Kafka, so a bound is reached only if reading is slow, never waited out."""
    return {
        **test_env,
        "KNOWN_PARTIES_WAIT_SECONDS": str(PATIENCE),
        "KNOWN_PARTIES_FRESH_SECONDS": str(PATIENCE),
    }


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

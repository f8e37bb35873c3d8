from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.support import patient_parties


@pytest.fixture
def test_env(test_env: dict[str, str]) -> dict[str, str]:
    """Read-your-writes across services is what these tests check (tests.support.patient_parties)."""
    return patient_parties(test_env)


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

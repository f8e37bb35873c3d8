"""A revocation (logout, changed grants) put on the `revocations` topic stops the token at the
orders and notifications services too, each reading the topic itself; other tokens go on."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jwt

from kafka_integration import Event, KafkaSettings, Producer
from notifications.app import create_app as notifications_app
from notifications.config import Config as NotificationsConfig
from orders.app import create_app as orders_app
from orders.config import Config as OrdersConfig
from tests.support import Tokens, wait_until


async def test_a_revoked_token_is_refused_by_orders_and_notifications(
    system_env: dict[str, str], serve: Callable[..., Any], tokens: Tokens, kafka: KafkaSettings
) -> None:
    orders = await serve(orders_app(OrdersConfig.from_env(system_env)))
    notifications = await serve(notifications_app(NotificationsConfig.from_env(system_env)))
    revoked, other = tokens.make(user_id=40, admin=True), tokens.make(user_id=41, admin=True)
    services = [(orders, "/orders"), (notifications, "/notifications")]

    async def statuses(token: str) -> list[int]:
        return [(await c.get(path, headers=Tokens.header(token))).status for c, path in services]

    async def both_ready() -> bool:  # each answers 503 until it has read the revocations once
        return await statuses(revoked) == [200, 200]

    await wait_until(both_ready)
    claims = jwt.decode(revoked, options={"verify_signature": False})
    jti, exp = str(claims["jti"]), int(claims["exp"])  # an expired token's entry is forgotten
    producer = Producer(kafka)
    await producer.start()
    try:
        await producer.produce(
            [Event("revocations", f"jti:{jti}", {"kind": "token", "jti": jti, "exp": exp}, "token_revoked")]
        )
    finally:
        await producer.stop()

    async def refused_by_both() -> bool:
        return await statuses(revoked) == [401, 401]

    await wait_until(refused_by_both)
    assert await statuses(other) == [200, 200]

"""The project's own broker stopped under a real worker and a console: the worker's /health says
`degraded` (503) with no lag sample rather than a lag of 0 (tests/notifications/test_worker_health.py
checks this with a stand-in materializer; here the real one, on the real broker), and every
console page that asks Kafka answers 503 saying so, never a 500; both recover when it is back."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from notifications.worker import worker_app
from tests.console.conftest import ADMIN, ServeConsole, csrf_of, sign_in
from tests.support import base_url, kafka_script, local_kafka, wait_until


@pytest.mark.slow  # the broker's stop and restart: `make test-slow`
@pytest.mark.timeout(600)
async def test_with_the_broker_down_the_worker_is_degraded_and_the_console_answers_503(
    test_env: dict[str, str],
    worker: Any,
    serve: Callable[..., Any],
    serve_console: ServeConsole,
) -> None:
    assert local_kafka(test_env), "this test stops the project's own broker"
    materializer, notifier = worker
    health: TestClient[Any, Any] = await serve(worker_app(materializer, notifier))
    console = await serve_console(WORKER_URLS=base_url(health))
    assert (await sign_in(console, *ADMIN)).status == 303
    token = await csrf_of(console, "/deadletters")

    async def worker_ok() -> bool:
        return (await health.get("/health")).status == 200

    await wait_until(worker_ok)
    await asyncio.to_thread(kafka_script, "stop")
    try:

        async def worker_degraded() -> bool:
            resp = await health.get("/health")
            return resp.status == 503 and (await resp.json())["status"] == "degraded"

        await wait_until(worker_degraded)
        body = await (await health.get("/health")).json()
        assert body["consumer_lag"] is None and body["error"]
        metrics = await (await health.get("/metrics")).text()
        assert "consumer_lag_known 0.0" in metrics and "consumer_lag{" not in metrics
        for path in ("/topics", "/topics/invoices", "/deadletters"):
            resp = await console.get(path)
            assert resp.status == 503, (path, resp.status, await resp.text())
            assert "Kafka" in await resp.text(), path
        # no notifications API here either: not the operator's fault, 503 too (it was a 400)
        tables = await console.get("/tables/customers_table?key=1")
        assert tables.status == 503 and "notifications API" in await tables.text()
        replay = await console.post("/deadletters/replay", data={"csrf": token, "id": "m-0-0"})
        assert replay.status == 503, await replay.text()
        workers = await console.get("/workers")
        assert workers.status == 200 and "degraded" in await workers.text()
    finally:
        await asyncio.to_thread(kafka_script, "start")
    await wait_until(worker_ok, timeout=180, interval=1.0)

"""The four services as `python -m <service>` processes on free ports (Schemathesis calls them
from its own threads), with one database schema and topic prefix for the test."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import sys
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from tests.support import ROOT, wait_until

SERVICES = ("customers", "orders", "security", "notifications")


def create_apps(env: dict[str, str]) -> dict[str, web.Application]:
    """Each service's application, built as its __main__ builds it (nothing started)."""
    from customers.app import create_app as customers_app
    from customers.config import Config as CustomersConfig
    from notifications.app import create_app as notifications_app
    from notifications.config import Config as NotificationsConfig
    from orders.app import create_app as orders_app
    from orders.config import Config as OrdersConfig
    from security.app import create_app as security_app
    from security.config import Config as SecurityConfig

    return {
        "customers": customers_app(CustomersConfig.from_env(env)),
        "orders": orders_app(OrdersConfig.from_env(env)),
        "security": security_app(SecurityConfig.from_env(env)),
        "notifications": notifications_app(NotificationsConfig.from_env(env)),
    }


def _free_ports(count: int) -> list[int]:
    """`count` distinct free ports: each socket stays bound until all are chosen (one closed
    before the next bind could be handed out again, two services given the same port: the
    second fails to start and its /health is answered by the first)."""
    with contextlib.ExitStack() as stack:
        ports: list[int] = []
        for _ in range(count):
            s = stack.enter_context(socket.socket())
            s.bind(("127.0.0.1", 0))
            ports.append(int(s.getsockname()[1]))
        return ports


@pytest.fixture
async def running(test_env: dict[str, str]) -> AsyncIterator[dict[str, str]]:
    """Base URL of each service, once its /health says it is ready."""
    processes: list[asyncio.subprocess.Process] = []
    urls: dict[str, str] = {}
    for name, port in zip(SERVICES, _free_ports(len(SERVICES)), strict=True):
        env = {**os.environ, **test_env, "HOST": "127.0.0.1", "PORT": str(port)}
        processes.append(await asyncio.create_subprocess_exec(sys.executable, "-m", name, env=env, cwd=ROOT))
        urls[name] = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as session:
            for url in urls.values():

                async def ready(url: str = url) -> bool:
                    try:
                        async with session.get(f"{url}/health") as resp:
                            return resp.status == 200
                    except aiohttp.ClientError:
                        return False

                await wait_until(ready)
        yield urls
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            await asyncio.wait_for(process.wait(), 30)

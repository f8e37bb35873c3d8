"""A caller's X-Request-Id goes into the logs and the 500 body: kept only when it looks like one."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import pytest
from aiohttp import web

from servicekit.http import error_middleware, request_id_middleware


@pytest.mark.parametrize(
    "given",
    [
        "ok\x1b[31m-red",  # a terminal escape into the logs
        "a\x00b",
        "x" * 129,
        "line\tbreak",
        "é-accent",
        " ",
        '"<script>',
        "a\x7fb",
    ],
)
async def test_a_hostile_request_id_is_replaced_not_echoed(serve: Callable[..., Any], given: str) -> None:
    async def bug(request: web.Request) -> web.Response:
        raise ValueError("a bug")

    app = web.Application(middlewares=[request_id_middleware, error_middleware])
    app.router.add_get("/bug", bug)
    client = await serve(app)
    # raw bytes: aiohttp's client refuses to send control characters, a hostile caller does not
    reader, writer = await asyncio.open_connection("127.0.0.1", client.port)
    writer.write(
        f"GET /bug HTTP/1.1\r\nHost: x\r\nX-Request-Id: {given}\r\nConnection: close\r\n\r\n".encode()
    )
    head, _, raw = (await reader.read()).partition(b"\r\n\r\n")
    writer.close()
    if head.split(b"\r\n")[0].endswith(b" 400 Bad Request"):  # aiohttp's parser refuses control characters
        assert given.encode() not in head + raw
        return
    body = json.loads(raw)
    assert head.startswith(b"HTTP/1.1 500")
    assert body["request_id"] != given and len(body["request_id"]) == 32
    assert f"X-Request-Id: {body['request_id']}".encode() in head


async def test_a_request_id_that_looks_like_one_is_kept(serve: Callable[..., Any]) -> None:
    async def bug(request: web.Request) -> web.Response:
        raise ValueError("a bug")

    app = web.Application(middlewares=[request_id_middleware, error_middleware])
    app.router.add_get("/bug", bug)
    client = await serve(app)
    given = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    resp = await client.get("/bug", headers={"X-Request-Id": given})
    assert (await resp.json(content_type=None))["request_id"] == given
    assert resp.headers["X-Request-Id"] == given

"""The capacity benchmark's load generator (bench.order_load, with bench.ordering's light HTTP
client) against stubs of `POST /orders`: it sends what aiohttp's client sends, reports each
order's commit time from the answer's `created_at`, and counts every failure (a refusal, an
answer it cannot frame, a closed connection, nothing listening) instead of stopping."""

from __future__ import annotations

import asyncio
import itertools
import socket
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from aiohttp import web

from bench.ordering import ORDER, OrderClient
from tests.support import ROOT

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def _load(port: int, rate: float = 50, seconds: float = 0.4) -> dict[str, Any]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.order_load",
        f"--orders-port={port}",
        "--org=7",
        "--customer=9",
        f"--rate={rate}",
        f"--seconds={seconds}",
        "--prefix=t-",
        cwd=ROOT,
        env={"BENCH_TOKEN": "the-token", "PATH": "/usr/bin:/bin"},
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode == 0
    return dict(orjson.loads(out))


@pytest.fixture
async def orders_stub() -> AsyncIterator[tuple[int, list[dict[str, Any]]]]:
    """aiohttp's server answering as the orders service does; po `t-3` is refused with a 422."""
    seen: list[dict[str, Any]] = []
    ids = itertools.count(100)

    async def create(request: web.Request) -> web.Response:
        body = await request.json()
        seen.append({"body": body, "headers": dict(request.headers)})
        if body["po"] == "t-3":
            return web.json_response({"errors": [{"field": "po", "message": "refused"}]}, status=422)
        n = next(ids)
        now = datetime.now(UTC).isoformat()
        order = {"id": n, **body, "created_at": now, "items": [], "invoice_id": n}
        return web.json_response(order, status=201)

    app = web.Application()
    app.router.add_post("/orders", create)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield site._server.sockets[0].getsockname()[1], seen  # type: ignore[union-attr]
    finally:
        await runner.cleanup()


async def test_orders_are_placed_with_their_commit_times_and_refusals_counted(
    orders_stub: tuple[int, list[dict[str, Any]]],
) -> None:
    port, seen = orders_stub
    out = await _load(port)
    assert out["placed"] == 19 and out["errors"] == 1
    assert "422" in out["error_samples"][0] and "refused" in out["error_samples"][0]
    assert sorted(r["body"]["po"] for r in seen) == sorted(f"t-{n}" for n in range(20))
    wanted = {"organization_id": 7, "customer_id": 9, **ORDER}
    assert all(r["body"] == {"po": r["body"]["po"], **wanted} for r in seen)
    assert {r["headers"]["Authorization"] for r in seen} == {"Bearer the-token"}
    assert {r["headers"]["Content-Type"] for r in seen} == {"application/json"}
    now = datetime.now(UTC).timestamp()
    assert len(out["created"]) == 19 and all(now - 120 < t <= now for t in out["created"].values())
    assert out["cpu_seconds"] > 0


async def test_nothing_listening_is_counted_as_errors() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = await _load(port, rate=20, seconds=0.25)
    assert out["placed"] == 0 and out["errors"] == 5
    assert "ConnectionRefusedError" in out["error_samples"][0]


async def _raw_server(handle: Handler) -> tuple[asyncio.Server, int]:
    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


async def _read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    (length,) = (int(line[15:]) for line in lines if line.lower().startswith(b"content-length:"))
    return await reader.readexactly(length)


def _answer(body: bytes, extra: bytes = b"") -> bytes:
    return b"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\n%sContent-Length: %d\r\n\r\n%s" % (
        extra,
        len(body),
        body,
    )


async def test_an_answer_in_pieces_and_a_server_that_closes_each_connection() -> None:
    connections = 0

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        po = orjson.loads(await _read_request(reader))["po"]
        answer = _answer(
            orjson.dumps({"invoice_id": int(po), "created_at": "2026-01-02T03:04:05.5+00:00"}),
            b"Connection: close\r\n",
        )
        for piece in (answer[:7], answer[7:60], answer[60:]):  # the status line and body split
            writer.write(piece)
            await writer.drain()
            await asyncio.sleep(0.01)
        writer.close()

    server, port = await _raw_server(handle)
    client = OrderClient(port, "t")
    try:
        for po in ("1", "2"):
            invoice, committed = await client.place(1, 1, po)
            assert invoice == int(po) and committed == datetime(2026, 1, 2, 3, 4, 5, 500000, UTC).timestamp()
        assert connections == 2
    finally:
        client.close()
        server.close()


@pytest.mark.parametrize(
    "answer",
    [
        b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        b'HTTP/1.1 201 Created\r\nContent-Length: 100\r\n\r\n{"cut": ',
        b"HTTP/1.1 201 Created\r\nContent-Length: 9\r\n\r\nnot json!",
        b"HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\n{}",
        b"\x00\xff garbage that is no HTTP at all\r\n\r\n",
    ],
)
async def test_an_answer_it_cannot_use_is_an_error_not_a_hang(answer: bytes) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        writer.write(answer)
        await writer.drain()
        writer.close()

    server, port = await _raw_server(handle)
    client = OrderClient(port, "t", timeout=30)
    try:
        with pytest.raises((RuntimeError, ValueError, KeyError)):
            await client.place(1, 1, "x")
    finally:
        client.close()
        server.close()

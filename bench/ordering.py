"""Placing orders at a steady rate, as the capacity benchmark's load generator (bench.order_load)
does: the order, the open-loop schedule, and a light HTTP client for `POST /orders`. It imports
neither aiohttp nor the project's packages, so the load generator, whose CPU the capacity
benchmark counts per order beside the system's, starts and runs light. bench.orderflow places
orders the same way through an aiohttp session (its `place`)."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable, Coroutine
from datetime import datetime
from typing import Any

import orjson

ORDER = {"date": "2022-05-07T07:50:03-00:00", "deliver_date": "2022-05-07T07:53:03-00:00", "state": "pending"}


async def paced(
    rate: float, seconds: float, one: Callable[[int], Coroutine[Any, Any, None]]
) -> tuple[int, float]:
    """`one(n)` started `rate` times a second for `seconds`, open loop (the schedule does not
    wait for answers), then every one awaited: how many, and the seconds from the first start
    to the last answer. Every order due when the loop wakes is started in that wake-up."""
    total = int(rate * seconds)
    start = time.monotonic()
    tasks: list[asyncio.Task[None]] = []
    n = 0
    while n < total:
        due = min(total, int((time.monotonic() - start) * rate) + 1)
        while n < due:
            tasks.append(asyncio.create_task(one(n)))
            n += 1
        if n < total:
            await asyncio.sleep(max(0.0, start + n / rate - time.monotonic()))
    await asyncio.gather(*tasks)
    return total, time.monotonic() - start


class HttpError(RuntimeError):
    """An answer the light client cannot use: not HTTP/1.1 with a Content-Length, or the
    connection closed before the whole answer came."""


class _Exchange(asyncio.Protocol):
    """One HTTP/1.1 keep-alive connection, one request at a time: the answer is the status, the
    body (framed by Content-Length: aiohttp's server frames every answer of the orders service
    so) and whether the server keeps the connection open."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.answer: asyncio.Future[tuple[int, bytes, bool]] | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        answer = self.answer
        if answer is None or answer.done():
            return
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        head = bytes(self.buffer[:end]).lower()
        found = _CONTENT_LENGTH.search(head)
        if not head.startswith(b"http/1.1 ") or found is None:
            answer.set_exception(HttpError(f"an answer the light client cannot frame: {head[:200]!r}"))
            self.close()
            return
        size = end + 4 + int(found.group(1))
        if len(self.buffer) < size:
            return
        body = bytes(self.buffer[end + 4 : size])
        del self.buffer[:size]
        answer.set_result((int(head[9:12]), body, b"\r\nconnection: close" not in head))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.answer is not None and not self.answer.done():
            self.answer.set_exception(HttpError(f"the server closed the connection ({exc})"))

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length:[ \t]*([0-9]{1,12})[ \t]*(?:\r\n|$)")


class OrderClient:
    """`POST /orders` over plain HTTP/1.1 keep-alive connections (at most `limit` at once, kept
    and reused), for the load generator: a fifth of aiohttp's CPU per request, whose per-request
    machinery (request and response objects, timers, payload classes) and start-up (an SSL
    context built at import) the capacity benchmark counted as the load generator's. The same
    request on the wire as `place`'s, and the same answer read from it."""

    def __init__(self, port: int, token: str, limit: int = 256, timeout: float = 300) -> None:
        self.port, self.timeout = port, timeout
        self._head = (
            f"POST /orders HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {token}\r\n"
            "Content-Type: application/json\r\nContent-Length: "
        ).encode()
        self._idle: list[_Exchange] = []
        self._slots = asyncio.Semaphore(limit)

    async def _exchange(self, request: bytes) -> tuple[int, bytes]:
        async with self._slots:
            while self._idle and self._idle[-1].closed:
                self._idle.pop()
            if self._idle:
                conn = self._idle.pop()
            else:
                loop = asyncio.get_running_loop()
                _, conn = await loop.create_connection(_Exchange, "127.0.0.1", self.port)
            assert conn.transport is not None
            conn.answer = asyncio.get_running_loop().create_future()
            try:
                conn.transport.write(request)
                status, body, keep = await conn.answer
            except BaseException:
                conn.close()
                raise
            if keep and not conn.closed:
                self._idle.append(conn)
            else:
                conn.close()
            return status, body

    async def place(self, org: int, customer: int, po: str) -> tuple[int, float]:
        """As `place`: the invoice's id and the order's commit time; RuntimeError unless 201."""
        body = orjson.dumps({"po": po, "organization_id": org, "customer_id": customer, **ORDER})
        async with asyncio.timeout(self.timeout):
            status, raw = await self._exchange(b"%s%d\r\n\r\n%s" % (self._head, len(body), body))
        if status != 201:
            raise RuntimeError(f"/orders: {status} {raw.decode(errors='replace')}")
        order = orjson.loads(raw)
        return int(order["invoice_id"]), datetime.fromisoformat(str(order["created_at"])).timestamp()

    def close(self) -> None:
        for conn in self._idle:
            conn.close()
        self._idle.clear()

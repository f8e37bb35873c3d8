"""A database that dies under a request is the server's trouble, not the caller's: 503, never 500."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import asyncpg
import pytest
from aiohttp import web

from servicekit.db import unreachable
from servicekit.http import error_middleware


def _closed_during_transaction() -> BaseException:
    try:
        try:
            raise asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation")
        except asyncpg.ConnectionDoesNotExistError:
            raise asyncpg.InterfaceError(
                "cannot call Transaction.__aexit__(): the underlying connection is closed"
            ) from None
    except asyncpg.InterfaceError as exc:
        return exc


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (ConnectionRefusedError(111, "Connect call failed"), True),
        (asyncpg.CannotConnectNowError("the database system is starting up"), True),
        (asyncpg.AdminShutdownError("terminating connection due to unexpected postmaster exit"), True),
        (_closed_during_transaction(), True),
        (
            asyncpg.InternalClientError("cannot switch to state 15; another operation (2) is in progress"),
            True,
        ),
        (asyncpg.UniqueViolationError("duplicate key"), False),
        (asyncpg.InterfaceError("cannot perform operation: another operation is in progress"), False),
        (ValueError("a bug"), False),
    ],
)
def test_which_errors_mean_the_database_is_away(error: BaseException, expected: bool) -> None:
    assert unreachable(error) is expected


async def test_a_request_whose_database_died_gets_503_and_a_bug_still_500(serve: Callable[..., Any]) -> None:
    async def dies(request: web.Request) -> web.Response:
        raise _closed_during_transaction()

    async def bug(request: web.Request) -> web.Response:
        raise ValueError("a bug")

    app = web.Application(middlewares=[error_middleware])
    app.router.add_post("/dies", dies)
    app.router.add_post("/bug", bug)
    client = await serve(app)
    resp = await client.post("/dies")
    assert resp.status == 503
    assert "database" in (await resp.json())["detail"]
    assert (await client.post("/bug")).status == 500

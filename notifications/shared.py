"""Shared statements: one in flight at a time, and the items asked for meanwhile go together in
the next one, so concurrent callers cost one round trip per batch instead of one each, and no
item waits for a timer (a lone item is written at once). Used for recording notifications
(`claims`) and for marking them sent (`marks`).

`submit` returns what the statement returned, or None when the caller must write its item
alone: the statement failed (one row's lock timed out, a deadlock with another worker: its items
may still succeed one by one), or it was cancelled (at shutdown) while this caller was not. Only
a database that cannot be reached fails every item of the statement at once (raised to each
caller). A statement takes at most `timeout` seconds, its connection's wait included. The items
asked for after a cancelled statement go in a new one."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from servicekit.db import unreachable

Item = TypeVar("Item")
Written = TypeVar("Written")


@dataclass
class Batch(Generic[Item, Written]):
    task: asyncio.Task[Written]  # the statement writing the items
    items: list[Item] = field(default_factory=list)


class SharedStatements(Generic[Item, Written]):
    def __init__(
        self, write: Callable[[list[Item]], Awaitable[Written]], *, timeout: float, name: str
    ) -> None:
        self._write_items = write
        self.timeout = timeout
        self.name = name
        self._next: Batch[Item, Written] | None = None  # the next statement's items, once asked for
        self._writing: asyncio.Task[Written] | None = None  # the statement in flight

    async def submit(self, item: Item) -> Written | None:
        batch = self._next
        if batch is None or batch.task.done():  # none asked for, or one cancelled before it was sent
            batch = self._next = Batch(asyncio.create_task(self._write(), name=self.name))
            batch.task.add_done_callback(lambda t: t.cancelled() or t.exception())  # retrieved
        batch.items.append(item)
        try:
            return await asyncio.shield(batch.task)
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if not batch.task.cancelled() or (current is not None and current.cancelling()):
                raise  # this caller was cancelled, not only the shared statement
            return None
        except Exception as exc:
            if unreachable(exc):
                raise
            return None

    async def _write(self) -> Written:
        if self._writing is not None:
            # its outcome is its callers'; this task's own cancellation is not swallowed
            await asyncio.wait([self._writing])
        batch = self._next
        assert batch is not None and batch.task is asyncio.current_task()
        # items asked for from here on go in a later statement
        self._writing, self._next = batch.task, None
        async with asyncio.timeout(self.timeout):
            return await self._write_items(batch.items)

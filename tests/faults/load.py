"""A steady order rate against the orders service, and what every fault test checks after it:
each acknowledged write has its events in Kafka, in order per key; each invoice's email arrived
exactly once (a crash-window test names the Message-IDs allowed one extra copy)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from kafka_integration import KafkaSettings
from tests.support import Message, copies, read_topic, wait_until

ORDER = {"date": "2022-05-07T07:50:03-00:00", "deliver_date": "2022-05-07T07:53:03-00:00", "state": "pending"}


@dataclass
class Attempt:
    po: str
    started: float  # time.time()
    status: int | None = None  # None: no answer (connection dropped, timeout)
    order_id: int | None = None
    invoice_id: int | None = None
    answered: float | None = None
    updated: bool = False  # the follow-up PUT (state: confirmed) was acknowledged too


@dataclass
class SteadyLoad:
    """Places `rate` orders a second (each followed by a PUT of its state, so every key has two
    events whose order can be checked) until stopped; every attempt and its answer is kept."""

    urls: Sequence[str]  # orders service base URLs, used in turn
    token: str
    organization_id: int
    customer_ids: Sequence[int]
    tag: str
    rate: float = 4.0
    attempts: list[Attempt] = field(default_factory=list)
    _task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> SteadyLoad:
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def acknowledged(self) -> list[Attempt]:
        return [a for a in self.attempts if a.status == 201]

    def acknowledged_after(self, moment: float) -> int:
        return sum(1 for a in self.acknowledged() if a.started >= moment)

    async def _run(self) -> None:
        timeout = aiohttp.ClientTimeout(total=30)
        headers = {"Authorization": f"Bearer {self.token}"}
        async with aiohttp.ClientSession(timeout=timeout, headers=headers) as session:
            inflight: set[asyncio.Task[None]] = set()
            n = 0
            try:
                while True:
                    attempt = Attempt(po=f"{self.tag}-{n}", started=time.time())
                    self.attempts.append(attempt)
                    url = self.urls[n % len(self.urls)]
                    task = asyncio.create_task(self._place(session, url, attempt, n))
                    inflight.add(task)
                    task.add_done_callback(inflight.discard)
                    n += 1
                    await asyncio.sleep(1 / self.rate)
            finally:  # the requests already sent get their answer (bounded by the timeout)
                await asyncio.gather(*inflight, return_exceptions=True)

    async def _place(self, session: aiohttp.ClientSession, url: str, attempt: Attempt, n: int) -> None:
        customer = self.customer_ids[n % len(self.customer_ids)]
        body = {"po": attempt.po, "organization_id": self.organization_id, "customer_id": customer, **ORDER}
        try:
            async with session.post(f"{url}/orders", json=body) as resp:
                attempt.status = resp.status
                if resp.status == 201:
                    answer = await resp.json()
                    attempt.order_id, attempt.invoice_id = answer["id"], answer["invoice_id"]
            attempt.answered = time.time()
            if attempt.order_id is not None:
                change = {"order": {"state": "confirmed"}}
                async with session.put(f"{url}/orders/{attempt.order_id}", json=change) as resp:
                    attempt.updated = resp.status == 200
        except (aiohttp.ClientError, TimeoutError):
            attempt.answered = attempt.answered or time.time()


@dataclass
class Outcome:
    """One line of the fault report."""

    fault: str
    placed: int
    acknowledged: int
    events: int  # distinct events (by event_id) on the test's orders and invoices topics
    records: int  # records there (an event published twice counts twice)
    emails: int  # copies received of the acknowledged invoices' emails
    duplicates: int  # copies beyond the first
    recover_seconds: float
    statuses: dict[int | None, int]


def invoice_message_id(env: Mapping[str, str], invoice_id: int) -> str:
    return f"<invoice-{invoice_id}.default@{env['MESSAGE_ID_DOMAIN']}>"


async def check(
    fault: str,
    load: SteadyLoad,
    env: Mapping[str, str],
    kafka: KafkaSettings,
    *,
    fault_at: float,
    outage_until: float | None = None,
    may_double: set[str] = frozenset(),  # type: ignore[assignment]
    resent: set[str] = frozenset(),  # type: ignore[assignment]
    timeout: float = 300.0,
) -> Outcome:
    """Wait until every acknowledged invoice's email arrived, and each of `resent` (messages the
    server holds while the worker cannot know it: sent again once their lease ends) twice, then
    check events and copies."""
    await load.stop()
    acked = load.acknowledged()
    assert acked, "no order was acknowledged"
    wanted = {invoice_message_id(env, a.invoice_id) for a in acked if a.invoice_id is not None}

    async def all_emails_arrived() -> bool:
        got = await asyncio.to_thread(copies, env, env["MESSAGE_ID_DOMAIN"])
        return wanted <= set(got) and all(got.get(mid, 0) >= 2 for mid in resent)

    try:
        await wait_until(all_emails_arrived, timeout=timeout, interval=0.5)
    except AssertionError:
        got = set(copies(env, env["MESSAGE_ID_DOMAIN"]))
        raise AssertionError(f"{len(wanted - got)} of {len(wanted)} invoice emails never arrived") from None
    received = copies(env, env["MESSAGE_ID_DOMAIN"])
    mine = {mid: n for mid, n in received.items() if mid in wanted}
    doubled = {mid: n for mid, n in mine.items() if n > 1}
    # exactly one copy each; a crash-window test allows one extra, with the same Message-ID,
    # and only for the messages the server stored while their 250 was held
    assert set(doubled) <= set(may_double), f"emails received more than once: {doubled}"
    assert all(n == 2 for n in doubled.values()), doubled

    records, events = await _events_in_order(kafka, acked)
    statuses: dict[int | None, int] = {}
    for a in load.attempts:
        statuses[a.status] = statuses.get(a.status, 0) + 1
    outcome = Outcome(
        fault=fault,
        placed=len(load.attempts),
        acknowledged=len(acked),
        events=events,
        records=records,
        emails=sum(mine.values()),
        duplicates=sum(n - 1 for n in mine.values()),
        recover_seconds=round(_recovered_at(env, acked, outage_until or fault_at) - fault_at, 1),
        statuses=statuses,
    )
    REPORT.append(outcome)
    print(outcome)
    return outcome


async def _events_in_order(kafka: KafkaSettings, acked: list[Attempt]) -> tuple[int, int]:
    """Every acknowledged order has its `created` event on `orders` and its invoice's on
    `invoices`; an acknowledged update comes after its order's creation on the same key (and
    every key of the topics, acknowledged or not, has its events in order). An
    event published twice (a relay killed between Kafka's ack and its DELETE) is the same event
    (same event_id) again: allowed, but never out of order. Returns (records, distinct events)."""
    every = await read_topic(kafka, "orders", timeout=0) + await read_topic(kafka, "invoices", timeout=0)
    order_ids = {str(a.order_id) for a in acked}
    invoice_ids = {str(a.invoice_id) for a in acked}
    orders = [m for m in every if m.topic == "orders" and m.key in order_ids]
    invoices = [m for m in every if m.topic == "invoices" and m.key in invoice_ids]
    by_key = _by_key(orders)
    for a in acked:
        actions = by_key.get(str(a.order_id), [])
        assert actions[:1] == ["created"], f"order {a.order_id}: {actions}"
        if a.updated:
            assert "updated" in actions, f"order {a.order_id}: {actions}"
    invoice_actions = _by_key(invoices)
    missing = [a.invoice_id for a in acked if invoice_actions.get(str(a.invoice_id), [])[:1] != ["created"]]
    assert not missing, f"invoices without their created event: {missing[:10]}"
    _by_key([m for m in every if m.topic == "orders"])  # unacknowledged writes keep their order too
    _by_key([m for m in every if m.topic == "invoices"])
    return len(every), len({m.headers.get("event_id") for m in every})


def _by_key(messages: list[Message]) -> dict[str, list[str]]:
    """Each key's distinct events' actions in partition order (a repeated event_id, from a relay
    that published a batch and died before deleting it, counted at its first place). Any repeat
    may only replay what came before it, so the key's last record is its last distinct event:
    a reader keeping the latest by offset ends in the right state."""
    seen: dict[str, list[str]] = {}
    ids: dict[str, list[str]] = {}
    last: dict[str, str] = {}
    for m in sorted(messages, key=lambda m: (m.partition, m.offset)):
        if m.key is None or m.value is None:
            continue
        event_id = m.headers.get("event_id", "")
        last[m.key] = event_id
        key_ids = ids.setdefault(m.key, [])
        if event_id not in key_ids:
            key_ids.append(event_id)
            seen.setdefault(m.key, []).append(str(m.value.get("action")))
    for key, event_id in last.items():
        assert ids[key][-1] == event_id, f"key {key}: its last record replays an earlier event"
    return seen


def _recovered_at(env: Mapping[str, str], acked: list[Attempt], until: float) -> float:
    """When the last email of an order acknowledged up to `until` (the fault, or the end of an
    outage the test imposed) arrived: from then on nothing placed in the fault's shadow was
    still waiting (arrival times from the sink's log)."""
    wanted = {invoice_message_id(env, a.invoice_id) for a in acked if a.started <= until}
    log = Path(env["SMTP_SINK_DIR"]) / "received.log"
    last = until
    for line in log.read_text().splitlines():
        arrival, mid = line.split(" ")[:2]
        if mid in wanted:
            last = max(last, int(arrival) / 1e9)
    return last


REPORT: list[Outcome] = []


async def flowing(env: Mapping[str, str], load: SteadyLoad, emails: int = 10, timeout: float = 240.0) -> None:
    """Wait until the whole path works: `emails` acknowledged orders have their invoice email."""

    async def enough() -> bool:
        got = await asyncio.to_thread(copies, env, env["MESSAGE_ID_DOMAIN"])
        done = [a for a in load.acknowledged() if invoice_message_id(env, a.invoice_id or 0) in got]
        return len(done) >= emails

    await wait_until(enough, timeout=timeout, interval=0.5)


async def acknowledged_since(load: SteadyLoad, moment: float, count: int, timeout: float = 240.0) -> None:
    """Wait until `count` orders placed after `moment` were acknowledged (the service works)."""

    async def enough() -> bool:
        return load.acknowledged_after(moment) >= count

    await wait_until(enough, timeout=timeout, interval=0.2)

"""What the orders service knows of organizations and customers, without calling anyone.

The rule (documented in the README): an order is accepted only for an organization and a
customer this service has seen on the `organizations` and `customers` topics and not seen
deleted. Both topics are read whole into memory (`TopicView`). Before each check the views are
read up to the end the broker reports at that moment, so whatever the customers service wrote
to Kafka before the order arrived is seen: "created, then ordered" is accepted and "deleted,
then ordered" is refused, whatever the timing (the customers service answers a write once its
events are in Kafka, `X-Events-Delivered: true`). An id not in the view waits for that read up
to KNOWN_PARTIES_WAIT_SECONDS; if the broker cannot be asked (down), it gets 503 (try again).
A known id waits at most KNOWN_PARTIES_FRESH_SECONDS and is then accepted on what the view
holds: while Kafka is down, orders for known parties go on (a deletion not yet read is the
one thing missed, and only then).

Whose customers (`check_customer_access`): a member orders only for a customer the order's
organization owns (the customer's `organization_id` on the `customers` topic) or has a `ready`
invitation of (the `organization_associations` topic, read whole as well); administrators for
any. Both views are read to the broker's end first (as above), so an invitation accepted or
withdrawn a moment ago counts.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable

from aiohttp import web

from kafka_integration import KafkaSettings, TopicView
from orders.config import PartiesSettings
from servicekit.auth import Principal
from servicekit.errors import FieldProblem, Forbidden, Unavailable, ValidationFailed

log = logging.getLogger(__name__)


class KnownParties:
    def __init__(self, kafka: KafkaSettings, settings: PartiesSettings) -> None:
        self.settings = settings
        self.organizations = TopicView(kafka, "organizations")
        self.customers = TopicView(kafka, "customers")
        self.invitations = TopicView(kafka, "organization_associations")

    async def start(self) -> None:
        await self.organizations.start()
        await self.customers.start()
        await self.invitations.start()

    async def stop(self) -> None:
        await self.invitations.stop()
        await self.customers.stop()
        await self.organizations.stop()

    @staticmethod
    def _known(view: TopicView, ident: int) -> bool:
        row = view.get(ident)
        return row is not None and row.get("action") != "destroyed"

    async def check(self, field_prefix: str, organization_id: int | None, customer_id: int | None) -> None:
        """Raise ValidationFailed naming each unknown or deleted id (Unavailable if Kafka cannot
        tell about an id never seen)."""
        if not self.settings.required:
            return
        wanted = [
            (view, ident, name)
            for view, ident, name in (
                (self.organizations, organization_id, "organization_id"),
                (self.customers, customer_id, "customer_id"),
            )
            if ident is not None
        ]
        fresh = await asyncio.gather(*(self._read_to_end(view, ident) for view, ident, _ in wanted))
        for (view, _, _), ok in zip(wanted, fresh, strict=True):
            if not ok:
                raise Unavailable(
                    f"cannot read the {view.topic} topic now to check the order's ids; try again"
                )
        problems = [
            FieldProblem(f"{field_prefix}{name}", f"no {name.removesuffix('_id')} with id {ident} is known")
            for view, ident, name in wanted
            if not self._known(view, ident)
        ]
        if problems:
            raise ValidationFailed("; ".join(f"{p.field}: {p.problem}" for p in problems), problems)

    async def _read_to_end(self, view: TopicView, ident: int) -> bool:
        """Read `view` to the broker's end now; False only when that fails for an id never seen."""
        if not self._known(view, ident):
            return await view.caught_up(self.settings.wait_seconds)
        if not await view.caught_up(self.settings.fresh_seconds):
            log.warning(
                "%s not read to its end in %.1fs; id %s accepted as known",
                view.topic,
                self.settings.fresh_seconds,
                ident,
            )
        return True

    def _may_order_for(self, organization_id: int, customer_id: int) -> bool:
        """The organization owns the customer or has a ready invitation of it (as the views say now)."""
        customer = self.customers.get(customer_id)
        if customer is None or customer.get("action") == "destroyed":
            return False
        if customer.get("organization_id") == organization_id:
            return True
        return any(
            row.get("organization_id") == organization_id
            and row.get("customer_id") == customer_id
            and row.get("state") == "ready"
            and row.get("action") != "destroyed"
            for row in self.invitations.rows.values()
        )

    async def check_customer_access(
        self, who: Principal, field_prefix: str, organization_id: int, customer_id: int
    ) -> None:
        """Forbidden unless `who` is an administrator or the organization may order for the customer
        (Unavailable if Kafka cannot tell)."""
        if who.admin:
            return
        allowed = self._may_order_for(organization_id, customer_id)
        for view in (self.customers, self.invitations):
            # an allowed order waits briefly (a withdrawal not read yet); a refusal waits longer
            if not await view.caught_up(
                self.settings.fresh_seconds if allowed else self.settings.wait_seconds
            ):
                if not allowed:
                    raise Unavailable(
                        f"cannot read the {view.topic} topic now to check the order's customer; try again"
                    )
                log.warning("%s not read to its end; order accepted on what the view holds", view.topic)
        if not self._may_order_for(organization_id, customer_id):
            raise Forbidden(
                f"{field_prefix}customer_id: organization {organization_id} neither owns customer "
                f"{customer_id} nor has a ready invitation of it"
            )


PARTIES = web.AppKey("orders.parties", KnownParties)


def parties_context(
    kafka: KafkaSettings, settings: PartiesSettings
) -> Callable[[web.Application], AsyncIterator[None]]:
    async def parties(app: web.Application) -> AsyncIterator[None]:
        known = app[PARTIES] = KnownParties(kafka, settings)
        await known.start()
        yield
        await known.stop()

    return parties

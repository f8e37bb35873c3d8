"""What the orders service knows of organizations and customers, without calling anyone.

The rule (documented in the README): an order is accepted only for an organization and a
customer this service has seen on the `organizations` and `customers` topics and not seen
deleted. Both topics are read whole into memory (`TopicView`). An id not in the view yet may be
one created a moment ago: before refusing, the views are read up to the end the broker reports
now (bounded by KNOWN_PARTIES_WAIT_SECONDS). The customers service answers only once its events
are in Kafka, so "created, then ordered" always works. If the broker cannot be asked (down), an
unknown id gets 503 (try again), a known one is accepted.

Whose customers (`check_customer_access`): a member orders only for a customer the order's
organization owns (the customer's `organization_id` on the `customers` topic) or has a `ready`
invitation of (the `organization_associations` topic, read whole as well); administrators for
any. A refusal is first checked again after both views are read to the broker's end, so an
invitation accepted a moment ago counts.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

from aiohttp import web

from kafka_integration import KafkaSettings, TopicView
from orders.config import PartiesSettings
from servicekit.auth import Principal
from servicekit.errors import FieldProblem, Forbidden, Unavailable, ValidationFailed


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
        """Raise ValidationFailed naming each unknown id (Unavailable if Kafka cannot tell)."""
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
        missing = [(v, i, n) for v, i, n in wanted if not self._known(v, i)]
        if not missing:
            return
        for view, _, _ in missing:
            if not await view.caught_up(self.settings.wait_seconds):
                raise Unavailable(
                    f"cannot read the {view.topic} topic now to check the order's ids; try again"
                )
        problems = [
            FieldProblem(f"{field_prefix}{name}", f"no {name.removesuffix('_id')} with id {ident} is known")
            for view, ident, name in missing
            if not self._known(view, ident)
        ]
        if problems:
            raise ValidationFailed("; ".join(f"{p.field}: {p.problem}" for p in problems), problems)

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
        if who.admin or self._may_order_for(organization_id, customer_id):
            return
        for view in (self.customers, self.invitations):
            if not await view.caught_up(self.settings.wait_seconds):
                raise Unavailable(
                    f"cannot read the {view.topic} topic now to check the order's customer; try again"
                )
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

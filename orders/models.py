"""The request bodies the orders service accepts (the seed's Rails params, strictly typed).

Amounts are exact decimals with at most 2 places: a JSON number is read by its shortest decimal
representation (19.99 stays 19.99; 19.999 is refused), a string such as "19.99" works too.
Dates are ISO 8601 with a time zone, as in the seed's curl ("2022-05-07T07:50:03-00:00"), and
must stay within years 1 to 9999 once converted to UTC.
Ids are positive and fit a bigint. An order or invoice has at most MAX_ITEMS items whose total
(sum of quantity x amount) is at most MAX_TOTAL (the invoice's numeric(13,2)); db.py checks both
after every item write, under the record's lock.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, BeforeValidator, Field, model_validator

from servicekit.fields import STRICT, Changes, Id, Text, Wrapped

MAX_ITEMS = 200
MAX_TOTAL = Decimal("99999999999.99")


def _decimal(value: Any) -> Decimal:
    if isinstance(value, bool):
        raise ValueError("must be a number")
    if isinstance(value, float):
        value = repr(value)
    if isinstance(value, int | str):
        try:
            parsed = Decimal(value)
        except InvalidOperation:
            raise ValueError("must be a decimal number such as 19.99") from None
        if not parsed.is_finite():
            raise ValueError("must be a finite number")
        return parsed
    if isinstance(value, Decimal):
        return value
    raise ValueError("must be a decimal number such as 19.99")


def _moment(value: Any) -> datetime:
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError("must be an ISO 8601 date-time such as 2022-05-07T07:50:03-00:00") from None
    else:
        raise ValueError("must be an ISO 8601 date-time string")
    if moment.tzinfo is None:
        raise ValueError("needs a time zone (e.g. -00:00 or Z)")
    try:
        moment.astimezone(UTC)
    except OverflowError:
        raise ValueError("is out of range once converted to UTC (years 1 to 9999)") from None
    return moment


Amount = Annotated[Decimal, BeforeValidator(_decimal), Field(max_digits=11, decimal_places=2, ge=0)]
Moment = Annotated[datetime, BeforeValidator(_moment)]
Quantity = Annotated[int, Field(gt=0, le=1_000_000)]


class ItemFields(BaseModel):
    model_config = STRICT
    quantity: Quantity
    description: Text
    code: Text
    amount: Amount


class ItemChanges(Changes):
    quantity: Quantity | None = None
    description: Text | None = None
    code: Text | None = None
    amount: Amount | None = None


class ItemBody(Wrapped):
    """`{"item": {"quantity": 2, "description": "Widget", "code": "W-1", "amount": 19.99}}`"""

    model_config = STRICT
    item: ItemFields


class ItemUpdateBody(Wrapped):
    model_config = STRICT
    item: ItemChanges


class OrderFields(BaseModel):
    model_config = STRICT
    po: Text | None = None
    organization_id: Id
    customer_id: Id
    date: Moment
    deliver_date: Moment
    state: Text = "pending"
    items: list[ItemFields] = Field(default_factory=list, max_length=MAX_ITEMS)

    @model_validator(mode="after")
    def _deliver_after_date(self) -> OrderFields:
        if self.deliver_date <= self.date:
            raise ValueError("deliver_date must be after date")
        return self


class OrderBody(Wrapped):
    """The seed's flat body (`{"po": "po002", "organization_id": 13, ...}`) or `{"order": {...}}`."""

    model_config = STRICT
    order: OrderFields


class InvoiceChanges(Changes):
    """What may change on an invoice (and on an order, which may also change its parties)."""

    nullable: ClassVar[frozenset[str]] = frozenset({"po"})
    po: Text | None = None
    date: Moment | None = None
    deliver_date: Moment | None = None
    state: Text | None = None


class OrderChanges(InvoiceChanges):
    organization_id: Id | None = None
    customer_id: Id | None = None


class OrderUpdateBody(Wrapped):
    model_config = STRICT
    order: OrderChanges


class InvoiceFields(BaseModel):
    model_config = STRICT
    order_id: Id


class InvoiceBody(Wrapped):
    """`{"invoice": {"order_id": 1}}` or `{"order_id": 1}`: the invoice of an existing order."""

    model_config = STRICT
    invoice: InvoiceFields


class InvoiceUpdateBody(Wrapped):
    model_config = STRICT
    invoice: InvoiceChanges


class Item(BaseModel):
    id: int
    quantity: int
    description: str
    code: str
    amount: str
    created_at: str
    updated_at: str


class Order(BaseModel):
    id: int
    po: str | None
    organization_id: int
    customer_id: int
    date: str
    deliver_date: str
    state: str | None
    items: list[Item]
    invoice_id: int | None
    created_at: str
    updated_at: str


class Invoice(BaseModel):
    id: int
    order_id: int | None
    po: str | None
    organization_id: int
    customer_id: int
    date: str
    deliver_date: str
    state: str | None
    total: str
    items: list[Item]
    created_at: str
    updated_at: str

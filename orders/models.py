"""The request bodies the orders service accepts (the seed's Rails params, strictly typed).

Amounts are exact decimals with at most 2 places: a JSON number is read by its shortest decimal
representation (19.99 stays 19.99; 19.999 is refused), a string such as "19.99" works too.
Dates are ISO 8601 with a time zone, as in the seed's curl ("2022-05-07T07:50:03-00:00").
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, Field, model_validator

from servicekit.fields import STRICT, RecordId, Text

MAX_ITEMS = 200


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
    return moment


Amount = Annotated[Decimal, BeforeValidator(_decimal), Field(max_digits=11, decimal_places=2, ge=0)]
Moment = Annotated[datetime, BeforeValidator(_moment)]
Quantity = Annotated[int, Field(gt=0, le=1_000_000)]


def _unwrap(name: str, data: Any) -> Any:
    """Take `{"<name>": {...}}` or the same fields flat, as the seed's curl sends them."""
    if isinstance(data, dict) and name not in data:
        return {name: data}
    return data


class ItemFields(BaseModel):
    model_config = STRICT
    quantity: Quantity
    description: Text
    code: Text
    amount: Amount


class Changes(BaseModel):
    """A partial update: any of the fields, at least one."""

    model_config = STRICT

    @model_validator(mode="after")
    def _something(self) -> Changes:
        if not self.model_fields_set:
            raise ValueError("give at least one field to change")
        return self


class ItemChanges(Changes):
    quantity: Quantity | None = None
    description: Text | None = None
    code: Text | None = None
    amount: Amount | None = None


class ItemBody(BaseModel):
    """`{"item": {"quantity": 2, "description": "Widget", "code": "W-1", "amount": 19.99}}`"""

    model_config = STRICT
    item: ItemFields
    _flat = model_validator(mode="before")(lambda data: _unwrap("item", data))


class ItemUpdateBody(BaseModel):
    model_config = STRICT
    item: ItemChanges
    _flat = model_validator(mode="before")(lambda data: _unwrap("item", data))


class OrderFields(BaseModel):
    model_config = STRICT
    po: Text | None = None
    organization_id: RecordId
    customer_id: RecordId
    date: Moment
    deliver_date: Moment
    state: Text = "pending"
    items: list[ItemFields] = Field(default_factory=list, max_length=MAX_ITEMS)

    @model_validator(mode="after")
    def _deliver_after_date(self) -> OrderFields:
        if self.deliver_date <= self.date:
            raise ValueError("deliver_date must be after date")
        return self


class OrderBody(BaseModel):
    """The seed's flat body (`{"po": "po002", "organization_id": 13, ...}`) or `{"order": {...}}`."""

    model_config = STRICT
    order: OrderFields
    _flat = model_validator(mode="before")(lambda data: _unwrap("order", data))


class InvoiceChanges(Changes):
    """What may change on an invoice (and on an order, which may also change its parties)."""

    po: Text | None = None
    date: Moment | None = None
    deliver_date: Moment | None = None
    state: Text | None = None


class OrderChanges(InvoiceChanges):
    organization_id: RecordId | None = None
    customer_id: RecordId | None = None


class OrderUpdateBody(BaseModel):
    model_config = STRICT
    order: OrderChanges
    _flat = model_validator(mode="before")(lambda data: _unwrap("order", data))


class InvoiceFields(BaseModel):
    model_config = STRICT
    order_id: RecordId


class InvoiceBody(BaseModel):
    """`{"invoice": {"order_id": 1}}` or `{"order_id": 1}`: the invoice of an existing order."""

    model_config = STRICT
    invoice: InvoiceFields
    _flat = model_validator(mode="before")(lambda data: _unwrap("invoice", data))


class InvoiceUpdateBody(BaseModel):
    model_config = STRICT
    invoice: InvoiceChanges
    _flat = model_validator(mode="before")(lambda data: _unwrap("invoice", data))


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

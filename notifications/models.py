"""The request bodies the notifications API accepts."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from servicekit.fields import STRICT, Email, Id, LongText, Text, printable
from servicekit.pages import PageQuery

# A template's code (`invoice_created`); an organization's override is stored as
# `<tenant>-<organization id>-<code>` (templates.py), never asked for by that name in a mail.
Code = Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=r"^[a-z0-9_]+$")]
OptionName = Annotated[Text, StringConstraints(max_length=100)]
OptionValue = Annotated[str | int | float | bool | None, AfterValidator(printable)]


class MailBody(BaseModel):
    """`POST /mails` as in the seed: `{"code", "to", "options"}`; options fill the template."""

    model_config = STRICT
    code: Code
    to: Email
    options: dict[OptionName, OptionValue] = Field(default_factory=dict, max_length=100)
    organization_id: Id | None = None


class TemplateBody(BaseModel):
    model_config = STRICT
    subject: Text
    text_body: LongText
    html_body: LongText


class Notification(BaseModel):
    id: int
    source_topic: str
    source_partition: int
    source_offset: int
    template: str
    recipient: str
    organization_id: int | None
    status: str
    error: str | None
    args: dict[str, Any]
    created_at: str
    sent_at: str | None


class MailSent(BaseModel):
    message: str
    offset: int


class Template(TemplateBody):
    code: str


class Table(BaseModel):
    name: str
    rows: int


class TableRow(BaseModel):
    """A row of a materialized table: its key and the latest value's fields."""

    model_config = ConfigDict(extra="allow")
    key: str


class NotificationQuery(PageQuery):
    """`?status=&after=&limit=`"""

    status: Literal["created", "sending", "sent", "failed"] | None = None

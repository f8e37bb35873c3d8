"""The request bodies the notifications API accepts."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from servicekit.fields import STRICT, Email, LongText, Text


class MailBody(BaseModel):
    """`POST /mails` as in the seed: `{"code", "to", "options"}`; options fill the template."""

    model_config = STRICT
    code: Text
    to: Email
    options: dict[str, str | int | float | bool | None] = Field(default_factory=dict, max_length=100)
    organization_id: int | None = Field(default=None, gt=0)


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

"""HTTP handlers of the notifications API: direct mails, the record of notifications, templates.

Access: a mail for an organization, its notifications and its template overrides
(`<tenant>-<organization id>-<code>`) need a grant for that organization (write to send or
override, read to list or read the override); mails and templates for no organization need an
administrator (any token reads those templates). A mail names a template by its bare code
(`[a-z0-9_]+`) and gets its own organization's override, never another's.
"""

from __future__ import annotations

import uuid
from typing import Any

from aiohttp import web

from materializer import Materializer
from notifications import db, streams, templates
from notifications.db import Source
from notifications.models import (
    MailBody,
    MailSent,
    Notification,
    NotificationQuery,
    Table,
    TableRow,
    Template,
    TemplateBody,
)
from notifications.notify import Notifier, SmtpUnavailable
from servicekit.app import DB_POOL
from servicekit.auth import Principal, principal
from servicekit.errors import Forbidden, NotFound, Unavailable, ValidationFailed
from servicekit.http import json_response, path_id
from servicekit.pages import KeyPageQuery, page_response
from servicekit.routes import Routes

NOTIFIER = web.AppKey("notifications.notifier", Notifier)
MATERIALIZER = web.AppKey("notifications.materializer", Materializer)

routes = Routes()


@routes.post(
    "/mails",
    "send one email from a template",
    body=MailBody,
    answer=MailSent,
    status=201,
    example={"code": "customer_created", "to": "jdo@gmail.com", "options": {"name": "John"}},
)
async def send_mail(request: web.Request, body: MailBody) -> web.Response:
    who = principal(request)
    if body.organization_id is None:
        who.require_admin()
    else:
        who.require_write(body.organization_id)
    offset = await request.app[DB_POOL].fetchval("SELECT nextval('direct_mails')")
    try:
        status = await request.app[NOTIFIER].notify(
            Source("mails", 0, offset),
            template=body.code,
            to=body.to,
            organization_id=body.organization_id,
            values=dict(body.options),
            message_key=f"mail-{uuid.uuid4()}",
        )
    except NotFound as exc:
        raise ValidationFailed.one("code", exc.message) from exc
    except SmtpUnavailable as exc:
        raise Unavailable(
            f"the SMTP server cannot be reached ({exc}); the mail is recorded, not sent"
        ) from exc
    if status != "sent":
        raise ValidationFailed.one(
            "to",
            "the message was refused by the SMTP server or could not be composed; see GET /notifications",
        )
    return json_response({"message": "sent", "offset": offset}, status=201)


@routes.get(
    "/notifications",
    "notifications sent, with their status",
    query=NotificationQuery,
    answer=Notification,
    paged=True,
)
async def list_notifications(request: web.Request, query: NotificationQuery) -> web.Response:
    only = principal(request).readable()
    rows = await db.list_notifications(request.app[DB_POOL], query.after, query.limit, query.status, only)
    return page_response(request, rows, query.limit)


@routes.get("/notifications/{id}", "one notification", answer=Notification)
async def get_notification(request: web.Request) -> web.Response:
    row = await db.get_notification(request.app[DB_POOL], path_id(request))
    if row is None:
        raise NotFound(f"no notification with id {request.match_info['id']}")
    who = principal(request)
    if row["organization_id"] is None:
        who.require_admin()
    else:
        who.require_read(row["organization_id"])
    return json_response(row)


@routes.get("/templates/{code}", "a template", answer=Template, text_params=("code",))
async def get_template(request: web.Request) -> web.Response:
    code = templates.checked_code(request.match_info["code"])
    org_id = templates.override_organization(code, request.app[NOTIFIER].tenant)
    if org_id is not None:
        principal(request).require_read(org_id)
    found = await templates.get(request.app[DB_POOL], code)
    return json_response(
        {
            "code": found.code,
            "subject": found.subject,
            "text_body": found.text_body,
            "html_body": found.html_body,
        }
    )


@routes.put(
    "/templates/{code}",
    "store a template or an organization's override",
    body=TemplateBody,
    answer=Template,
    text_params=("code",),
)
async def put_template(request: web.Request, body: TemplateBody) -> web.Response:
    """Store a template; an organization's override is `PUT /templates/<tenant>-<org id>-<code>`."""
    code = templates.checked_code(request.match_info["code"])
    who = principal(request)
    org_id = templates.override_organization(code, request.app[NOTIFIER].tenant)
    if org_id is None:
        who.require_admin()
    else:
        who.require_write(org_id)
    await templates.save(
        request.app[DB_POOL], templates.Template(code, body.subject, body.text_body, body.html_body)
    )
    return json_response({"code": code, **body.model_dump()})


# The pull queries ksqlDB offered: the materialized tables and the enriched orders, read here
# from this process's own copy (the API embeds a materializer with the tables only).


def _readable(who: Principal, table: str, key: str, row: dict[str, Any]) -> bool:
    """A row of an organization's (an order, a customer it owns) is read with a grant for it; a
    customer owned by no organization by administrators only (the API does not see invitations:
    the customers service serves invited customers)."""
    if who.admin:
        return True
    org = key if table == streams.ORGANIZATIONS_TABLE else row.get("organization_id")
    return str(org).isdigit() and who.can_read(int(str(org)))


def _table_name(request: web.Request) -> str:
    name = request.match_info["table"]
    if name not in streams.TABLES:
        raise NotFound(f"no table {name!r}; tables: {', '.join(streams.TABLES)}")
    return name


@routes.get("/tables", "the materialized tables and their sizes", answer=Table, paged=True)
async def list_tables(request: web.Request) -> web.Response:
    materializer = request.app[MATERIALIZER]
    tables = [{"name": name, "rows": len(materializer.table(name))} for name in streams.TABLES]
    return page_response(request, tables, 0)


@routes.get(
    "/tables/{table}",
    "rows of a table by key, as ksqlDB's pull queries",
    query=KeyPageQuery,
    answer=TableRow,
    paged=True,
    text_params=("table",),
)
async def table_rows(request: web.Request, query: KeyPageQuery) -> web.Response:
    name = _table_name(request)
    who = principal(request)
    rows: list[dict[str, Any]] = []
    materializer = request.app[MATERIALIZER]
    for key, stored in materializer.table(name).items():
        if len(rows) >= query.limit:
            break
        if key <= query.after:
            continue
        row = streams.shown_row(materializer, name, key, stored)
        if _readable(who, name, key, row):
            rows.append({"key": key, **row})
    return page_response(request, rows, query.limit, lambda row: row["key"])


@routes.get(
    "/tables/{table}/{key}", "one row of a table by key", answer=TableRow, text_params=("table", "key")
)
async def table_row(request: web.Request) -> web.Response:
    name = _table_name(request)
    key = request.match_info["key"]
    stored = request.app[MATERIALIZER].table(name).get(key)
    if stored is None:
        raise NotFound(f"no row {key!r} in {name}")
    row = streams.shown_row(request.app[MATERIALIZER], name, key, stored)
    if not _readable(principal(request), name, key, row):
        raise Forbidden(f"no access to row {key!r} of {name}")
    return json_response({"key": key, **row})

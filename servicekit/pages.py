"""Lists answer pages, the same in every service: `{"items": [...], "next": cursor-or-null}` and
a `Link: <url>; rel="next"` header; the cursor is given back as `?after=` (with `?limit=`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from servicekit.fields import MAX_ID
from servicekit.http import json_response

MAX_LIMIT = 1000


class PageQuery(BaseModel):
    """`?after=<id>&limit=<n>`: keyset pagination over ids."""

    model_config = ConfigDict(extra="ignore")
    after: int = Field(0, ge=0, le=MAX_ID, description="the `next` cursor of the previous page")
    limit: int = Field(100, ge=1, le=MAX_LIMIT, description="at most this many items")


class KeyPageQuery(BaseModel):
    """`?after=<key>&limit=<n>`: pagination over text keys."""

    model_config = ConfigDict(extra="ignore")
    after: str = Field("", max_length=200, description="the `next` cursor of the previous page")
    limit: int = Field(100, ge=1, le=MAX_LIMIT, description="at most this many items")


def page_response(
    request: web.Request,
    items: Sequence[Any],
    limit: int,
    cursor: Callable[[Any], object] = lambda row: row["id"],
) -> web.Response:
    """A page of `items` (at most `limit`, fetched after the cursor): a full page has a next one.
    `limit` 0: `items` is the whole list (bounded), one page."""
    following = str(cursor(items[-1])) if limit and len(items) >= limit else None
    headers = None
    if following is not None:
        url = request.rel_url.update_query(after=following, limit=str(limit))
        headers = {"Link": f'<{url}>; rel="next"'}
    return json_response({"items": list(items), "next": following}, headers=headers)

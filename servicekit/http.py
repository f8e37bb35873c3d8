"""HTTP plumbing: JSON answers, reading a body into a model, the error middleware, request ids."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import orjson
from aiohttp import web
from pydantic import BaseModel, ValidationError

from kafka_integration.errors import EventTooLarge
from servicekit.db import unreachable as database_unreachable
from servicekit.encoding import dumps
from servicekit.errors import (
    BadRequest,
    FieldProblem,
    NotFound,
    PayloadTooLarge,
    ServiceError,
    Unavailable,
    ValidationFailed,
)
from servicekit.fields import MAX_ID as MAX_ID  # re-exported: security/models.py imports it here

log = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseModel)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

MAX_BODY_BYTES = 64 * 1024
REQUEST_ID = web.RequestKey("request_id", str)


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=dumps(body), status=status, content_type="application/json", headers=headers)


def problems_of(error: ValidationError) -> list[FieldProblem]:
    out = []
    for item in error.errors(include_url=False):
        field = ".".join(str(part) for part in item["loc"]) or "body"
        out.append(FieldProblem(field, item["msg"]))
    return out


async def read_body(request: web.Request) -> bytes:
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge as exc:
        raise PayloadTooLarge(f"the body is over the limit of {MAX_BODY_BYTES} bytes") from exc
    if not raw.strip():
        raise BadRequest("the body is empty; a JSON object is expected")
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadRequest(f"the body is not UTF-8 (byte {exc.start})") from exc
    return raw


class _DuplicateKey(ValueError):
    pass


def _unique_keys(pairs: list[tuple[str, Any]]) -> None:
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            raise _DuplicateKey(key)
        seen.add(key)


async def read_json(request: web.Request) -> Any:
    """The body as JSON. A key twice in one object is refused: parsers disagree on which one
    counts (orjson keeps the last), so a checker in front of us could see another value."""
    raw = await read_body(request)
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"the body is not valid JSON: {exc}") from exc
    try:
        json.loads(raw, object_pairs_hook=_unique_keys)
    except _DuplicateKey as exc:
        raise BadRequest(f"the body has the key {exc.args[0]!r} twice in one object") from exc
    except RecursionError as exc:
        raise BadRequest("the body is nested too deeply") from exc
    return data


def validate(model: type[M], data: Any) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = problems_of(exc)
        summary = "; ".join(f"{p.field}: {p.problem}" for p in problems)
        raise ValidationFailed(summary, problems) from exc


async def read_model(request: web.Request, model: type[M]) -> M:
    """Parse the body as JSON and validate it against `model`; every failure is a ServiceError."""
    return validate(model, await read_json(request))


def path_id(request: web.Request, name: str = "id") -> int:
    raw = request.match_info[name]
    if not (raw.isascii() and raw.isdigit()):  # int() would take " 1", "+1", "1_0", Arabic digits
        raise NotFound(f"{name} {raw!r} is not a record id")
    value = int(raw)
    if not 0 < value <= MAX_ID:
        raise NotFound(f"no record with {name} {raw}")
    return value


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turns ServiceErrors and aiohttp's HTTP errors into JSON bodies; hides anything else."""
    try:
        return await handler(request)
    except ServiceError as exc:
        return json_response(exc.as_json(), status=exc.status, headers=exc.headers() or None)
    except EventTooLarge as exc:  # the write rolled back: nothing was written
        err = PayloadTooLarge(
            f"the record would be too large to publish ({exc}); nothing was written: make it smaller"
        )
        return json_response(err.as_json(), status=err.status)
    except web.HTTPRequestEntityTooLarge as exc:
        err = PayloadTooLarge(exc.text or "body too large")
        return json_response(err.as_json(), status=err.status)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = exc.reason.lower().replace(" ", "_")
        return json_response(
            {"error": code, "message": exc.text or exc.reason}, status=exc.status, headers=None
        )
    except Exception as exc:
        if database_unreachable(exc):  # a write in flight when the database died: try again
            log.warning("database unreachable in %s %s: %r", request.method, request.path, exc)
            down = Unavailable("the database cannot be reached now; try again")
            return json_response(down.as_json(), status=down.status)
        request_id = request.get(REQUEST_ID, "-")
        log.exception("unhandled error in %s %s (request %s)", request.method, request.path, request_id)
        return json_response(
            {"error": "internal_error", "message": "internal error", "request_id": request_id},
            status=500,
        )


@web.middleware
async def request_id_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    request_id = request.headers.get("X-Request-Id") or uuid.uuid4().hex
    request[REQUEST_ID] = request_id
    response = await handler(request)
    response.headers["X-Request-Id"] = request_id
    return response


async def health(request: web.Request) -> web.Response:
    return json_response({"status": "ok"})


def page(request: web.Request, default_limit: int = 100, max_limit: int = 1000) -> tuple[int, int]:
    """`?after=<id>&limit=<n>`: keyset pagination over ids."""
    out = []
    for name, default, top in (("after", 0, MAX_ID), ("limit", default_limit, max_limit)):
        raw = request.query.get(name, str(default))
        try:
            value = int(raw)
        except ValueError as exc:
            raise ValidationFailed.one(name, "must be an integer") from exc
        if not 0 <= value <= top:
            raise ValidationFailed.one(name, f"must be between 0 and {top}")
        out.append(value)
    return out[0], out[1]

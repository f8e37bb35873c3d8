"""HTTP plumbing: JSON answers, reading a body or query into a model, the error middleware
(RFC 9457 problem details), request ids."""

from __future__ import annotations

import json
import logging
import math
import re
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

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
    problem,
)
from servicekit.fields import MAX_ID as MAX_ID  # re-exported: security/models.py imports it here

log = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseModel)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

MAX_BODY_BYTES = 64 * 1024
REQUEST_ID = web.RequestKey("request_id", str)
# A caller's X-Request-Id is kept only when it looks like one (a UUID, a trace id, a short token):
# it is written into the logs and the 500 body, where control characters or megabytes of text
# would forge log lines or bloat every record. Anything else gets a fresh id.
CALLER_REQUEST_ID = re.compile(r"[A-Za-z0-9._:/+=@-]{1,128}")


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


def _not_json(word: str) -> Any:
    raise ValueError(f"{word} is not JSON")


def _finite(text: str) -> float:
    """A number too large for a float (1e400) is refused as JSON parsers outside Python do."""
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"the number {text[:40]} is out of range")
    return value


# One decoder for every body (json.loads with hooks would build a new one per call).
_SCANNER = json.JSONDecoder(object_pairs_hook=_unique_keys, parse_constant=_not_json, parse_float=_finite)


def _check_structure(raw: bytes) -> None:
    """A key twice in one object is refused: parsers disagree on which one counts (pydantic keeps
    the last), so a checker in front of us could see another value. Nesting past Python's
    recursion limit is refused too. Only a scan: the body is parsed by pydantic."""
    try:
        _SCANNER.decode(raw.decode(json.detect_encoding(raw), "surrogatepass"))  # as json.loads does
    except _DuplicateKey as exc:
        raise BadRequest(f"the body has the key {exc.args[0]!r} twice in one object") from exc
    except RecursionError as exc:
        raise BadRequest("the body is JSON nested too deeply") from exc
    except ValueError as exc:
        raise BadRequest(f"the body is not valid JSON: {exc}") from exc


def validate_json(model: type[M], raw: bytes) -> M:
    """`raw` parsed once by pydantic into `model`; every failure is a ServiceError."""
    _check_structure(raw)
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        invalid = [e for e in exc.errors(include_url=False) if e["type"] == "json_invalid"]
        if invalid:
            raise BadRequest(f"the body is not valid JSON: {invalid[0]['msg']}") from exc
        raise _failed(exc) from exc


def _failed(exc: ValidationError) -> ValidationFailed:
    problems = problems_of(exc)
    return ValidationFailed("; ".join(f"{p.field}: {p.problem}" for p in problems), problems)


def validate(model: type[M], data: Any) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise _failed(exc) from exc


async def read_model(request: web.Request, model: type[M]) -> M:
    """Read the body and parse it into `model`; every failure is a ServiceError."""
    return validate_json(model, await read_body(request))


def read_query(request: web.Request, model: type[M]) -> M:
    """The query string checked against `model` (each parameter once)."""
    for name in request.query:
        if len(request.query.getall(name)) > 1:
            raise ValidationFailed.one(name, "give this parameter once")
    return validate(model, dict(request.query))


def path_id(request: web.Request, name: str = "id") -> int:
    raw = request.match_info[name]
    if not (raw.isascii() and raw.isdigit()):  # int() would take " 1", "+1", "1_0", Arabic digits
        raise NotFound(f"{name} {raw!r} is not a record id")
    value = int(raw)
    if not 0 < value <= MAX_ID:
        raise NotFound(f"no record with {name} {raw}")
    return value


PROBLEM_JSON = "application/problem+json"


def problem_response(request: web.Request, error: ServiceError) -> web.Response:
    return web.Response(
        body=dumps(error.as_problem(request.path)),
        status=error.status,
        content_type=PROBLEM_JSON,
        headers=error.headers() or None,
    )


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turns ServiceErrors and aiohttp's HTTP errors into RFC 9457 problem details; hides
    anything else behind a 500 that names the request id."""
    try:
        return await handler(request)
    except ServiceError as exc:
        return problem_response(request, exc)
    except EventTooLarge as exc:  # the write rolled back: nothing was written
        err = PayloadTooLarge(
            f"the record would be too large to publish ({exc}); nothing was written: make it smaller"
        )
        return problem_response(request, err)
    except web.HTTPRequestEntityTooLarge as exc:
        return problem_response(request, PayloadTooLarge(exc.text or "body too large"))
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = exc.reason.lower().replace(" ", "_")
        headers = {k: v for k, v in exc.headers.items() if k in ("Allow", "Retry-After")}
        body = problem(exc.status, code, exc.text or exc.reason, request.path)
        return web.Response(body=dumps(body), status=exc.status, content_type=PROBLEM_JSON, headers=headers)
    except Exception as exc:
        if database_unreachable(exc):  # a write in flight when the database died: try again
            log.warning("database unreachable in %s %s: %r", request.method, request.path, exc)
            return problem_response(request, Unavailable("the database cannot be reached now; try again"))
        request_id = request.get(REQUEST_ID, "-")
        log.exception("unhandled error in %s %s (request %s)", request.method, request.path, request_id)
        body = {**problem(500, "internal_error", "internal error", request.path), "request_id": request_id}
        return web.Response(body=dumps(body), status=500, content_type=PROBLEM_JSON)


@web.middleware
async def request_id_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    given = request.headers.get("X-Request-Id", "")
    request_id = given if CALLER_REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
    request[REQUEST_ID] = request_id
    response = await handler(request)
    response.headers["X-Request-Id"] = request_id
    return response


async def health(request: web.Request) -> web.Response:
    return json_response({"status": "ok"})

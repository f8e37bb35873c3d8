"""ksqlDB's error answers: `{"@type": "statement_error" | "generic_error", "error_code", "message"}`
(its REST API's KsqlErrorMessage; a statement error also has `statementText` and `entities`).

Our errors are RFC 9457 problem details (servicekit.errors); on the ksqlDB routes they carry
ksqlDB's members as well (RFC 9457 allows extension members), so a ksqlDB client reads its shape
and every other client the services' one. `error_code` is ksqlDB's: the HTTP status times 100,
40001 for a statement that is refused.
"""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web
from aiohttp.typedefs import Middleware

from servicekit.errors import BadRequest
from servicekit.http import PROBLEM_JSON, Handler

STATEMENT_ERROR_CODE = 40001


class KsqlStatementError(BadRequest):
    """400: a statement that cannot be read or is outside what is served (ksqlDB's 40001)."""

    def __init__(self, message: str, statement: str) -> None:
        super().__init__(message)
        self.statement = statement

    def as_problem(self, instance: str) -> dict[str, Any]:
        return {
            **super().as_problem(instance),
            "@type": "statement_error",
            "error_code": STATEMENT_ERROR_CODE,
            "message": self.message,
            "statementText": self.statement,
            "entities": [],
        }


def ksqldb_errors(paths: frozenset[str]) -> Middleware:
    """A middleware that gives the problem answers of `paths` ksqlDB's members (`@type`
    generic_error, `error_code`, `message`) unless they have them: the 401, 403, 413 and 503 of
    the shared middlewares too."""

    @web.middleware
    async def shape(request: web.Request, handler: Handler) -> web.StreamResponse:
        response = await handler(request)
        if (
            request.path not in paths
            or response.status < 400
            or response.content_type != PROBLEM_JSON
            or not isinstance(response, web.Response)
            or not isinstance(response.body, bytes)
        ):
            return response
        body = orjson.loads(response.body)
        if "@type" not in body:
            body.update(
                {
                    "@type": "generic_error",
                    "error_code": response.status * 100,
                    "message": body.get("detail", ""),
                }
            )
            response.body = orjson.dumps(body)
        return response

    return shape

"""The services' one exception family; the error middleware turns each into an RFC 9457
`application/problem+json` answer: `type` (urn:problem-type:<code>), `title`, `status`, `detail`,
`instance` (the request path), and `errors: [{field, problem}]` naming each invalid field.

ServiceError                 any failure a client can be told about
├── BadRequest               400: the body cannot be read (not JSON, not UTF-8)
├── Unauthorized             401: no token, or a bad or expired one
├── Forbidden                403: a valid token without access to this data
├── NotFound                 404: no such route or record
├── Conflict                 409: the record's state forbids the change
├── PayloadTooLarge          413: the body is over the size limit
├── ValidationFailed         422: the body is JSON but its fields are wrong
├── TooManyRequests          429: too many attempts; retry after `retry_after` seconds
└── Unavailable              503: a server or state this request needs is not available now
                                  (answered with a Retry-After header, 5 s unless given)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar


@dataclass(frozen=True)
class FieldProblem:
    """One field and what is wrong with it."""

    field: str
    problem: str

    def as_json(self) -> dict[str, str]:
        return {"field": self.field, "problem": self.problem}


class ServiceError(Exception):
    """A failure a client can be told about, with its HTTP status and a machine-readable code."""

    status: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"

    def __init__(self, message: str, problems: list[FieldProblem] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.problems = problems or []

    def headers(self) -> dict[str, str]:
        """Headers the answer carries besides the body (e.g. Retry-After)."""
        return {}

    def as_problem(self, instance: str) -> dict[str, Any]:
        """The RFC 9457 problem details of this error, for the request at `instance`."""
        return problem(self.status, self.code, self.message, instance, self.problems)


PROBLEM_TYPE = "urn:problem-type:"


def problem(
    status: int, code: str, detail: str, instance: str, problems: list[FieldProblem] | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE + code,
        "title": code.replace("_", " "),
        "status": status,
        "detail": detail,
        "instance": instance,
    }
    if problems:
        body["errors"] = [p.as_json() for p in problems]
    return body


class BadRequest(ServiceError):
    """The request body cannot be read."""

    status = 400
    code = "bad_request"


class Unauthorized(ServiceError):
    """No token, or a token that is forged, expired or revoked."""

    status = 401
    code = "unauthorized"


class Forbidden(ServiceError):
    """A valid token without access to the data asked for."""

    status = 403
    code = "forbidden"


class NotFound(ServiceError):
    """No such route or record."""

    status = 404
    code = "not_found"


class Conflict(ServiceError):
    """The record's current state forbids the change."""

    status = 409
    code = "conflict"


class PayloadTooLarge(ServiceError):
    """The body is over the size limit."""

    status = 413
    code = "payload_too_large"


class ValidationFailed(ServiceError):
    """The body is JSON but some fields are missing, of the wrong type or out of range."""

    status = 422
    code = "validation_failed"

    @classmethod
    def one(cls, field: str, problem: str) -> ValidationFailed:
        return cls(f"{field}: {problem}", [FieldProblem(field, problem)])


class TooManyRequests(ServiceError):
    """Too many attempts (e.g. failed logins); the client may retry after `retry_after` seconds."""

    status = 429
    code = "too_many_requests"

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class Unavailable(ServiceError):
    """A server this request needs (SMTP, Kafka) cannot be reached now, or the service is not
    ready yet (revocations not read); try again later, after `retry_after` seconds when given."""

    status = 503
    code = "unavailable"

    def __init__(self, message: str, retry_after: int = 5) -> None:
        super().__init__(message)
        self.retry_after = retry_after

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}

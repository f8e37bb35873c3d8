"""One declaration per route: path, method, summary, body, answer, query parameters and error
answers, written once on the handler; the router (`Routes.add_to`) and the OpenAPI document
(servicekit.openapi) are both built from it.

    routes = Routes()

    @routes.post("/organizations", "create an organization", body=OrganizationBody,
                 answer=Organization, status=201)
    async def create_organization(request: web.Request, body: OrganizationBody) -> web.Response: ...

The handler receives the body already parsed (`body=`) and the query parameters validated
(`query=`); a list (`paged=True`) answers a page (servicekit.pages).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from pydantic import BaseModel

from servicekit.http import read_model, read_query

Handler = Callable[..., Awaitable[web.StreamResponse]]
_PARAM = re.compile(r"{(\w+)}")


@dataclass(frozen=True)
class Route:
    """What is declared about one method on one path."""

    method: str
    path: str
    summary: str
    handler: Handler
    body: type[BaseModel] | None = None
    answer: type[BaseModel] | None = None
    status: int = 200
    query: type[BaseModel] | None = None
    paged: bool = False
    errors: tuple[int, ...] = ()
    public: bool = False
    text_params: tuple[str, ...] = ()  # path parameters that are not record ids
    tag: str = ""
    operation_id: str = ""
    description: str = ""
    also: tuple[int, ...] = ()  # other success statuses (e.g. 200 for an existing grant)
    example: dict[str, Any] | None = None  # a body, as the seed's curl sends it
    answer_media: tuple[str, ...] = ("application/json",)  # the answer's content types

    @property
    def path_params(self) -> list[str]:
        return _PARAM.findall(self.path)

    @property
    def statuses(self) -> list[int]:
        """Every status this route may answer."""
        out = {self.status, *self.also, *self.errors, 400, 404, 500}  # 400: an unreadable request
        if not self.public:
            out |= {401, 403, 503}
        if self.body is not None:
            out |= {400, 413, 422}
        if self.method != "GET" and not self.public:
            out.add(409)  # a record's state may forbid any write
        if self.query is not None or self.path_params:
            out.add(422)
        return sorted(out - {500})


class Routes:
    """A service's route declarations; `add_to(app)` registers them."""

    def __init__(self, tag: str = "") -> None:
        self.routes: list[Route] = []
        self.tag = tag  # the OpenAPI tag of routes that name none (else their path's first part)

    def __iter__(self) -> Iterator[Route]:
        return iter(self.routes)

    def __add__(self, other: Routes) -> Routes:
        """The declarations of both (a service whose routes live in two modules)."""
        both = Routes()
        both.routes = [*self.routes, *other.routes]
        return both

    def route(self, method: str, path: str, summary: str, **declared: Any) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            target = getattr(handler, "__wrapped_handler__", handler)
            tag = declared.pop("tag", "") or self.tag or path.strip("/").split("/")[0]
            operation_id = declared.pop("operation_id", "") or _operation_id(method, path)
            description = declared.pop("description", "") or (target.__doc__ or "").strip()
            self.routes.append(
                Route(
                    method.upper(),
                    path,
                    summary,
                    target,
                    tag=tag,
                    operation_id=operation_id,
                    description=description,
                    **declared,
                )
            )
            return handler

        return register

    def get(self, path: str, summary: str, **declared: Any) -> Callable[[Handler], Handler]:
        return self.route("GET", path, summary, **declared)

    def post(self, path: str, summary: str, **declared: Any) -> Callable[[Handler], Handler]:
        return self.route("POST", path, summary, **declared)

    def put(self, path: str, summary: str, **declared: Any) -> Callable[[Handler], Handler]:
        return self.route("PUT", path, summary, **declared)

    def patch(self, path: str, summary: str, **declared: Any) -> Callable[[Handler], Handler]:
        return self.route("PATCH", path, summary, **declared)

    def delete(self, path: str, summary: str, **declared: Any) -> Callable[[Handler], Handler]:
        return self.route("DELETE", path, summary, **declared)

    def add_to(self, app: web.Application) -> None:
        for route in self.routes:
            app.router.add_route(route.method, route.path, _bound(route))


def _operation_id(method: str, path: str) -> str:
    words = [p.strip("{}") for p in path.strip("/").split("/") if p]
    return "_".join([method.lower(), *words])


def _bound(route: Route) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """The aiohttp handler of a declaration: query and body read and checked, then the handler."""

    @functools.wraps(route.handler)
    async def handle(request: web.Request) -> web.StreamResponse:
        kwargs: dict[str, Any] = {}
        if route.query is not None:
            kwargs["query"] = read_query(request, route.query)
        if route.body is not None:
            kwargs["body"] = await read_model(request, route.body)
        return await route.handler(request, **kwargs)

    handle.public = route.public  # type: ignore[attr-defined]  # servicekit.auth skips the token
    return handle

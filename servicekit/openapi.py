"""A service's OpenAPI 3.1 document, built from its route declarations (servicekit.routes) and
their pydantic models: nothing about a route is written here."""

from __future__ import annotations

from collections.abc import Iterable
from http import HTTPStatus
from typing import Any

from pydantic import BaseModel

from servicekit.fields import MAX_ID, Wrapped
from servicekit.routes import Route

PROBLEM = {
    "type": "object",
    "description": "RFC 9457 problem details",
    "required": ["type", "title", "status", "detail", "instance"],
    "properties": {
        "type": {"type": "string", "description": "urn:problem-type:<code>"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string", "description": "the request path"},
        "errors": {
            "type": "array",
            "description": "the invalid fields",
            "items": {
                "type": "object",
                "required": ["field", "problem"],
                "properties": {"field": {"type": "string"}, "problem": {"type": "string"}},
            },
        },
    },
}
RETRY_AFTER = {
    "Retry-After": {"description": "seconds to wait before trying again", "schema": {"type": "integer"}}
}


def document(title: str, routes: Iterable[Route], *, basic: bool = False) -> dict[str, Any]:
    """The OpenAPI document of `routes`; with `basic`, the service also takes an API key as HTTP
    Basic credentials (servicekit.apikeys) wherever it takes a Bearer token."""
    needs: list[dict[str, list[str]]] = [{"bearer": []}, {"basic": []}] if basic else [{"bearer": []}]
    schemes: dict[str, Any] = {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}}
    if basic:
        schemes["basic"] = {"type": "http", "scheme": "basic", "description": "an API key as key:secret"}
    schemas: dict[str, Any] = {"Problem": PROBLEM}

    def ref(model: type[BaseModel], mode: str = "validation") -> dict[str, Any]:
        name = model.__name__
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}", mode=mode)  # type: ignore[arg-type]
        schemas.update(schema.pop("$defs", {}))
        schemas[name] = schema
        return {"$ref": f"#/components/schemas/{name}"}

    def body_schema(model: type[BaseModel]) -> dict[str, Any]:
        if issubclass(model, Wrapped):  # wrapped or flat
            return {"anyOf": [ref(model), ref(model.inner())]}
        return ref(model)

    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        entry: dict[str, Any] = {
            "operationId": route.operation_id,
            "summary": route.summary,
            "tags": [route.tag],
            "responses": {},
        }
        if route.description:
            entry["description"] = route.description
        parameters = [_path_param(route, name) for name in route.path_params]
        if route.query is not None:
            parameters += _query_params(route.query)
        if parameters:
            entry["parameters"] = parameters
        if route.body is not None:
            media: dict[str, Any] = {"schema": body_schema(route.body)}
            if route.example is not None:
                media["example"] = route.example
            entry["requestBody"] = {"required": True, "content": {"application/json": media}}
        for status in (route.status, *route.also):
            ok: dict[str, Any] = {"description": HTTPStatus(status).phrase}
            if route.answer is not None:
                schema = ref(route.answer, "serialization")
                if route.paged:
                    schema = _page_of(schema)
                    ok["headers"] = {
                        "Link": {
                            "description": 'the next page: <url>; rel="next"',
                            "schema": {"type": "string"},
                        }
                    }
                ok["content"] = {media: {"schema": schema} for media in route.answer_media}
            entry["responses"][str(status)] = ok
        for status in route.statuses:
            if status < 400:
                continue
            answer: dict[str, Any] = {
                "description": HTTPStatus(status).phrase,
                "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
            }
            if status in (429, 503):
                answer["headers"] = RETRY_AFTER
            entry["responses"][str(status)] = answer
        entry["security"] = [] if route.public else needs
        paths.setdefault(route.path, {})[route.method.lower()] = entry
    _link_created(routes, paths)
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": "1"},
        "security": needs,
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": schemes,
        },
    }


def _link_created(routes: Iterable[Route], paths: dict[str, dict[str, Any]]) -> None:
    """OpenAPI links from each create (201) to the operations on the created record (`<path>/{x}`:
    x from the answer's field x, else its `id`; the other path parameters from the request), so a
    client, or Schemathesis's stateful phase, can follow create -> read/change/delete."""
    routes = list(routes)
    for create in routes:
        if create.method != "POST" or create.status != 201 or create.answer is None:
            continue
        fields = create.answer.model_fields
        links: dict[str, Any] = {}
        for target in routes:
            params = target.path_params
            if not params or target.path != f"{create.path}/{{{params[-1]}}}":
                continue
            values = {name: f"$request.path.{name}" for name in params[:-1]}
            created = params[-1] if params[-1] in fields else "id"  # a grant is named by its organization_id
            if created not in fields:
                continue
            values[params[-1]] = f"$response.body#/{created}"
            links[target.operation_id] = {"operationId": target.operation_id, "parameters": values}
        if links:
            paths[create.path]["post"]["responses"]["201"]["links"] = links


def _path_param(route: Route, name: str) -> dict[str, Any]:
    if name in route.text_params:
        schema: dict[str, Any] = {"type": "string", "minLength": 1, "maxLength": 200}
    else:
        schema = {"type": "integer", "minimum": 1, "maximum": MAX_ID}
    return {"name": name, "in": "path", "required": True, "schema": schema}


def _query_params(model: type[BaseModel]) -> list[dict[str, Any]]:
    schema = model.model_json_schema()
    required = set(schema.get("required", []))
    out = []
    for name, prop in schema.get("properties", {}).items():
        param: dict[str, Any] = {"name": name, "in": "query", "required": name in required, "schema": prop}
        if "description" in prop:
            param["description"] = prop["description"]
        out.append(param)
    return out


def _page_of(items: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["items", "next"],
        "properties": {
            "items": {"type": "array", "items": items},
            "next": {
                "type": ["string", "null"],
                "description": "the cursor of the next page (give it as `after`), null on the last page",
            },
        },
    }

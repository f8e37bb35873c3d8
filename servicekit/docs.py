"""`/docs`: Swagger UI over the service's /openapi.json, served from the files of the
swagger-ui-py package (nothing fetched from a CDN)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from aiohttp import web

from servicekit.auth import public

_PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>{title} API</title>
  <link rel="stylesheet" href="/docs/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/docs/swagger-ui-bundle.js"></script>
  <script>
    window.ui = SwaggerUIBundle({{url: "/openapi.json", dom_id: "#swagger-ui", persistAuthorization: true}});
  </script>
</body>
</html>
"""
FILES = {"swagger-ui.css": "text/css", "swagger-ui-bundle.js": "text/javascript"}


def _static_dir() -> Path:
    spec = importlib.util.find_spec("swagger_ui")  # its files only: the package is not imported
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the swagger-ui-py package is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "static"


def add_docs(app: web.Application, title: str) -> None:
    """`GET /docs` (the page) and `GET /docs/<file>` (Swagger UI's script and style), no token."""
    folder = _static_dir()
    page = _PAGE.format(title=title)

    @public
    async def docs(request: web.Request) -> web.Response:
        return web.Response(text=page, content_type="text/html")

    @public
    async def asset(request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        if name not in FILES:
            raise web.HTTPNotFound(text=f"no file {name!r} in /docs")
        return web.FileResponse(folder / name, headers={"Content-Type": FILES[name]})

    app.router.add_get("/docs", docs)
    app.router.add_get("/docs/{name}", asset)

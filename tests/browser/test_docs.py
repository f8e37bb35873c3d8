"""Each service's `/docs` page, opened in a real browser (headless Chromium) that may reach
nothing but 127.0.0.1: Swagger UI runs from the project's own files, reads the service's
document and lists every operation in it. (`make test-browser`; Debian: apt-get install chromium.)"""

from __future__ import annotations

import asyncio
import html
import re
import shutil
from typing import Any

import aiohttp

from tests.contract.conftest import running  # noqa: F401  (the four services as processes)

BROWSER = next((b for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)), None)


async def rendered(url: str) -> str:
    """The page's DOM once its scripts have run, every host but 127.0.0.1 unresolvable."""
    assert BROWSER is not None, "the browser suite needs Chromium (Debian: apt-get install chromium)"
    process = await asyncio.create_subprocess_exec(
        BROWSER,
        "--headless",
        "--no-sandbox",  # root in a container has no user namespace for the sandbox
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
        "--virtual-time-budget=30000",
        "--dump-dom",
        url,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 180)
    assert process.returncode == 0, err.decode(errors="replace")[-3000:]
    return out.decode()


async def test_docs_page_lists_every_operation_of_the_document(running: dict[str, str]) -> None:  # noqa: F811
    async with aiohttp.ClientSession() as session:
        for name, url in running.items():
            async with session.get(f"{url}/openapi.json") as resp:
                spec: dict[str, Any] = await resp.json()
            dom = await rendered(f"{url}/docs")
            assert "swagger-ui" in dom and f"{name}" in dom, dom[:2000]
            shown = {
                (method, html.unescape(path))
                for method, path in re.findall(
                    r'class="opblock opblock-(\w+)[^"]*".*?data-path="([^"]+)"', dom, flags=re.S
                )
            }
            expected = {(method, path) for path, ops in spec["paths"].items() for method in ops}
            assert expected <= shown, f"{name}: not listed on /docs: {sorted(expected - shown)}"

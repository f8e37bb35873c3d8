"""Schemathesis runs each service's own document against the running service: with an
administrator's token, positive and negative data from the document, a fixed seed and example
budget, and stateful sequences along the document's links (create, then read, change or delete
the created id); no 5xx, no status, content type, header or body the document does not declare, negative
data refused. Without a token, every operation that needs one answers 401."""

from __future__ import annotations

import asyncio
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp

from servicekit.fields import MAX_ID
from tests.support import ROOT, Tokens

BAD_AUTH: list[dict[str, str]] = [{}, {"Authorization": "Bearer not-a-jwt"}, {"Authorization": "Basic eA=="}]
SEED = 20261126
MAX_EXAMPLES = 8
CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_headers_conformance",
        "response_schema_conformance",
        "negative_data_rejection",
        "missing_required_header",
        "ignored_auth",
        "use_after_free",  # stateful: a deleted record is not found again
        "ensure_resource_availability",  # stateful: a created record is found
    ]
)


async def schemathesis(url: str, token: str, report: Path) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).with_name("schemathesis")),
        "run",
        f"{url}/openapi.json",
        "--header",
        f"Authorization: Bearer {token}",
        # it would revoke the token the run uses (logging out is tested in tests/security)
        "--exclude-operation-id",
        "post_logout",
        "--seed",
        str(SEED),
        "--max-examples",
        str(MAX_EXAMPLES),
        "--mode",
        "all",
        "--phases",
        "examples,coverage,fuzzing,stateful",
        "--checks",
        CHECKS,
        "--workers",
        "1",
        "--generation-database",
        "none",
        "--no-color",
        "--report",
        "ndjson",
        "--report-ndjson-path",
        str(report),
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(errors="replace")


async def test_schemathesis_finds_nothing_in_any_service(
    running: dict[str, str], tokens: Tokens, tmp_path: Path
) -> None:
    # an administrator no generated id names: changing user 1's password would revoke the token
    token = tokens.make(admin=True, user_id=MAX_ID)
    results = await asyncio.gather(
        *(schemathesis(url, token, tmp_path / f"{name}.ndjson") for name, url in running.items())
    )
    failed = {name: out for name, (code, out) in zip(running, results, strict=True) if code != 0}
    assert not failed, "\n\n".join(f"== {name}\n{out[-6000:]}" for name, out in failed.items())
    for name, (_, out) in zip(running, results, strict=True):
        statuses = answered(tmp_path / f"{name}.ndjson")
        print(f"{name}: {sum(statuses.values())} requests, {dict(sorted(statuses.items()))}")
        print("\n".join(line for line in out.splitlines()[-40:] if line.strip()))  # Schemathesis's summary
        # the token worked: the run reached the handlers, and some calls succeeded
        assert statuses[401] < sum(statuses.values()) / 3, statuses
        assert sum(n for status, n in statuses.items() if status < 300) > 0, statuses


def answered(report: Path) -> Counter[int]:
    """How many responses of each status a Schemathesis NDJSON report holds."""
    out: Counter[int] = Counter()
    for line in report.read_text().splitlines():
        event = json.loads(line)
        for interaction in (
            event.get("ScenarioFinished", {}).get("recorder", {}).get("interactions", {}).values()
        ):
            if interaction.get("response"):
                out[interaction["response"]["status_code"]] += 1
    return out


async def test_without_a_token_every_guarded_operation_answers_401(running: dict[str, str]) -> None:
    async with aiohttp.ClientSession() as session:
        for url in running.values():
            async with session.get(f"{url}/openapi.json") as resp:
                spec: dict[str, Any] = await resp.json()
            for path, operations in spec["paths"].items():
                for method, op in operations.items():
                    if not op["security"]:
                        continue
                    concrete = path.replace("{", "").replace("}", "")
                    concrete = "/".join("1" if part in _params(op) else part for part in concrete.split("/"))
                    for headers in (
                        {},
                        {"Authorization": "Bearer not-a-jwt"},
                        {"Authorization": "Basic eA=="},
                    ):
                        async with session.request(
                            method, f"{url}{concrete}", headers=headers, data=json.dumps({})
                        ) as answer:
                            assert answer.status == 401, (method, concrete, headers, await answer.text())
                            assert answer.content_type == "application/problem+json"


def _params(op: dict[str, Any]) -> set[str]:
    return {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}

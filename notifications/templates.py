"""Templates by code, as in the seed: the most specific of `code`, `tenant-code` and
`tenant-orgid-code` wins. Defaults ship with the package (templates/<code>.json); overrides live
in the `templates` table. Placeholders are `$name` (string.Template): no code runs in a template,
and values are HTML-escaped in the HTML part."""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass
from importlib import resources
from string import Template as _Template
from typing import Any

import asyncpg

from servicekit.errors import NotFound, ValidationFailed

CODE = re.compile(r"[a-z0-9_]+")
# What a stored template may be called: `code`, `<tenant>-code` or `<tenant>-<organization id>-code`.
STORED_CODE = re.compile(r"[a-z0-9_]+(?:-[a-z0-9_]+){0,2}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


@dataclass(frozen=True)
class Template:
    code: str
    subject: str
    text_body: str
    html_body: str

    def render(self, values: dict[str, Any]) -> tuple[str, str, str]:
        """(subject, text, html); unknown placeholders stay as written."""
        text_values = {k: "" if v is None else str(v) for k, v in values.items()}
        html_values = {k: v if k.endswith("_html") else html.escape(v) for k, v in text_values.items()}
        # a header: the values come from data (names from the topics), so a control character
        # (a CR or LF would split the header) is replaced rather than refused
        subject = _CONTROL.sub(" ", _Template(self.subject).safe_substitute(text_values))
        return (
            subject,
            _Template(self.text_body).safe_substitute(text_values),
            _Template(self.html_body).safe_substitute(html_values),
        )


def candidates(code: str, tenant: str, organization_id: int | None) -> list[str]:
    """Lookup keys, most specific first."""
    org_specific = [f"{tenant}-{organization_id}-{code}"] if organization_id is not None else []
    return [*org_specific, f"{tenant}-{code}", code]


def builtin(code: str) -> Template | None:
    if not CODE.fullmatch(code):
        return None
    entry = resources.files("notifications") / "templates" / f"{code}.json"
    if not entry.is_file():
        return None
    data = json.loads(entry.read_text("utf-8"))
    return Template(code, data["subject"], data["text_body"], data["html_body"])


def checked_code(code: str) -> str:
    """A stored template's code as given in a path, or ValidationFailed naming `code`."""
    if len(code) > 200 or not STORED_CODE.fullmatch(code):
        raise ValidationFailed.one(
            "code",
            "must be <code>, <tenant>-<code> or <tenant>-<organization id>-<code>, each part [a-z0-9_]+",
        )
    return code


def override_organization(code: str, tenant: str) -> int | None:
    """The organization a stored code overrides for (`<tenant>-<org id>-<code>`), or None."""
    head, _, rest = code.removeprefix(f"{tenant}-").partition("-")
    if code.startswith(f"{tenant}-") and head.isascii() and head.isdigit() and rest:
        return int(head)
    return None


async def find(pool: asyncpg.Pool, code: str, tenant: str, organization_id: int | None) -> Template:
    keys = candidates(code, tenant, organization_id)
    rows = await pool.fetch("SELECT * FROM templates WHERE code = ANY($1::text[])", keys)
    by_code = {r["code"]: r for r in rows}
    for key in keys:
        if key in by_code:
            r = by_code[key]
            return Template(r["code"], r["subject"], r["text_body"], r["html_body"])
    found = builtin(code)
    if found is None:
        raise NotFound(f"no template with code {code!r}")
    return found


async def get(pool: asyncpg.Pool, code: str) -> Template:
    """The template stored under exactly this code, or the built-in one."""
    r = await pool.fetchrow("SELECT * FROM templates WHERE code = $1", code)
    if r is not None:
        return Template(r["code"], r["subject"], r["text_body"], r["html_body"])
    found = builtin(code)
    if found is None:
        raise NotFound(f"no template with code {code!r}")
    return found


async def save(pool: asyncpg.Pool, template: Template) -> None:
    await pool.execute(
        """
        INSERT INTO templates (code, subject, text_body, html_body) VALUES ($1, $2, $3, $4)
        ON CONFLICT (code) DO UPDATE SET subject = $2, text_body = $3, html_body = $4, updated_at = now()
        """,
        template.code,
        template.subject,
        template.text_body,
        template.html_body,
    )

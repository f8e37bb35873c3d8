"""Field types the services' request models share: bounded, stripped, printable text."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, ConfigDict, Field, StringConstraints

from servicekit.http import MAX_ID

STRICT = ConfigDict(strict=True, extra="forbid", str_strip_whitespace=True)


# Control characters but tab: C0 (CR, LF, NUL...), DEL and C1 (NEL); the line and paragraph
# separators (line breaks to str.splitlines and to some mail clients); and the bidi embeddings,
# overrides and isolates, which make a name or an address read as something else (CVE-2021-42574).
_CONTROL = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def _printable(value: str) -> str:
    if _CONTROL.search(value):
        raise ValueError("must not contain control characters")
    return value


def printable(value: object) -> object:
    """A validator for values of any scalar type: a string must hold no control characters but tab
    (no CR or LF to split a mail header, no NUL that PostgreSQL text refuses, no DEL, C1 or bidi
    override)."""
    return _printable(value) if isinstance(value, str) else value


Printable = AfterValidator(_printable)  # for a field with its own constraints (e.g. a login email)


# A record's id in a body: a PostgreSQL bigint, so 2**63 is a 422 naming the field, not a 500.
RecordId = Annotated[int, Field(gt=0, le=MAX_ID)]
Text = Annotated[str, StringConstraints(min_length=1, max_length=255), AfterValidator(_printable)]
LongText = Annotated[str, StringConstraints(min_length=1, max_length=2000), AfterValidator(_printable)]
Email = Annotated[
    str,
    StringConstraints(max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", to_lower=True),
    AfterValidator(_printable),
]

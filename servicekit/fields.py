"""Field types the services' request models share: bounded, stripped, printable text; record
ids that fit a bigint; partial updates that may not null a required field."""

from __future__ import annotations

import re
import unicodedata
from typing import Annotated, Any, ClassVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)

STRICT = ConfigDict(strict=True, extra="forbid", str_strip_whitespace=True)
MAX_ID = 2**63 - 1  # PostgreSQL's bigint
# Control characters (C0 but tab, DEL, C1), lone surrogates, and the line and paragraph
# separators that some readers take for a line break (a header injection in an email).
_UNPRINTABLE = {"Cc", "Cs", "Zl", "Zp"}


# The bidi embeddings, overrides and isolates make a name or an address read as something else
# (CVE-2021-42574); other format characters (zero-width joiners) are part of ordinary text.
_BIDI = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


# The same characters as one regular expression (the categories above are fixed sets: Cc is
# U+0000-U+001F and U+007F-U+009F, Cs the surrogates, Zl U+2028, Zp U+2029; a test checks every
# code point against unicodedata): one C scan per value instead of a Python call per character.
_REFUSED = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\ud800-\udfff\u2028\u2029" + "".join(sorted(_BIDI)) + "]")


def refused(c: str) -> bool:
    """Whether a character is refused in text (the definition `_REFUSED` must match)."""
    return c in _BIDI or (c != "\t" and unicodedata.category(c) in _UNPRINTABLE)


def _printable(value: str) -> str:
    if _REFUSED.search(value):
        raise ValueError("must not contain control characters")
    return value


def printable(value: object) -> object:
    """A validator for values of any scalar type: a string must hold no control characters but tab
    (no CR or LF to split a mail header, no NUL that PostgreSQL text refuses, no DEL, C1 or bidi
    override)."""
    return _printable(value) if isinstance(value, str) else value


Printable = AfterValidator(_printable)  # for a field with its own constraints (e.g. a login email)


Text = Annotated[str, StringConstraints(min_length=1, max_length=255), AfterValidator(_printable)]
LongText = Annotated[str, StringConstraints(min_length=1, max_length=2000), AfterValidator(_printable)]
Email = Annotated[
    str,
    StringConstraints(max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", to_lower=True),
    AfterValidator(_printable),
]
Id = Annotated[int, Field(gt=0, le=MAX_ID)]


class Changes(BaseModel):
    """A partial update: any of the fields, at least one; a field may be set to null only if
    it is listed in `nullable` (null would otherwise reach a NOT NULL column)."""

    model_config = STRICT
    nullable: ClassVar[frozenset[str]] = frozenset()

    @field_validator("*", mode="before")
    @classmethod
    def _not_null(cls, value: Any, info: ValidationInfo) -> Any:
        if value is None and info.field_name not in cls.nullable:
            raise ValueError("must not be null")
        return value

    @model_validator(mode="after")
    def _something(self) -> Changes:
        if not self.model_fields_set:
            raise ValueError(f"give at least one field to change: {', '.join(type(self).model_fields)}")
        return self


class Wrapped(BaseModel):
    """A body of one member holding the fields (`{"order": {...}}`, the seed's Rails params) that
    is also accepted flat (`{"po": ..., ...}`, as the seed's curl sends it). Invalid fields are
    named in the wrapped form (`order.date`) either way."""

    model_config = STRICT

    @model_validator(mode="before")
    @classmethod
    def _flat(cls, data: Any) -> Any:
        (key,) = cls.model_fields
        if isinstance(data, dict) and key not in data:
            return {key: data}
        return data

    @classmethod
    def inner(cls) -> type[BaseModel]:
        """The model of the fields, for the flat form in the OpenAPI document."""
        (info,) = cls.model_fields.values()
        inner = info.annotation
        assert isinstance(inner, type) and issubclass(inner, BaseModel)
        return inner

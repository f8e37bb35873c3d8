"""Text fields refuse exactly the characters their definition names (control characters but tab,
surrogates, line and paragraph separators, bidi overrides), checked one code point at a time."""

from __future__ import annotations

import sys

import pytest
from pydantic import BaseModel, ValidationError

from servicekit.fields import _REFUSED, Text, refused


def test_the_expression_refuses_exactly_the_defined_characters() -> None:
    differ = [hex(i) for i in range(sys.maxunicode + 1) if bool(_REFUSED.match(chr(i))) != refused(chr(i))]
    assert differ == []


class Named(BaseModel):
    name: Text


@pytest.mark.parametrize("bad", ["a\nb", "\x00", "x\x7f", "\u0085", "\u2028", "\u202e evil"])
def test_a_name_with_a_refused_character_is_invalid(bad: str) -> None:
    with pytest.raises(ValidationError, match="control characters"):
        Named(name=bad)


@pytest.mark.parametrize("good", ["tab\there", "é漢字🎉", "zero\u200dwidth joiner", "quote \" '"])
def test_ordinary_text_is_kept(good: str) -> None:
    assert Named(name=good).name == good

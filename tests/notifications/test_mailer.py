"""The message the mailer builds reads back as sent: headers, both parts, any language."""

from __future__ import annotations

import email
import random
import uuid
from email import policy
from email.header import Header
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText

import pytest

from notifications.mailer import SmtpSettings, Uncomposable, compose, mime_bytes


def test_compose_keeps_non_ascii_text_and_the_message_id() -> None:
    settings = SmtpSettings.from_env({"MAIL_FROM": "notifications@example.com"})
    out = compose(
        settings,
        to="jose@example.com",
        subject="Bienvenido, José Ñúñez — factura 7",
        text="Hola José,\n\nTotal: 12,50 €\n",
        html="<p>Hola <b>José</b></p>",
        message_id="<invoice-7.default@example.test>",
    )
    parsed = email.message_from_bytes(out.data, policy=policy.default)
    assert (out.sender, out.recipient) == ("notifications@example.com", "jose@example.com")
    assert str(parsed["Subject"]) == "Bienvenido, José Ñúñez — factura 7"
    assert parsed["Message-ID"] == "<invoice-7.default@example.test>"
    assert parsed.get_body(preferencelist=("plain",)).get_content() == "Hola José,\n\nTotal: 12,50 €\n"
    assert "<b>José</b>" in parsed.get_body(preferencelist=("html",)).get_content()


def test_parts_whose_lines_look_like_boundaries_keep_the_message_whole() -> None:
    """The boundary is ours (not searched for in the parts): text made of boundary-like lines,
    ours included, still parses back as exactly the two parts, each with its own text."""
    first = compose(
        SmtpSettings(), to="a@example.com", subject="s", text="x", html="y", message_id="<b0@example.com>"
    )
    boundary = email.message_from_bytes(first.data).get_boundary()
    assert boundary is not None
    hostile = f"--{boundary}\n--{boundary}--\n--=_\n\r\n.\r\n" * 50
    out = compose(
        SmtpSettings(),
        to="a@example.com",
        subject="s",
        text=hostile,
        html=hostile,
        message_id="<b1@example.com>",
    )
    parsed = email.message_from_bytes(out.data, policy=policy.default)
    parts = list(parsed.iter_parts())
    assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
    assert all(p.get_payload(decode=True).decode() == hostile for p in parts)


def _library_bytes(
    *, sender: str, to: str, subject: str, text: str, html: str, message_id: str, boundary: str, date: str
) -> bytes:
    """The message as the standard library's MIME classes build it (what compose used to do)."""
    message = MIMEMultipart("alternative", boundary=boundary)
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject if subject.isascii() else Header(subject, "utf-8").encode()
    message["Date"] = date
    message["Message-ID"] = message_id
    message.attach(MIMEText(text, "plain", "utf-8"))
    message.attach(MIMEText(html, "html", "utf-8"))
    return message.as_bytes()


# printable ASCII (quotes, "=?", commas, angle brackets), runs of spaces, Latin, CJK, an emoji, NBSP
_PIECES = [
    *(chr(c) for c in range(0x20, 0x7F)),
    " ",
    "   ",
    "é",
    "Ñ",
    "—",
    "€",
    "日本",
    "🧾",
    "\u00a0",
    "=?utf-8?q?x?=",
]


def _hostile(rng: random.Random, longest: int, newlines: bool = False) -> str:
    pieces = [*_PIECES, "\n", "\r\n", "\r"] if newlines else _PIECES
    return "".join(rng.choice(pieces) for _ in range(rng.randint(0, longest)))


def test_the_message_bytes_are_the_standard_librarys_for_hostile_values() -> None:
    """compose writes the MIME bytes itself: for 1,500 values of every kind (non-ASCII, long
    enough to fold, spaces anywhere, encoded-word look-alikes, empty, bodies with any line
    endings) they are byte for byte what MIMEMultipart and MIMEText give, and parse back."""
    rng = random.Random(13)
    for n in range(1500):
        values = {
            "sender": rng.choice(["notifications@example.com", _hostile(rng, 90)]),
            "to": rng.choice(
                ["jose@example.com", f"{_hostile(rng, 30)} <a{n}@example.com>", _hostile(rng, 200)]
            ),
            "subject": rng.choice([f"Invoice {n} for order PO-{n} from SuperCompany", _hostile(rng, 160)]),
            "text": _hostile(rng, 400, newlines=True),
            "html": _hostile(rng, 400, newlines=True),
            "message_id": f"<invoice-{n}.default@{rng.choice(['example.test', _hostile(rng, 80)])}>",
            "boundary": rng.choice([f"=_{uuid.uuid4().hex}_=", "=_short_=", f"=_{'b' * 70}_="]),
            "date": "Thu, 26 Nov 2026 15:34:45 GMT",
        }
        ours = mime_bytes(**values)
        assert ours == _library_bytes(**values), values
        parsed = email.message_from_bytes(ours, policy=policy.default)
        text, html = (p.get_payload(decode=True).decode() for p in parsed.iter_parts())
        assert (text, html) == (values["text"], values["html"])


def test_a_lone_surrogate_in_a_part_makes_the_message_uncomposable() -> None:
    """As with MIMEText: text that is not valid Unicode cannot be sent (failed, never retried)."""
    with pytest.raises(Uncomposable):
        compose(SmtpSettings(), to="a@example.com", subject="s", text="\ud800", html="", message_id="<s@x>")


@pytest.mark.parametrize(
    "hostile",
    ["a\udc80@example.com", ";\udc80", "Jos\udce9 <j@example.com>", "\u2028 \udc80", "x" * 100 + " \udcff"],
)
def test_header_values_holding_escaped_bytes_are_written_as_the_standard_library_does(hostile: str) -> None:
    """A header value with a surrogate-escaped byte (what os.environ makes of a MAIL_FROM that is
    not UTF-8): the library writes the byte as it is, or fails (UnicodeEncodeError) when the value
    holds other non-ASCII too; mime_bytes must do the same, not an unknown-8bit encoded word."""
    for field in ("sender", "to"):
        values = {
            "sender": "notifications@example.com",
            "to": "jose@example.com",
            "subject": "s",
            "text": "t",
            "html": "h",
            "message_id": "<m@example.test>",
            "boundary": f"=_{uuid.uuid4().hex}_=",
            "date": "Thu, 26 Nov 2026 15:34:45 GMT",
        }
        values[field] = hostile
        try:
            expected: bytes | type[Exception] = _library_bytes(**values)
        except UnicodeEncodeError:
            expected = UnicodeEncodeError
        if expected is UnicodeEncodeError:
            with pytest.raises(UnicodeEncodeError):
                mime_bytes(**values)
        else:
            assert mime_bytes(**values) == expected, values

"""The message the mailer builds reads back as sent: headers, both parts, any language."""

from __future__ import annotations

import email
from email import policy

from notifications.mailer import SmtpSettings, compose


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

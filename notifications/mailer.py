"""Sending email with aiosmtplib to any SMTP server (Postmark's SMTP included)."""

from __future__ import annotations

import base64
import contextlib
import email.errors
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from email.header import Header
from email.policy import compat32
from email.utils import formatdate

import aiosmtplib

from servicekit.config import Secret, env_bool, env_float, env_int, env_str


@dataclass(frozen=True)
class SmtpSettings:
    """SMTP_HOST, SMTP_PORT, SMTP_USERNAME, SMTP_PASSWORD, SMTP_TLS (implicit TLS, port 465),
    SMTP_STARTTLS (upgrade, port 587; Postmark), MAIL_FROM, MESSAGE_ID_DOMAIN (the right-hand side
    of the stable Message-IDs: one per deployment, so two deployments never share an id)."""

    host: str = "127.0.0.1"
    port: int = 11025
    username: str = ""
    password: Secret = Secret("")
    use_tls: bool = False
    start_tls: bool = False
    timeout: float = 10.0
    sender: str = "notifications@example.com"
    message_id_domain: str = "notifications.local"

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> SmtpSettings:
        return cls(
            host=env_str(environ, "SMTP_HOST", "127.0.0.1"),
            port=env_int(environ, "SMTP_PORT", 11025),
            username=env_str(environ, "SMTP_USERNAME"),
            password=Secret(env_str(environ, "SMTP_PASSWORD")),
            use_tls=env_bool(environ, "SMTP_TLS", False),
            start_tls=env_bool(environ, "SMTP_STARTTLS", False),
            timeout=env_float(environ, "SMTP_TIMEOUT", 10.0),
            sender=env_str(environ, "MAIL_FROM", "notifications@example.com"),
            message_id_domain=env_str(environ, "MESSAGE_ID_DOMAIN", "notifications.local"),
        )


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class Uncomposable(ValueError):
    """The message cannot be built (a header value holds a control character, ...): sending it
    again would fail again."""


@dataclass(frozen=True)
class Outgoing:
    """A message ready for SMTP: envelope and the bytes of a multipart/alternative message."""

    sender: str
    recipient: str
    data: bytes


def compose(
    settings: SmtpSettings, *, to: str, subject: str, text: str, html: str, message_id: str
) -> Outgoing:
    """A multipart/alternative message (text and HTML, UTF-8) with the given, stable Message-ID.
    Uncomposable when a header value holds a control character: a CR or LF would add headers (or
    SMTP commands, in the envelope) that nobody wrote."""
    headers = {"From": settings.sender, "To": to, "Subject": subject, "Message-ID": message_id}
    for name, value in headers.items():
        if _CONTROL.search(value):
            raise Uncomposable(f"the {name} header holds a control character: {value!r}")
    try:
        # A boundary of our own: it cannot occur in the parts: their bodies are base64, whose
        # alphabet has no "_", and their headers are fixed.
        data = mime_bytes(
            sender=settings.sender,
            to=to,
            subject=subject,
            text=text,
            html=html,
            message_id=message_id,
            boundary=f"=_{uuid.uuid4().hex}_=",
            date=formatdate(usegmt=True),
        )
        return Outgoing(settings.sender, to, data)
    except (ValueError, TypeError, email.errors.MessageError) as exc:
        raise Uncomposable(f"{type(exc).__name__}: {exc}") from exc


_FOLDING = compat32.clone(linesep="\n")
_PART_HEADERS = (
    'Content-Type: text/{}; charset="utf-8"\nMIME-Version: 1.0\nContent-Transfer-Encoding: base64\n'
)
_TEXT_PART = (_PART_HEADERS.format("plain") + "\n").encode()
_HTML_PART = (_PART_HEADERS.format("html") + "\n").encode()
# a value that compat32's folding leaves as it is: printable ASCII, single spaces between words
_UNFOLDED = re.compile(r"[!-~]+(?: [!-~]+)*")
_OUR_BOUNDARY = re.compile(r"=_[0-9a-f]{32}_=")


def _header(name: str, value: str) -> str:
    """One header line as the standard library's compat32 generator writes it (its folding, at
    78 characters, encoded words for non-ASCII), without building a Message: a short value of
    plain ASCII words is written as it is, any other goes through the library's own folding, as
    `as_bytes()` folds it (`fold_binary`: a surrogate-escaped byte is written as that byte, not as
    an unknown-8bit encoded word; a value holding one and other non-ASCII raises)."""
    if len(name) + len(value) <= 76 and _UNFOLDED.fullmatch(value):
        return f"{name}: {value}\n"
    return _FOLDING.fold_binary(name, value).decode("ascii", "surrogateescape")


def _content_type(boundary: str) -> str:
    """The multipart header; compose's boundaries (`=_<32 hex digits>_=`) make it longer than a
    line, so compat32 folds it before `boundary`, always the same way: written so directly."""
    if _OUR_BOUNDARY.fullmatch(boundary):
        return f'Content-Type: multipart/alternative;\n boundary="{boundary}"\n'
    return _header("Content-Type", f'multipart/alternative; boundary="{boundary}"')


def mime_bytes(
    *, sender: str, to: str, subject: str, text: str, html: str, message_id: str, boundary: str, date: str
) -> bytes:
    """The bytes that `MIMEMultipart("alternative", boundary=boundary)` with these headers and two
    UTF-8 `MIMEText` parts gives with `as_bytes()` (tests/notifications/test_mailer.py compares
    them), written directly: building the Message objects and generating them was an eighth of the
    worker's CPU (12.5% of a py-spy profile at 100 orders/s), this a fifteenth of that. The parts
    are base64 (76-character lines), as MIMEText makes them for UTF-8; a lone surrogate in them
    raises UnicodeEncodeError, as it does there."""
    text_part = base64.encodebytes(text.encode("utf-8"))
    html_part = base64.encodebytes(html.encode("utf-8"))
    head = "".join(
        (
            _content_type(boundary),
            "MIME-Version: 1.0\n",
            _header("From", sender),
            _header("To", to),
            _header("Subject", subject if subject.isascii() else Header(subject, "utf-8").encode()),
            _header("Date", date),
            _header("Message-ID", message_id),
            f"\n--{boundary}\n",
        )
    )
    between = f"\n--{boundary}\n".encode()
    end = f"\n--{boundary}--\n".encode()
    return b"".join(
        (head.encode("ascii", "surrogateescape"), _TEXT_PART, text_part, between, _HTML_PART, html_part, end)
    )


def _client(settings: SmtpSettings) -> aiosmtplib.SMTP:
    return aiosmtplib.SMTP(
        hostname=settings.host,
        port=settings.port,
        username=settings.username or None,
        password=settings.password.reveal() or None,
        use_tls=settings.use_tls,
        start_tls=settings.start_tls if settings.start_tls else False,
        timeout=settings.timeout,
    )


async def send(settings: SmtpSettings, message: Outgoing) -> None:
    """Deliver one message in a session of its own; raises aiosmtplib.SMTPException (or OSError)
    when the server refuses or cannot be reached."""
    smtp = _client(settings)
    async with smtp:
        await smtp.sendmail(message.sender, [message.recipient], message.data)


class Connection:
    """One SMTP session kept open between messages (each sender has its own), opened on first
    use and again when the server has closed it. Saves the connect, EHLO, STARTTLS, AUTH and
    QUIT of a session per message."""

    def __init__(self, settings: SmtpSettings) -> None:
        self.settings = settings
        self._smtp: aiosmtplib.SMTP | None = None

    async def _open(self) -> aiosmtplib.SMTP:
        if self._smtp is not None and self._smtp.is_connected:
            return self._smtp
        smtp = _client(self.settings)
        await smtp.connect()
        self._smtp = smtp
        return smtp

    async def send(self, message: Outgoing) -> None:
        """Like `send`; a session the server closed while idle is reopened once."""
        for attempt in (1, 2):
            smtp = await self._open()
            try:
                await smtp.sendmail(message.sender, [message.recipient], message.data)
                return
            except aiosmtplib.SMTPServerDisconnected:
                self._smtp = None
                if attempt == 2:
                    raise

    async def close(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is not None and smtp.is_connected:
            with contextlib.suppress(Exception):
                await smtp.quit()

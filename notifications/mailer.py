"""Sending email with aiosmtplib to any SMTP server (Postmark's SMTP included)."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import EmailMessage
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


def compose(
    settings: SmtpSettings, *, to: str, subject: str, text: str, html: str, message_id: str
) -> EmailMessage:
    """A multipart/alternative message (text and HTML) with the given, stable Message-ID."""
    message = EmailMessage()
    message["From"] = settings.sender
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = formatdate(usegmt=True)
    message["Message-ID"] = message_id
    message.set_content(text)
    message.add_alternative(html, subtype="html")
    return message


async def send(settings: SmtpSettings, message: EmailMessage) -> None:
    """Deliver one message; raises aiosmtplib.SMTPException (or OSError) when the server refuses."""
    await aiosmtplib.send(
        message,
        hostname=settings.host,
        port=settings.port,
        username=settings.username or None,
        password=settings.password.reveal() or None,
        use_tls=settings.use_tls,
        start_tls=settings.start_tls if settings.start_tls else False,
        timeout=settings.timeout,
    )


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
        s = self.settings
        smtp = aiosmtplib.SMTP(
            hostname=s.host,
            port=s.port,
            username=s.username or None,
            password=s.password.reveal() or None,
            use_tls=s.use_tls,
            start_tls=s.start_tls if s.start_tls else False,
            timeout=s.timeout,
        )
        await smtp.connect()
        self._smtp = smtp
        return smtp

    async def send(self, message: EmailMessage) -> None:
        """Like `send`; a session the server closed while idle is reopened once."""
        for attempt in (1, 2):
            smtp = await self._open()
            try:
                await smtp.send_message(message)
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

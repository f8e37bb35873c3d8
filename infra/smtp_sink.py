"""An SMTP sink: every message received becomes one `.eml` file a person or a test can read.

    python infra/smtp_sink.py --port 11025 --dir .run/mail

Files are named `<arrival ns>-<uuid>.eml` (sortable by arrival) and written to a temporary name
first, then renamed, so a reader never sees half a message. The envelope is kept in headers
added on top: `X-Envelope-From` and one `X-Envelope-To` per recipient. Any AUTH PLAIN/LOGIN
credentials are accepted, so clients configured for a real provider work unchanged.

Every copy received is kept, a repeated Message-ID included: a sink that stored one copy per
Message-ID (as a mailbox store does) would hide the duplicates the tests are there to count.
Each arrival is also one line of `received.log` (`<arrival ns> <Message-ID> <recipients>`), so
copies per Message-ID can be counted without parsing every file.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import time
import uuid
from email import policy
from email.parser import BytesParser
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, Session


def message_id(content: bytes) -> str | None:
    parsed = BytesParser(policy=policy.compat32).parsebytes(content, headersonly=True)
    value = parsed.get("Message-ID")
    return str(value).strip() if value else None


class SaveToFolder:
    """The aiosmtpd handler: stores each message received (every copy) in `folder`."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def store(self, envelope: Envelope) -> Path:
        head = [f"X-Envelope-From: {envelope.mail_from}"]
        head += [f"X-Envelope-To: {rcpt}" for rcpt in envelope.rcpt_tos]
        content = envelope.original_content or b""
        arrival = time.time_ns()
        data = ("\r\n".join(head) + "\r\n").encode() + content
        name = f"{arrival}-{uuid.uuid4().hex}.eml"
        tmp = self.folder / f".{name}.tmp"
        tmp.write_bytes(data)
        os.replace(tmp, self.folder / name)
        with open(self.folder / "received.log", "a") as log:
            log.write(f"{arrival} {message_id(content) or '-'} {' '.join(envelope.rcpt_tos)}\n")
        return self.folder / name

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        self.store(envelope)
        return "250 Message accepted for delivery"


def accept_any(
    server: Any, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
) -> AuthResult:
    return AuthResult(success=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=11025)
    parser.add_argument("--dir", type=Path, required=True)
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    controller = Controller(
        SaveToFolder(args.dir),
        hostname=args.host,
        port=args.port,
        authenticator=accept_any,
        auth_require_tls=False,
        decode_data=False,
    )
    controller.start()
    print(f"smtp sink on {args.host}:{args.port}, mail in {args.dir}", flush=True)
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.run_until_complete(stop.wait())
    controller.stop()


if __name__ == "__main__":
    main()

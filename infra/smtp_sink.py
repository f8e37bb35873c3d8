"""An SMTP sink: every message received becomes one `.eml` file a person or a test can read.

    python infra/smtp_sink.py --port 11025 --dir .run/mail

Files are named `<arrival ns>-<uuid>.eml` (sortable by arrival) and written to a temporary name
first, then renamed, so a reader never sees half a message. The envelope is kept in headers
added on top: `X-Envelope-From` and one `X-Envelope-To` per recipient. Any AUTH PLAIN/LOGIN
credentials are accepted, so clients configured for a real provider work unchanged.

Like a mailbox store (Gmail, Dovecot's duplicate suppression), the sink keeps one copy per
Message-ID: a second message with a Message-ID it already holds is accepted, not stored again,
and noted in `duplicates.log` (one line per suppressed copy) so tests can still count redeliveries.
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


def _message_id(content: bytes) -> str | None:
    parsed = BytesParser(policy=policy.compat32).parsebytes(content, headersonly=True)
    value = parsed.get("Message-ID")
    return str(value).strip() if value else None


class SaveToFolder:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.seen = {mid for path in folder.glob("*.eml") if (mid := _message_id(path.read_bytes()))}

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        head = [f"X-Envelope-From: {envelope.mail_from}"]
        head += [f"X-Envelope-To: {rcpt}" for rcpt in envelope.rcpt_tos]
        content = envelope.original_content or b""
        message_id = _message_id(content)
        if message_id is not None and message_id in self.seen:
            with open(self.folder / "duplicates.log", "a") as log:
                log.write(f"{time.time_ns()} {message_id} {' '.join(envelope.rcpt_tos)}\n")
            return "250 Message accepted for delivery (duplicate Message-ID, kept once)"
        data = ("\r\n".join(head) + "\r\n").encode() + content
        name = f"{time.time_ns()}-{uuid.uuid4().hex}.eml"
        tmp = self.folder / f".{name}.tmp"
        tmp.write_bytes(data)
        os.replace(tmp, self.folder / name)
        if message_id is not None:
            self.seen.add(message_id)
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

"""An SMTP sink: every message received becomes one `.eml` file a person or a test can read.

    python infra/smtp_sink.py --port 11025 --dir .run/mail

Files are named `<arrival ns>-<uuid>.eml` (sortable by arrival) and written to a temporary name
first, then renamed, so a reader never sees half a message. The envelope is kept in headers
added on top: `X-Envelope-From` and one `X-Envelope-To` per recipient. Any AUTH PLAIN/LOGIN
credentials are accepted, so clients configured for a real provider work unchanged. PIPELINING
is advertised (aiosmtpd reads commands in order from its buffer, so a client may send MAIL,
RCPT and DATA in one write).

Every copy received is kept, a repeated Message-ID included: a sink that stored one copy per
Message-ID (as a mailbox store does) would hide the duplicates the tests are there to count.
Each arrival is also one line of `received.log` (`<arrival ns> <Message-ID> <recipients>`), so
copies per Message-ID can be counted without parsing every file.

It is on the path of every benchmark that sends email, so what it does per message is kept
small (bench.sink_cost measures it): the Message-ID is found by a regular expression over the
header block rather than the email parser, files are written with os.open/os.write rather than
buffered file objects, the server runs on the main thread's event loop (no controller thread),
and the envelope addresses' parse (aiosmtpd's, through the email package's header parser) is
remembered per command argument.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import signal
import socket
import time
import uuid
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, Session

# The header block ends at the first empty line; a message that starts with one has no headers.
_HEADER_END = re.compile(rb"\r?\n\r?\n")
# A Message-ID header at a line's start, with its folded continuation lines (CRLF or LF + WSP).
_MESSAGE_ID = re.compile(rb"^message-id:([^\r\n]*(?:\r?\n[ \t][^\r\n]*)*)", re.IGNORECASE | re.MULTILINE)
_FOLD = re.compile(rb"\r?\n(?=[ \t])")
_CONTROL = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")  # a tab is folding white space
# aiosmtpd keeps a bare CR, a NUL, ... inside a MAIL/RCPT address (only CRLF ends a command)
_ENVELOPE_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _envelope_field(address: str) -> str:
    """An envelope address with any control character replaced by `?`: one header line of the
    `.eml` file, one field of its received.log line."""
    return address if address.isprintable() else _ENVELOPE_CONTROL.sub("?", address)


def _message_id(content: bytes) -> bytes | None:
    """The first Message-ID header's value in the header block, unfolded, trimmed, any control
    character left after unfolding replaced by `?` (so it stays one field of one log line)."""
    if content.startswith((b"\r\n", b"\n")):
        return None
    end = _HEADER_END.search(content)
    found = _MESSAGE_ID.search(content, 0, end.start() if end else len(content))
    if found is None:
        return None
    value = _CONTROL.sub(b"?", _FOLD.sub(b"", found.group(1))).strip(b" \t")
    return value or None


def message_id(content: bytes) -> str | None:
    """The message's Message-ID (as received.log has it), or None."""
    value = _message_id(content)
    return value.decode("utf-8", "surrogateescape") if value is not None else None


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


class SaveToFolder:
    """The aiosmtpd handler: stores each message received (every copy) in `folder`."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._prefix = f"{folder}{os.sep}"
        self._log = f"{self._prefix}received.log"

    def store(self, envelope: Envelope) -> None:
        content = envelope.original_content or b""
        rcpt_tos = [_envelope_field(rcpt) for rcpt in envelope.rcpt_tos]
        head = f"X-Envelope-From: {_envelope_field(str(envelope.mail_from))}\r\n"
        head += "".join(f"X-Envelope-To: {rcpt}\r\n" for rcpt in rcpt_tos)
        arrival = time.time_ns()
        name = f"{arrival}-{uuid.uuid4().hex}.eml"
        tmp = f"{self._prefix}.{name}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        try:
            _write_all(fd, head.encode("utf-8", "surrogateescape") + content)
        finally:
            os.close(fd)
        os.replace(tmp, self._prefix + name)
        line = f"{arrival} ".encode() + (_message_id(content) or b"-")
        line += f" {' '.join(rcpt_tos)}\n".encode("utf-8", "surrogateescape")
        fd = os.open(self._log, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            os.write(fd, line)  # one write with O_APPEND: the line is never interleaved
        finally:
            os.close(fd)

    async def handle_EHLO(
        self, server: Any, session: Session, envelope: Envelope, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname  # this hook's duty (aiosmtpd does it only without the hook)
        return [*responses[:-1], "250-PIPELINING", responses[-1]]

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        self.store(envelope)
        return "250 Message accepted for delivery"


def accept_any(
    server: Any, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
) -> AuthResult:
    return AuthResult(success=True)


_ADDRESSES: dict[str, tuple[str | None, str | None]] = {}  # MAIL/RCPT argument -> aiosmtpd's parse
_ADDRESSES_KEPT = 4096


class SinkSMTP(SMTP):
    """aiosmtpd's server, with the parse of a MAIL/RCPT argument remembered: it goes through the
    email package's header parser, a tenth of the sink's CPU, for the same few addresses again
    and again. The parse is a function of the argument alone (and of the local-part limit, the
    same for every session here); if aiosmtpd stops calling `_getaddr`, this simply never runs."""

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        parsed = _ADDRESSES.get(arg)
        if parsed is None:
            parsed = super()._getaddr(arg)
            if len(_ADDRESSES) >= _ADDRESSES_KEPT:
                _ADDRESSES.clear()
            _ADDRESSES[arg] = parsed
        return parsed


async def start(handler: SaveToFolder, host: str, port: int, hostname: str) -> asyncio.Server:
    """The sink listening on this thread's event loop (port 0: any free port)."""
    return await asyncio.get_running_loop().create_server(
        lambda: SinkSMTP(
            handler, hostname=hostname, authenticator=accept_any, auth_require_tls=False, decode_data=False
        ),
        host,
        port,
    )


async def serve(handler: SaveToFolder, host: str, port: int, hostname: str) -> None:
    """Serve until SIGTERM or SIGINT."""
    server = await start(handler, host, port, hostname)
    print(f"smtp sink on {host}:{port}, mail in {handler.folder}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    server.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=11025)
    parser.add_argument("--dir", type=Path, required=True)
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    # The name in the greeting, looked up once (aiosmtpd would call getfqdn per connection).
    asyncio.run(serve(SaveToFolder(args.dir), args.host, args.port, socket.getfqdn()))


if __name__ == "__main__":
    main()

"""The SMTP sink's contract, on a sink process of the test's own (a fresh folder, a free port):
one `.eml` file per message with the envelope on top, one received.log line per arrival, every
copy kept, any AUTH accepted, and a real SMTP server for smtplib, aiosmtplib and a client that
pipelines. Its Message-ID is found without the email parser: checked against it, odd headers
included."""

from __future__ import annotations

import email
import importlib.util
import smtplib
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

import aiosmtplib
import pytest

from tests.support import ROOT

_spec = importlib.util.spec_from_file_location("smtp_sink", ROOT / "infra" / "smtp_sink.py")
assert _spec is not None and _spec.loader is not None
smtp_sink = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(smtp_sink)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def sink(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, Path]]:
    folder = tmp_path_factory.mktemp("mail")
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "infra" / "smtp_sink.py"), "--port", str(port), "--dir", str(folder)],
        stdout=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, "the sink did not start"
                time.sleep(0.05)
        yield port, folder
    finally:
        proc.terminate()
        proc.wait(10)


def _message(message_id: str, body: str = "hello sink") -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "tests@example.com"
    msg["To"] = "someone@example.com"
    msg["Subject"] = "sink check"
    msg["Message-ID"] = message_id
    msg.set_content(body)
    return msg


def _log(folder: Path) -> list[list[str]]:
    path = folder / "received.log"
    return [line.split(" ") for line in path.read_text().splitlines()] if path.exists() else []


def _stored(folder: Path, message_id: str) -> list[Path]:
    return sorted(p for p in folder.glob("*.eml") if message_id.encode() in p.read_bytes())


def test_each_message_is_one_eml_file_and_one_log_line(sink: tuple[int, Path]) -> None:
    port, folder = sink
    mid = f"<contract-{time.time_ns()}@tests>"
    with smtplib.SMTP("127.0.0.1", port) as smtp:
        smtp.login("any-user", "any-password")
        smtp.sendmail("from@example.com", ["a@example.com", "b@example.com"], _message(mid).as_bytes())
    (path,) = _stored(folder, mid)
    arrival, _, rest = path.name.partition("-")
    assert arrival.isdecimal() and rest.endswith(".eml") and len(rest) == len("0" * 32 + ".eml")
    raw = path.read_bytes()
    envelope = b"X-Envelope-From: from@example.com\r\n"
    envelope += b"X-Envelope-To: a@example.com\r\nX-Envelope-To: b@example.com\r\n"
    assert raw.startswith(envelope)
    parsed = email.message_from_bytes(raw)
    assert parsed["Message-ID"] == mid and parsed.get_payload().strip() == "hello sink"
    assert [arrival, mid, "a@example.com", "b@example.com"] in _log(folder)
    assert not list(folder.glob(".*.tmp"))  # written under a temporary name, then renamed


def test_every_copy_is_kept_and_logged(sink: tuple[int, Path]) -> None:
    port, folder = sink
    mid = f"<twice-{time.time_ns()}@tests>"
    with smtplib.SMTP("127.0.0.1", port) as smtp:
        for _ in range(2):
            smtp.send_message(_message(mid))
    assert len(_stored(folder, mid)) == 2
    assert [line[1] for line in _log(folder)].count(mid) == 2


def test_auth_login_and_plain_are_accepted(sink: tuple[int, Path]) -> None:
    port, folder = sink
    for mechanism in ("LOGIN", "PLAIN"):
        mid = f"<auth-{mechanism}-{time.time_ns()}@tests>"
        with smtplib.SMTP("127.0.0.1", port) as smtp:
            smtp.ehlo()
            smtp.user, smtp.password = "anyone", "anything"
            code, _ = smtp.auth(mechanism, getattr(smtp, f"auth_{mechanism.lower()}"))
            assert code == 235
            smtp.send_message(_message(mid))
        assert len(_stored(folder, mid)) == 1


async def test_aiosmtplib_on_one_session_many_messages(sink: tuple[int, Path]) -> None:
    port, folder = sink
    mids = [f"<aio-{n}-{time.time_ns()}@tests>" for n in range(20)]
    async with aiosmtplib.SMTP(hostname="127.0.0.1", port=port, username="u", password="p") as smtp:
        for mid in mids:
            await smtp.send_message(_message(mid))
    logged = [line[1] for line in _log(folder)]
    assert all(logged.count(mid) == 1 for mid in mids)


def test_pipelining_is_advertised_and_a_pipelined_client_is_answered_in_order(
    sink: tuple[int, Path],
) -> None:
    port, folder = sink
    mid = f"<pipelined-{time.time_ns()}@tests>"
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        reader = conn.makefile("rb")

        def reply() -> list[bytes]:
            lines = [reader.readline()]
            while lines[-1][3:4] == b"-":
                lines.append(reader.readline())
            return lines

        assert reply()[0].startswith(b"220")
        conn.sendall(b"EHLO client.test\r\n")
        assert b"250-PIPELINING\r\n" in reply()
        # MAIL, RCPT and DATA in one write, as RFC 2920 allows; then the data, dot-stuffed.
        conn.sendall(b"MAIL FROM:<p@example.com>\r\nRCPT TO:<q@example.com>\r\nDATA\r\n")
        assert [reply()[0][:3] for _ in range(3)] == [b"250", b"250", b"354"]
        data = f"Message-ID: {mid}\r\nSubject: dots\r\n\r\n..a line that began with a dot\r\n.\r\n"
        conn.sendall(data.encode() + b"QUIT\r\n")
        assert reply()[0].startswith(b"250")
        assert reply()[0].startswith(b"221")
    (path,) = _stored(folder, mid)
    assert path.read_bytes().endswith(b"\r\n\r\n.a line that began with a dot\r\n")
    assert [line[1:] for line in _log(folder) if line[1] == mid] == [[mid, "q@example.com"]]


def test_control_characters_in_the_envelope_stay_inside_one_log_line_and_one_header(
    sink: tuple[int, Path],
) -> None:
    """aiosmtpd takes a bare CR, a NUL or an escape inside a MAIL/RCPT address (only CRLF ends a
    command): the arrival is still one received.log line for a reader that splits lines as
    Python does (splitlines: CR, VT, FF, FS... too), and one X-Envelope header line each."""
    port, folder = sink
    mid = f"<envelope-controls-{time.time_ns()}@tests>"
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        reader = conn.makefile("rb")

        def reply() -> bytes:
            lines = [reader.readline()]
            while lines[-1][3:4] == b"-":
                lines.append(reader.readline())
            return lines[0][:3]

        assert reply() == b"220"
        conn.sendall(b"EHLO client.test\r\n")
        assert reply() == b"250"
        conn.sendall(b"MAIL FROM:<f\x00\x1b@example.com>\r\n")
        assert reply() == b"250"
        for rcpt in (b"<b\rc@example.com>", b"<d\x0be\x1cf@example.com>"):
            conn.sendall(b"RCPT TO:" + rcpt + b"\r\n")
            assert reply() == b"250"
        conn.sendall(b"DATA\r\n")
        assert reply() == b"354"
        conn.sendall(f"Message-ID: {mid}\r\nSubject: s\r\n\r\nbody\r\n.\r\n".encode())
        assert reply() == b"250"
        conn.sendall(b"QUIT\r\n")
    assert [line[1:] for line in _log(folder) if mid in line] == [
        [mid, "b?c@example.com", "d?e?f@example.com"]
    ]
    assert sum(mid in line for line in (folder / "received.log").read_text().splitlines()) == 1
    (path,) = _stored(folder, mid)
    head = path.read_bytes().split(b"\r\n\r\n")[0].split(b"\r\n")
    assert head[:3] == [
        b"X-Envelope-From: f??@example.com",
        b"X-Envelope-To: b?c@example.com",
        b"X-Envelope-To: d?e?f@example.com",
    ]


def test_a_message_without_a_message_id_is_logged_with_a_dash(sink: tuple[int, Path]) -> None:
    port, folder = sink
    marker = f"no-id-{time.time_ns()}"
    with smtplib.SMTP("127.0.0.1", port) as smtp:
        smtp.sendmail("f@example.com", [f"{marker}@example.com"], b"Subject: none\r\n\r\nbody\r\n")
    assert [line[1] for line in _log(folder) if line[2] == f"{marker}@example.com"] == ["-"]


def _parsed(content: bytes) -> str | None:
    value = BytesParser(policy=policy.compat32).parsebytes(content, headersonly=True).get("Message-ID")
    return str(value).strip() if value else None


@pytest.mark.parametrize(
    "content",
    [
        b"From: a@b\r\nMessage-ID: <plain@x>\r\nSubject: s\r\n\r\nbody",
        b"message-id: <lower@x>\r\n\r\n",
        b"MESSAGE-ID:<tight@x>\r\n\r\n",
        b"From: a@b\nMessage-ID:   <lf-only@x>   \nSubject: s\n\nbody",
        b"Subject: s\r\nMessage-ID: <first@x>\r\nMessage-ID: <second@x>\r\n\r\n",
        b"Subject: none here\r\n\r\nMessage-ID: <in-the-body@x>\r\n",
        b"\r\nMessage-ID: <after-a-blank-first-line@x>\r\n",
        b"X-Message-ID: <not-this@x>\r\nSubject: s\r\n\r\n",
        b"Subject: s\r\n References: <folded-into-subject@x>\r\nMessage-ID: <after-fold@x>\r\n\r\n",
        b"Message-ID: <no-body-no-blank-line@x>",
        b"Message-ID:\r\n\r\n",
        b"Message-ID: <a-bare\rcarriage-return@x>\r\n\r\n",
        b"",
    ],
)
def test_the_message_id_is_the_email_parser_s(content: bytes) -> None:
    assert smtp_sink.message_id(content) == _parsed(content)


def test_a_folded_message_id_is_unfolded_onto_one_log_field() -> None:
    assert smtp_sink.message_id(b"Message-ID:\r\n <folded@x>\r\nSubject: s\r\n\r\n") == "<folded@x>"
    assert smtp_sink.message_id(b"Message-ID:\n\t<tab-folded@x>\n\n") == "<tab-folded@x>"


def test_control_characters_in_a_message_id_stay_inside_its_field() -> None:
    assert smtp_sink.message_id(b"Message-ID: <a\x00b\x1bc\x7f@x>\r\n\r\n") == "<a?b?c?@x>"


def test_a_huge_header_block_is_searched_to_its_end_only() -> None:
    head = b"X-Filler: " + b"y" * 200_000 + b"\r\nMessage-ID: <late@x>\r\n\r\n"
    assert smtp_sink.message_id(head + b"Message-ID: <body@x>\r\n" * 10_000) == "<late@x>"


async def test_the_sink_also_serves_on_a_test_s_event_loop(tmp_path: Path) -> None:
    """`start` is the sink without its process (the fault tests' way): same contract."""
    server = await smtp_sink.start(smtp_sink.SaveToFolder(tmp_path), "127.0.0.1", 0, "sink.test")
    try:
        port = server.sockets[0].getsockname()[1]
        async with aiosmtplib.SMTP(hostname="127.0.0.1", port=port) as smtp:
            await smtp.send_message(_message("<on-the-loop@tests>"))
        # the 250 came after the store: both are there
        assert [line[1] for line in _log(tmp_path)] == ["<on-the-loop@tests>"]
        assert len(_stored(tmp_path, "<on-the-loop@tests>")) == 1
    finally:
        server.close()

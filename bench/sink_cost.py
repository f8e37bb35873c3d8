"""What the SMTP sink (`infra/smtp_sink.py`) costs per message: a sink of its own started on a
free port with a fresh folder, `--messages` invoice-like messages sent to it over `--sessions`
sessions kept open (as the worker's senders do, aiosmtplib), and the sink's CPU seconds from
/proc per 1,000 messages (the client's own too, apart).

    .venv/bin/python -m bench.sink_cost --messages 3000 --sessions 4 --rounds 3
    git show main:infra/smtp_sink.py > /tmp/base_sink.py   # A/B: rounds alternate between sinks
    .venv/bin/python -m bench.sink_cost --sink /tmp/base_sink.py --sink infra/smtp_sink.py

Each round starts a fresh sink (its start-up is not counted: CPU is read once it answers) and
checks the contract afterwards: one `.eml` file and one `received.log` line per message.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiosmtplib

from bench.cpu import own_seconds
from bench.processes import free_port
from notifications.mailer import SmtpSettings, compose
from tests.support import ROOT

TEXT = "Invoice 123 for PO cap-100-1\n" + "item 1  x 2  12.00\n" * 5
HTML = "<html><body><h1>Invoice 123</h1>" + "<p>item 1 x 2 12.00</p>" * 5 + "</body></html>"


async def wait_open(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        except OSError:
            await asyncio.sleep(0.05)
    raise SystemExit(f"no sink on port {port}")


async def send_all(port: int, messages: int, sessions: int, recipients: int = 1) -> None:
    settings = SmtpSettings(port=port, message_id_domain="sink.bench")
    outgoing = [
        compose(
            settings,
            to=f"person{n % recipients}@example.com",
            subject=f"Invoice {n}",
            text=TEXT,
            html=HTML,
            message_id=f"<invoice-{n}.1@sink.bench>",
        )
        for n in range(messages)
    ]

    async def session(first: int) -> None:
        smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, username="u", password="p")
        async with smtp:
            for message in outgoing[first::sessions]:
                await smtp.sendmail(message.sender, [message.recipient], message.data)

    await asyncio.gather(*(session(k) for k in range(sessions)))


def check(folder: Path, messages: int) -> None:
    """The contract: one `.eml` file and one received.log line per message."""
    files = len(list(folder.glob("*.eml")))
    lines = len((folder / "received.log").read_text().splitlines())
    if files != messages or lines != messages:
        raise SystemExit(f"the sink kept {files} files and {lines} log lines for {messages} messages")


async def one_round(script: Path, messages: int, sessions: int, recipients: int) -> tuple[float, float]:
    folder = Path(tempfile.mkdtemp(prefix="sink-cost-"))
    port = free_port()
    sink = subprocess.Popen(
        [sys.executable, str(script), "--port", str(port), "--dir", str(folder)],
        stdout=subprocess.DEVNULL,
    )
    try:
        await wait_open(port)
        sink_before, own_before = own_seconds(sink.pid), time.process_time()
        await send_all(port, messages, sessions, recipients)
        sink_cpu, client_cpu = own_seconds(sink.pid) - sink_before, time.process_time() - own_before
    finally:
        sink.terminate()
        sink.wait(10)
    check(folder, messages)
    return sink_cpu * 1000 / messages, client_cpu * 1000 / messages


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=3000)
    parser.add_argument("--sessions", type=int, default=4, help="sessions kept open, as the worker's senders")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--recipients", type=int, default=1, help="distinct recipients (bench.capacity: one customer)"
    )
    parser.add_argument(
        "--sink",
        type=Path,
        action="append",
        help="the sink's script (default infra/smtp_sink.py); several: each round runs each in turn",
    )
    args = parser.parse_args()
    scripts = args.sink or [ROOT / "infra" / "smtp_sink.py"]
    sink: dict[Path, list[float]] = {script: [] for script in scripts}
    client: dict[Path, list[float]] = {script: [] for script in scripts}
    for n in range(args.rounds):
        for script in scripts:
            s, c = await one_round(script, args.messages, args.sessions, args.recipients)
            sink[script].append(s)
            client[script].append(c)
            print(f"round {n + 1} {script}: sink {s:.3f}, client {c:.3f} CPU s / 1,000 messages", flush=True)
    for script in scripts:
        print(
            f"{script}: sink median {statistics.median(sink[script]):.3f} CPU s per 1,000 messages"
            f" (min {min(sink[script]):.3f}); client median {statistics.median(client[script]):.3f}"
        )


if __name__ == "__main__":
    asyncio.run(main())

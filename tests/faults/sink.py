"""An SMTP server the fault tests control: the project's sink (every copy kept, as a person reads
it in `.eml` files), served on the test's own event loop so a test can refuse connections, refuse
a recipient with a 5xx, or hold a message at the moment it chooses:

- `hold("store")`: messages wait before they are stored; a sender killed meanwhile never
  delivered (its connection drops, the message is not kept): the kill lands in `sending`.
- `hold("reply")`: messages are stored, then wait for their `250`: a sender killed meanwhile is
  the documented crash window (the server has the message, the worker never heard so).
"""

from __future__ import annotations

import asyncio
import importlib.util
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

from tests.support import ROOT

_spec = importlib.util.spec_from_file_location("smtp_sink", ROOT / "infra" / "smtp_sink.py")
assert _spec is not None and _spec.loader is not None
smtp_sink = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(smtp_sink)


class FaultySink(smtp_sink.SaveToFolder):  # type: ignore[misc, name-defined]
    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        super().__init__(folder)
        self.refused: set[str] = set()  # recipients answered 550
        self.mode: str | None = None  # None, "store" or "reply"
        self._open = asyncio.Event()
        self._open.set()
        self.held_peers: list[int] = []  # the client port of each message held at the gate now
        self.stored_while_held: list[str] = []  # Message-IDs stored whose 250 was held
        self.port = 0
        self._server: asyncio.Server | None = None
        self._sessions: set[SMTP] = set()

    # --- the SMTP server -------------------------------------------------------------------
    async def start(self) -> None:
        sink = self

        class Tracked(SMTP):
            def connection_made(self, transport: Any) -> None:
                sink._sessions.add(self)
                super().connection_made(transport)

            def connection_lost(self, error: Exception | None) -> None:
                sink._sessions.discard(self)
                super().connection_lost(error)

        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: Tracked(
                self,
                hostname="faults.test",
                authenticator=smtp_sink.accept_any,
                auth_require_tls=False,
                decode_data=False,
            ),
            "127.0.0.1",
            self.port,
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Close the port (new connections are refused) and close every open session after what
        it has written (a `250` already given still reaches its client; dropping it would be a
        server crash between storing and answering, the window no SMTP client can close)."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for session in list(self._sessions):
            if session.transport is not None:
                session.transport.close()
        self._sessions.clear()

    # --- faults ----------------------------------------------------------------------------
    def hold(self, mode: str) -> None:
        assert mode in ("store", "reply")
        self.mode = mode
        self._open.clear()

    def release(self) -> None:
        self.mode = None
        self._open.set()

    async def handle_RCPT(
        self, server: Any, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        if address in self.refused:
            return "550 5.1.1 mailbox unavailable (refused by the fault test)"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        mode = self.mode if not self._open.is_set() else None
        if mode == "store":
            await self._wait(session)  # cancelled if the sender dies: nothing is stored
        self.store(envelope)
        if mode == "reply":
            self.stored_while_held.append(smtp_sink.message_id(envelope.original_content or b""))
            await self._wait(session)
        return "250 Message accepted for delivery"

    @property
    def waiting(self) -> int:
        return len(self.held_peers)

    async def _wait(self, session: Session) -> None:
        port = int(session.peer[1]) if isinstance(session.peer, tuple) else 0
        self.held_peers.append(port)
        try:
            await self._open.wait()
        finally:
            self.held_peers.remove(port)

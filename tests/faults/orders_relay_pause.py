"""`python -m orders` whose outbox relay, once the file named by FAULT_PAUSE_AFTER_PUBLISH
exists, stops between Kafka's acknowledgement of a batch and the DELETE of its rows (and says so
in `<that file>.paused`), so a test can kill -9 it exactly there. A test hook, not a service."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

from kafka_integration import relay
from orders.__main__ import main

_send_all = relay.OutboxRelay._send_all


async def _send_all_then_pause(self: relay.OutboxRelay, rows: list[Any]) -> list[Any]:
    outcomes = await _send_all(self, rows)  # each row's outcome: the relay reads them
    trigger = Path(os.environ["FAULT_PAUSE_AFTER_PUBLISH"])
    if trigger.exists():
        Path(f"{trigger}.paused").write_text(",".join(str(r["id"]) for r in rows))
        await asyncio.sleep(3600)
    return outcomes


relay.OutboxRelay._send_all = _send_all_then_pause  # type: ignore[method-assign]

if __name__ == "__main__":
    main()

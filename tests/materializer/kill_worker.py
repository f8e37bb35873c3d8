"""Run the seed's orders_created join until killed: the subprocess of the kill -9 test.

GROUP_ID=... STATE_DIR=... KAFKA_TOPIC_PREFIX=... python -m tests.materializer.kill_worker
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from kafka_integration import KafkaSettings
from materializer import Materializer, MaterializerSettings
from tests.materializer.topologies import seed_topology

# How long (record time) a parked order waits for its customer. The parked-kill test produces
# the late customers only once this worker has joined the first 1,000 orders: a gap of wall
# time that grows with the machine's load (starting the process, joining the group, the orders);
# with the default 30 s, a machine slow enough to take longer would dead-letter the late orders
# instead of joining them. Beyond the test's own 90 s deadline for that progress, it is never what decides.
JOIN_WAIT_SECONDS = 600.0


async def main() -> None:
    settings = MaterializerSettings(
        kafka=KafkaSettings.from_env(os.environ, client_id="kill-worker"),
        group_id=os.environ["GROUP_ID"],
        state_dir=Path(os.environ["STATE_DIR"]),
        session_timeout_ms=6000,
        join_wait_seconds=JOIN_WAIT_SECONDS,
        create_topics=False,
    )
    async with Materializer(seed_topology(), settings):
        print("started", flush=True)
        await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main())

"""The peers of the materializer on the seed's `orders_created` join, one module each, each the
way its own documentation prescribes (bench/README.md says which settings and where they come
from). Each is started by `bench.materializer_join` as `python -m bench.peers.<name>_join
--bootstrap HOST:PORT --prefix PREFIX --workdir DIR` and runs until it is stopped: the driver
watches the peer's output topic `<prefix><name>_orders_created` and checks what it wrote."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class PeerArgs:
    bootstrap: str  # host:port
    prefix: str  # of every topic of the run
    workdir: Path  # the peer's own state folder

    def topic(self, name: str) -> str:
        return f"{self.prefix}{name}"


def peer_args(engine: str) -> PeerArgs:
    parser = argparse.ArgumentParser(prog=f"bench.peers.{engine}_join")
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--prefix", required=True)
    parser.add_argument("--workdir", required=True, type=Path)
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    return PeerArgs(bootstrap=args.bootstrap, prefix=args.prefix, workdir=args.workdir)


def output_topic(engine: str) -> str:
    """The logical name of a peer's output topic (the materializer writes `orders_created`)."""
    return f"{engine}_orders_created"


# The output field holding the order's id, where it is not "id" (Pathway reserves the name `id`).
ID_FIELDS = {"pathway": "order_id"}

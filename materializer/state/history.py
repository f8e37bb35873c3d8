"""The versions of one key, as Kafka Streams' versioned stores keep them (KIP-889).

Besides its latest row (what pull queries read), each key keeps its `History`, the versions by
record timestamp (a deletion is a version too). A version is dropped once a newer one is older
than the table's stream time (the largest timestamp it has seen) minus the retention; the version
valid at that boundary is kept, so an old lookup still finds the oldest version kept.
`History.as_of(ts)` is the version valid at `ts`.
"""

from __future__ import annotations

from typing import Any

import orjson

Row = dict[str, Any]

DEFAULT_RETENTION_MS = 3_600_000


class History:
    """The versions of one key, oldest first: `(timestamp, row or None for deleted)`. `pruned`
    tells that older versions were dropped (a lookup before the oldest kept one is then too old
    to answer exactly, not a time before the key existed)."""

    __slots__ = ("pruned", "versions")

    def __init__(self, versions: list[tuple[int, Row | None]] | None = None, pruned: bool = False) -> None:
        self.versions = versions if versions is not None else []
        self.pruned = pruned

    def as_of(self, ts: int) -> tuple[Row | None, bool]:
        """The row valid at `ts` (the latest version with timestamp <= ts), and whether `ts` is
        before the history kept (then the oldest version kept is given)."""
        versions = self.versions
        if versions and versions[-1][0] <= ts:  # the common case: the latest version
            return versions[-1][1], False
        found: Row | None = None
        hit = False
        for at, row in versions:  # short lists: a scan beats bisect's key building
            if at > ts:
                break
            found, hit = row, True
        if not hit and self.pruned and versions:  # nothing kept at or before ts
            return versions[0][1], True
        return found, False

    def times(self, after: int, until: int) -> list[int]:
        """Timestamps of the versions in (after, until]."""
        return [at for at, _ in self.versions if after < at <= until]

    def add(self, ts: int, row: Row | None, boundary: int) -> None:
        """Insert the version of time `ts` (one of the same time is replaced: the later record
        wins), then drop the versions superseded at or before `boundary`."""
        versions = self.versions
        i = len(versions)
        while i and versions[i - 1][0] > ts:
            i -= 1
        if i and versions[i - 1][0] == ts:
            versions[i - 1] = (ts, row)
        else:
            versions.insert(i, (ts, row))
        while len(versions) > 1 and versions[1][0] <= boundary:
            del versions[0]
            self.pruned = True

    def expired(self, boundary: int) -> bool:
        """The key was deleted before the boundary: its whole history can be forgotten."""
        return bool(self.versions) and self.versions[-1][1] is None and self.versions[-1][0] <= boundary

    def encode(self) -> bytes:
        return orjson.dumps({"p": self.pruned, "v": self.versions})

    @classmethod
    def decode(cls, raw: bytes) -> History:
        data = orjson.loads(raw)
        return cls(list(map(tuple, data["v"])), bool(data["p"]))  # map: no Python loop per version

    def copy(self) -> History:
        return History(list(self.versions), self.pruned)

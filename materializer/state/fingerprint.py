"""The one check that state belongs to the topology reading it, else a wipe for a rebuild."""

from __future__ import annotations

import logging

from materializer.state.store import Store

log = logging.getLogger(__name__)


def restore(store: Store, fingerprint: str, *, stale: bool = False) -> bool:
    """Make `store` hold the state of the topology with `fingerprint`. It is kept when it was
    written for that topology; it is wiped when it was written for another one, when it holds
    offsets but no fingerprint (its origin is unknown), or when the caller found it `stale` (its
    offsets are past the topics' end). Returns whether it was wiped: the tables are then rebuilt
    from the beginning of the topics."""
    found = store.fingerprint()
    wipe = stale or (found != fingerprint and (found is not None or bool(store.offsets())))
    if wipe:
        if not stale:
            log.warning("state was made for another topology: rebuilding from the topics")
        store.wipe()
    if wipe or found != fingerprint:
        store.set_fingerprint(fingerprint)
    return wipe

"""A write of one row and its event in one autocommitted statement: the row's INSERT (or UPDATE)
as a CTE, the outbox INSERT whose value PostgreSQL writes from the row, and the relay's wake-up.

    CREATED = RowEventWrite(
        "INSERT INTO customers (name, email) VALUES ($1, $2) RETURNING *",
        topic="customers", entity="customer", action="created",
        columns=(("id", "int"), ("name", "text"), ("email", "text"), ("created_at", "timestamptz")),
    )
    row = await CREATED.run(pool, ["John", "jdo@example.com"], known={"name": "John", ...})

One round trip where `unit_of_work` takes four (BEGIN, the write, the outbox INSERT, COMMIT), with
the same guarantees: one statement is one transaction, so the row and its event commit together
or not at all (nothing lost on a crash, nothing published before the commit), and a later write
of the row waits for this one's lock, so its event gets a larger outbox id (per-key order).

The value is the row plus `action`, written by SQL in the events' own encoding
(`kafka_integration.encoding.dumps`): the keys in the order of `columns`, which must be the
table's column order (the order of `RETURNING *`), no whitespace, text escaped by `to_json`,
timestamps in UTC with microseconds only when not zero and a `Z`. Only the column kinds below are
supported; a test compares the bytes with `dumps` of the returned row.

The headers (type, id, time) are made in Python as for any event. The size limit is checked before
the statement on the event with the row's known fields and the longest values the database can
give the others (a bigint id of 19 digits, timestamps with microseconds), so the check is never
looser than `UnitOfWork.emit`'s; that event is encoded only when a bound from the texts' lengths
does not already prove it small enough.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any, Literal

import asyncpg
import orjson

from kafka_integration.errors import EventTooLarge
from kafka_integration.events import Event, entity_event
from kafka_integration.outbox import check_size, committed, current_max_event_bytes

Kind = Literal["int", "text", "timestamptz"]
_PLACEHOLDER = re.compile(r"\$(\d+)")
# The longest values the database can put in a column of each kind (for the size check); text
# columns are given by the caller (`known`).
_LONGEST: dict[str, Any] = {
    "int": -(2**63),
    "timestamptz": dt.datetime(2000, 1, 1, 0, 0, 0, 1, tzinfo=dt.UTC),
}


def _json_timestamp(column: str) -> str:
    """SQL of a timestamptz as `dumps` writes a datetime: 2026-11-26T15:28:48.123456Z, or
    2026-11-26T15:28:48Z when the microseconds are zero."""
    utc = f"({column} AT TIME ZONE 'UTC')"
    # to_char gives NULL for +-infinity, which asyncpg reads as datetime.max and .min (naive).
    return (
        f"""CASE WHEN {column} = 'infinity' THEN '"9999-12-31T23:59:59.999999"' """
        f"""WHEN {column} = '-infinity' THEN '"0001-01-01T00:00:00"' """
        f"""ELSE '"' || to_char({utc}, 'YYYY-MM-DD"T"HH24:MI:SS') """
        f"""|| CASE WHEN date_part('microseconds', {utc})::bigint % 1000000 = 0 THEN '' """
        f"""ELSE to_char({utc}, '.US') END || 'Z"' END"""
    )


def _json_value(column: str, kind: Kind) -> str:
    if kind == "int":
        text = f"{column}::text"
    elif kind == "text":
        text = f"to_json({column})::text"
    elif kind == "timestamptz":
        text = _json_timestamp(column)
    else:
        raise ValueError(f"unsupported column kind {kind!r}")
    return f"COALESCE({text}, 'null')"


def json_object_sql(alias: str, columns: Sequence[tuple[str, Kind]], extra: Mapping[str, str]) -> str:
    """SQL text of the JSON object of `alias`'s columns followed by the `extra` constant members,
    as `dumps` writes it."""
    parts = []
    for n, (name, kind) in enumerate(columns):
        key = orjson.dumps(name).decode()
        parts.append(f"'{'{' if n == 0 else ','}{key}:' || {_json_value(f'{alias}.{name}', kind)}")
    tail = "".join(f",{orjson.dumps(k).decode()}:{orjson.dumps(v).decode()}" for k, v in extra.items()) + "}"
    parts.append("'" + tail.replace("'", "''") + "'")
    return " || ".join(parts)


class RowEventWrite:
    """One statement that writes a row (`write_sql`, ending in `RETURNING *`, its arguments $1..$n)
    and its `<entity>_<action>` event on `topic`, keyed by the row's id."""

    def __init__(
        self,
        write_sql: str,
        *,
        topic: str,
        entity: str,
        action: str,
        columns: Sequence[tuple[str, Kind]],
    ) -> None:
        if columns[0] != ("id", "int"):
            raise ValueError("the first column must be the id (the event's key)")
        self.topic, self.entity, self.action = topic, entity, action
        self.columns = tuple(columns)
        self._text = [name for name, kind in columns if kind == "text"]
        # The size of the event with empty texts and the longest other values, its event time
        # written with microseconds, plus room for the record's varints growing with the value.
        empty = {name: "" if kind == "text" else _LONGEST[kind] for name, kind in columns}
        longest_time = dt.datetime(2000, 1, 1, 0, 0, 0, 1, tzinfo=dt.UTC)
        self._size_without_text = (
            replace(entity_event(topic, entity, action, empty), time=longest_time).size() + 16
        )
        n = max((int(m) for m in _PLACEHOLDER.findall(write_sql)), default=0)
        self.sql = f"""
            WITH written AS ({write_sql}),
            ins AS (
                INSERT INTO kafka_outbox (topic, key, value, headers)
                SELECT ${n + 1}, written.id::text,
                       convert_to({json_object_sql("written", columns, {"action": action})}, 'UTF8'),
                       ${n + 2}::text::jsonb
                FROM written
                RETURNING id
            )
            SELECT written.*, ins.id AS outbox_id
            FROM written, ins, (SELECT pg_notify('kafka_outbox_' || current_schema(), '')) AS wake
        """

    async def run(
        self, pool: asyncpg.Pool, args: Sequence[Any], known: Mapping[str, Any]
    ) -> dict[str, Any] | None:
        """Write; the row as written (None if the write matched no row). `known`: the row's
        values the caller gives (the text columns at least), for the size check. The outbox id
        joins the current request's pending list after the commit (DeliverMessages waits for it)."""
        limit = current_max_event_bytes()
        event = Event(self.topic, "", None, f"{self.entity}_{self.action}")  # its headers
        # A JSON-encoded character takes at most 6 bytes (\u001f): under the limit with room to
        # spare, the exact size (an encoding of the row) is not needed.
        if self._size_without_text + 6 * sum(len(known[name]) for name in self._text) > limit:
            longest = {
                name: known[name] if kind == "text" or name in known else _LONGEST[kind]
                for name, kind in self.columns
            }
            try:
                check_size(
                    replace(entity_event(self.topic, self.entity, self.action, longest), id=event.id), limit
                )
            except EventTooLarge as exc:
                if "id" in known:
                    raise
                # The key is the stand-in of an id not yet given: say so rather than show it.
                raise EventTooLarge(self.topic, f"(the new {self.entity})", exc.size, limit) from None
        headers = orjson.dumps(event.metadata()).decode()
        found = await pool.fetchrow(self.sql, *args, self.topic, headers)
        if found is None:
            return None
        row = dict(found)
        committed([row.pop("outbox_id")])
        return row

"""A catalog described as ksqlDB's EXPLAIN and DESCRIBE would: sources, tables, joins, outputs, topics."""

from __future__ import annotations

from materializer.sql.catalog import Catalog, Column, FilteredView, JoinedDecl, LatestTable, SourceStream


def explain(catalog: Catalog) -> str:
    lines: list[str] = []
    for d in catalog.declarations.values():
        if isinstance(d, SourceStream):
            parts = f", {d.partitions} partition(s) declared" if d.partitions else ""
            lines.append(f"STREAM {d.name} ({d.field}): source, reads topic {d.topic!r} (JSON{parts})")
            lines.extend(_columns(d.columns))
        elif isinstance(d, LatestTable):
            lines.append(
                f"TABLE {d.name} ({d.field}): LATEST_BY_OFFSET per column from {d.source.name} "
                f"(topic {d.topic!r}), GROUP BY {d.key.name} (the message key), nulls ignored, "
                "tombstones delete"
            )
            lines.extend(_columns(d.columns, key=d.key))
        elif isinstance(d, FilteredView):
            where = f" WHERE {d.where_sql}" if d.where_sql else ""
            lines.append(f"TABLE {d.name} ({d.field}): view of {d.source.name}{where}")
            lines.extend(_columns(d.columns, key=d.key))
        elif isinstance(d, JoinedDecl):
            lines.append(f"STREAM {d.name} ({d.field}): from {d.source.name} (topic {d.source.topic!r})")
            for j in d.joins:
                taken = ", ".join(c.name if c.field == out else f"{c.name} AS {out}" for out, c in j.selected)
                lines.append(
                    f"  {j.kind.upper()} JOIN {j.table.name} ON {d.source.name}.{j.on.name} = "
                    f"{j.table.name}.{j.table.key.name}: {taken}"
                )
            if d.where_sql:
                lines.append(f"  WHERE {d.where_sql}")
            lines.append(f"  writes topic {d.topic!r}; output columns: {', '.join(d.output_columns())}")
    lines.extend(f"note: {n}" for n in catalog.notes)
    return "\n".join(lines)


def _columns(columns: tuple[Column, ...], key: Column | None = None) -> list[str]:
    return [
        f"  {c.name:<24} {c.sql_type}{'  (key)' if c is key else ''}"
        + (f"  field {c.field!r}" if c.field != c.name.lower() else "")
        for c in columns
    ]

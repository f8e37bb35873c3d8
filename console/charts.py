"""The 15-minute charts, drawn as SVG on the server: nothing fetched from elsewhere. The flow page
replaces them live with the ones its stream sends (console.js)."""

from __future__ import annotations

from collections.abc import Sequence

from markupsafe import Markup, escape

WIDTH, HEIGHT = 300, 60
MAX_POINTS = WIDTH // 2  # a point every 2 px is as fine as the chart shows


def downsampled(points: Sequence[tuple[float, float | None]]) -> list[tuple[float, float | None]]:
    """At most MAX_POINTS points: consecutive points in buckets, each bucket's largest value
    (a spike stays visible), None when none of them is known."""
    if len(points) <= MAX_POINTS:
        return list(points)
    size = -(-len(points) // MAX_POINTS)
    out: list[tuple[float, float | None]] = []
    for start in range(0, len(points), size):
        bucket = points[start : start + size]
        known = [v for _, v in bucket if v is not None]
        out.append((bucket[-1][0], max(known) if known else None))
    return out


def line_chart(title: str, points: Sequence[tuple[float, float | None]], unit: str = "") -> Markup:
    """A small line chart of (time, value) points; gaps where a value is unknown."""
    points = downsampled(points)
    known = [(t, v) for t, v in points if v is not None]
    label = escape(title)
    if len(known) < 2:
        return Markup(
            f'<svg class="chart" role="img" aria-label="{label}" viewBox="0 0 {WIDTH} {HEIGHT}">'
            f'<text x="4" y="34">{label}: not enough samples yet</text></svg>'
        )
    t0, t1 = known[0][0], known[-1][0]
    top = max(v for _, v in known) or 1.0
    span = (t1 - t0) or 1.0
    segments: list[list[str]] = [[]]
    for t, v in points:
        if v is None:
            segments.append([])
            continue
        x = (t - t0) / span * (WIDTH - 2) + 1
        y = HEIGHT - 12 - v / top * (HEIGHT - 16)
        segments[-1].append(f"{x:.1f},{y:.1f}")
    lines = "".join(f'<polyline points="{" ".join(s)}"/>' for s in segments if len(s) > 1)
    last = known[-1][1]
    return Markup(
        f'<svg class="chart" role="img" aria-label="{label}" viewBox="0 0 {WIDTH} {HEIGHT}">'
        f'<g class="line">{lines}</g>'
        f'<text x="2" y="{HEIGHT - 1}">{label}: {last:.2f}{escape(unit)} (max {top:.2f})</text></svg>'
    )

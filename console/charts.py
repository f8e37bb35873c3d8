"""The 15-minute charts, drawn as SVG on the server: nothing fetched from elsewhere.

A chart's coordinates are the samples' own: x in seconds since `origin` (the console's start:
SVG coordinates are single-precision floats, too coarse for seconds since the epoch), y the value
negated (so larger is higher); its viewBox shows the last `span` seconds and 0 up to a little above the
largest value, stretched to the chart's box (`preserveAspectRatio="none"`, strokes kept thin by
CSS). So the open page moves a chart on by appending the new sample's point and shifting the
viewBox (console.js): the live stream carries one number per chart and sample, not the charts."""

from __future__ import annotations

from collections.abc import Sequence

from markupsafe import Markup, escape

MAX_POINTS = 150  # a point every 2 px of a 300 px chart is as fine as it shows
HEADROOM = 1.1  # the top of a chart, over its largest value


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


def line_chart(
    name: str,
    title: str,
    points: Sequence[tuple[float, float | None]],
    span: float,
    origin: float,
    unit: str = "",
) -> Markup:
    """The chart of series `name`: a line of its (time, value) points over the last `span`
    seconds, broken where a value is unknown, and a caption with the latest value and the largest."""
    points = downsampled(points)
    known = [v for _, v in points if v is not None]
    end = points[-1][0] - origin if points else 0.0
    top = max(known, default=0.0) or 1.0
    segments: list[list[str]] = [[]]
    for t, v in points:
        if v is None:
            segments.append([])
        else:
            segments[-1].append(f"{t - origin:.1f},{-v:.6g}")
    lines = "".join(f'<polyline points="{" ".join(s)}"/>' for s in segments if s)
    label, unit_text = escape(title), escape(unit)
    caption = (
        f"{label}: {known[-1]:.2f}{unit_text} (max {top:.2f})"
        if len(known) >= 2
        else f"{label}: not enough samples yet"
    )
    return Markup(
        f'<figure class="chart" data-chart="{escape(name)}" data-title="{label}" data-unit="{unit_text}"'
        f' data-span="{span:g}"><svg role="img" aria-label="{label}" preserveAspectRatio="none"'
        f' viewBox="{end - span:.1f} {-top * HEADROOM:.6g} {span:g} {top * HEADROOM:.6g}">{lines}</svg>'
        f"<figcaption>{caption}</figcaption></figure>"
    )

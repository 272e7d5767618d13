"""Small charts for the dashboard, drawn on the server as SVG.

No script and no inline style (the pages' CSP is `default-src 'self'`): every colour comes from classes in
tagtrail.css, so dark mode and print follow the stylesheet. Every chart has a title for screen readers
(`role="img"`, `<title>`) and the rows it was drawn from, which the page shows as a table behind it. Every
text that comes from data is escaped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo

from markupsafe import Markup, escape

from tagtrail.features.insights import Event

WIDTH, HEIGHT = 480, 180  # a phone shows it at ~0.7 scale, a desktop column at ~1.2: text stays readable
PAD_LEFT, PAD_BOTTOM, PAD_TOP = 34, 26, 10
# lead time buckets: their upper bounds and labels
LEAD_BUCKETS: tuple[tuple[timedelta | None, str], ...] = (
    (timedelta(hours=1), "< 1h"),
    (timedelta(hours=4), "1–4h"),
    (timedelta(hours=12), "4–12h"),
    (timedelta(days=1), "12–24h"),
    (timedelta(days=3), "1–3d"),
    (timedelta(days=7), "3–7d"),
    (None, "> 7d"),
)


@dataclass(frozen=True)
class Chart:
    """An SVG and the table behind it (header, rows)."""

    id: str
    title: str
    svg: Markup
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    stacked: bool = False  # deploys and restores: the page shows the key


def _bucket_days(days: float) -> tuple[int, str]:
    if days <= 60:
        return 1, "day"
    if days <= 420:
        return 7, "week"
    return 28, "4 weeks"


def deploys_over_time(
    chart_id: str,
    events: Sequence[Event],
    start: datetime,
    end: datetime,
    title: str,
    *,
    zone: tzinfo = UTC,
) -> Chart:
    """Deploys per day (or week) as bars; restores (rollbacks, pins to an older build) stacked on them in
    red, so the timeline shows when something was rolled back. Buckets are calendar days in `zone` (weeks
    of them from the window's first day): a deploy is drawn on the date it happened there, whatever the
    time of day the window started."""
    first, last = start.astimezone(zone).date(), end.astimezone(zone).date()
    size, unit = _bucket_days((end - start).total_seconds() / 86400)
    count = (last - first).days // size + 1
    deploys = [0] * count
    restores = [0] * count
    for event in events:
        index = min(count - 1, max(0, (event.time.astimezone(zone).date() - first).days // size))
        if event.kind == "deploy":
            deploys[index] += 1
        elif event.kind == "restore":
            restores[index] += 1
    labels = [f"{first + timedelta(days=size * i):%Y-%m-%d}" for i in range(count)]
    full = f"{title} per {unit}"
    svg = _bars(chart_id, full, labels, deploys, restores)
    rows = tuple(
        (label, str(d), str(r)) for label, d, r in zip(labels, deploys, restores, strict=True) if d or r
    )
    return Chart(chart_id, full, svg, (f"{unit.capitalize()} from", "Deploys", "Restores"), rows, True)


def lead_time_distribution(chart_id: str, events: Sequence[Event], title: str) -> Chart:
    """How many deploys had a lead time in each bucket."""
    counts = [0] * len(LEAD_BUCKETS)
    for event in events:
        if event.kind != "deploy" or event.lead is None:
            continue
        index = next(i for i, (bound, _) in enumerate(LEAD_BUCKETS) if bound is None or event.lead < bound)
        counts[index] += 1
    labels = [label for _, label in LEAD_BUCKETS]
    svg = _bars(chart_id, title, labels, counts, None, every_label=True)
    rows = tuple((label, str(n)) for label, n in zip(labels, counts, strict=True))
    return Chart(chart_id, title, svg, ("Lead time", "Deploys"), rows)


def _bars(
    chart_id: str,
    title: str,
    labels: Sequence[str],
    values: Sequence[int],
    marks: Sequence[int] | None,
    *,
    every_label: bool = False,
) -> Markup:
    top = max([v + (marks[i] if marks else 0) for i, v in enumerate(values)] + [1])
    plot_w, plot_h = WIDTH - PAD_LEFT - 6, HEIGHT - PAD_BOTTOM - PAD_TOP
    step = plot_w / len(values)
    bar_w = max(step * 0.75, 1.0)
    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-labelledby="{chart_id}-title"'
        ' focusable="false">',
        f'<title id="{chart_id}-title">{escape(title)}</title>',
    ]
    for fraction in (0.5, 1.0):
        y = PAD_TOP + plot_h * (1 - fraction)
        parts.append(f'<line class="grid" x1="{PAD_LEFT}" x2="{WIDTH - 6}" y1="{y:.1f}" y2="{y:.1f}"/>')
        parts.append(f'<text class="axis" x="{PAD_LEFT - 4}" y="{y + 4:.1f}" text-anchor="end">')
        parts.append(f"{_number(top * fraction)}</text>")
    base = PAD_TOP + plot_h
    parts.append(f'<line class="baseline" x1="{PAD_LEFT}" x2="{WIDTH - 6}" y1="{base}" y2="{base}"/>')
    for i, value in enumerate(values):
        x = PAD_LEFT + i * step + (step - bar_w) / 2
        h = plot_h * value / top
        if value:
            parts.append(
                f'<rect class="bar" x="{x:.1f}" y="{base - h:.1f}" width="{bar_w:.1f}" height="{h:.1f}">'
                f"<title>{escape(labels[i])}: {value}</title></rect>"
            )
        if marks and marks[i]:
            above = plot_h * marks[i] / top
            parts.append(
                f'<rect class="mark" x="{x:.1f}" y="{base - h - above:.1f}" width="{max(bar_w, 2.5):.1f}"'
                f' height="{above:.1f}"><title>{escape(labels[i])}: {marks[i]} restored</title></rect>'
            )
    shown = range(len(labels)) if every_label else _label_positions(len(labels))
    for i in shown:
        x = PAD_LEFT + i * step + step / 2
        parts.append(
            f'<text class="axis" x="{x:.1f}" y="{HEIGHT - 8}" text-anchor="middle">{escape(labels[i])}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 (every data text above is escaped)


def _label_positions(count: int) -> list[int]:
    if count <= 4:
        return list(range(count))
    return sorted({0, count // 3, 2 * count // 3, count - 1})


def _number(value: float) -> str:
    return str(int(value)) if value == int(value) else f"{value:.1f}"

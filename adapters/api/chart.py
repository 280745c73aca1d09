"""The dashboard's chart: average rating and success rate of each version, in the order the
versions were made, as inline SVG (server-rendered; no script, no CDN; scales to the
screen through its viewBox)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from html import escape

WIDTH, HEIGHT = 520, 250
LEFT, RIGHT, TOP, BOTTOM = 50, 58, 14, 52
RATING_COLOR, SUCCESS_COLOR = "#2563eb", "#16a34a"


@dataclass(frozen=True)
class ChartPoint:
    version: int
    at: datetime | None  # when the version was made
    average: float | None  # average rating 1–5 (None: not rated yet)
    success: float | None  # share of ratings 4–5
    ratings: int


def _x(index: int, count: int) -> float:
    width = WIDTH - LEFT - RIGHT
    return LEFT + (width / 2 if count == 1 else index * width / (count - 1))


def _y_rating(rating: float) -> float:
    return TOP + (5 - rating) / 4 * (HEIGHT - TOP - BOTTOM)


def _y_share(share: float) -> float:
    return TOP + (1 - share) * (HEIGHT - TOP - BOTTOM)


def _grid() -> list[str]:
    parts = []
    for rating in range(1, 6):
        y = _y_rating(rating)
        share = (rating - 1) / 4
        parts.append(f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" '
                     f'y2="{y:.1f}"/>')
        parts.append(f'<text class="axis" x="{LEFT - 8}" y="{y + 4:.1f}" '
                     f'text-anchor="end">{rating}</text>')
        parts.append(f'<text class="axis" x="{WIDTH - RIGHT + 8}" y="{y + 4:.1f}">'
                     f'{share:.0%}</text>')
    return parts


def _labels(points: list[ChartPoint]) -> list[str]:
    parts = []
    for i, point in enumerate(points):
        x = _x(i, len(points))
        when = point.at.strftime("%m-%d %H:%M") if point.at else ""
        parts.append(f'<text class="axis" x="{x:.1f}" y="{HEIGHT - BOTTOM + 18}" '
                     f'text-anchor="middle">v{point.version}</text>')
        parts.append(f'<text class="axis small" x="{x:.1f}" y="{HEIGHT - BOTTOM + 34}" '
                     f'text-anchor="middle">{escape(when)}</text>')
    return parts


def _series(points: list[ChartPoint], name: str, color: str) -> list[str]:
    """One line through the rated versions, a dot with a tooltip on each."""
    coords: list[tuple[float, float, str]] = []
    for i, point in enumerate(points):
        if point.average is None or point.success is None:
            continue
        if name == "rating":
            y, label = _y_rating(point.average), f"{point.average:.2f} average"
        else:
            y, label = _y_share(point.success), f"{point.success:.0%} success"
        coords.append((_x(i, len(points)), y,
                       f"v{point.version}: {label} ({point.ratings} ratings)"))
    if not coords:
        return []
    path = " ".join(f"{x:.1f},{y:.1f}" for x, y, _ in coords)
    dash = ' stroke-dasharray="6 4"' if name == "success" else ""
    parts = [f'<polyline class="series {name}" points="{path}" fill="none" stroke="{color}" '
             f'stroke-width="2.5"{dash}/>']
    parts += [f'<circle class="point {name}" cx="{x:.1f}" cy="{y:.1f}" r="4.5" '
              f'fill="{color}"><title>{escape(tip)}</title></circle>' for x, y, tip in coords]
    return parts


def rating_chart(points: list[ChartPoint]) -> str:
    """The SVG markup (already escaped); the legend is the page's (it wraps on a phone)."""
    rated = any(p.average is not None for p in points)
    body = [*_grid(), *_labels(points),
            *_series(points, "rating", RATING_COLOR), *_series(points, "success", SUCCESS_COLOR)]
    if not rated:
        body.append(f'<text class="empty" x="{WIDTH / 2}" y="{HEIGHT / 2}" '
                    'text-anchor="middle">no ratings yet</text>')
    title = "Average rating and success rate per version"
    return (f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
            f'aria-label="{title}" xmlns="http://www.w3.org/2000/svg"><title>{title}</title>'
            + "".join(body) + "</svg>")

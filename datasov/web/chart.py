"""A small inline SVG chart: proofs made (bars) and missed (red bars) per epoch, earnings (line).

No script and no external library: the page embeds the SVG as it is, and it prints.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape


@dataclass(frozen=True, slots=True)
class EpochPoint:
    epoch: int
    proofs: int
    missed: int
    earned: int  # token base units earned by the proofs of that epoch


WIDTH, HEIGHT, PAD = 640, 200, 28


def proofs_chart(points: list[EpochPoint], *, unit: str = "tokens") -> str:
    """The SVG for ``points`` (oldest first); a one-line note when there is nothing to draw."""
    if not points:
        return '<p class="muted">no epochs with shares yet</p>'
    top = max(max(p.proofs + p.missed for p in points), 1)
    most = max(max(p.earned for p in points), 1)
    step = (WIDTH - 2 * PAD) / len(points)
    bar = min(max(step * 0.6, 1.0), 36.0)
    plot = HEIGHT - 2 * PAD
    parts = [
        f'<svg class="chart" role="img" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" '
        f'aria-label="proofs and earnings per epoch">',
        f'<line x1="{PAD}" y1="{HEIGHT - PAD}" x2="{WIDTH - PAD}" y2="{HEIGHT - PAD}" class="axis"/>',
    ]
    line = []
    for i, p in enumerate(points):
        x = PAD + i * step + (step - bar) / 2
        made = plot * p.proofs / top
        missed = plot * p.missed / top
        y = HEIGHT - PAD - made
        parts.append(
            f'<rect class="proof" x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{made:.1f}">'
            f"<title>epoch {p.epoch}: {p.proofs} proof(s), {p.missed} missed</title></rect>"
        )
        if p.missed:
            parts.append(
                f'<rect class="missed" x="{x:.1f}" y="{y - missed:.1f}" width="{bar:.1f}" height="{missed:.1f}"/>'
            )
        line.append(f"{PAD + i * step + step / 2:.1f},{HEIGHT - PAD - plot * p.earned / most:.1f}")
        if len(points) <= 20 or i % max(1, len(points) // 10) == 0:
            parts.append(
                f'<text x="{PAD + i * step + step / 2:.1f}" y="{HEIGHT - PAD + 14}" class="tick">{p.epoch}</text>'
            )
    parts.append(f'<polyline class="earned" fill="none" points="{" ".join(line)}"/>')
    parts.append(
        f'<text x="{PAD}" y="{PAD - 10}" class="legend">bars: proofs per epoch (max {top}); '
        f"line: earned per epoch ({escape(unit)})</text>"
    )
    parts.append("</svg>")
    return "".join(parts)

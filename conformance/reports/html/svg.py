"""The report's pictures as plain SVG text: the grid of an image with its boxes, and heatmaps over
the grid on a shared diverging colour scale with its legend. No script, no external resource;
the same input gives the same bytes.

Rows are i (top to bottom), columns j (left to right), as in a cell (i, j) of the text report;
x runs along the columns, y down the rows.
"""

from __future__ import annotations

import json
import math
from html import escape
from typing import NamedTuple

import numpy as np

from yolov1_loss.conformance.reports.html.evidence import drawn_boxes

POSITIVE = (178, 24, 43)  # the loss above the oracle
NEGATIVE = (33, 102, 172)  # the loss below
NOT_FINITE = "#7f7f7f"
PREDICTOR_COLOURS = ("#d95f02", "#7570b3", "#e7298a", "#66a61e", "#a6761d", "#1b9e77")
TARGET_COLOUR = "#1a9641"
FONT = "font-family:sans-serif"
NAMED_OUTLINE = 'stroke="#000" stroke-width="2.5"'  # the cell the report names
LARGEST_OUTLINE = 'stroke="#000" stroke-width="1.5" stroke-dasharray="3 2"'  # a heatmap's largest |value|


def number(value: float) -> str:
    """A value as a label: 4 significant digits, 'not finite' for NaN and infinities."""
    return f"{value:.4g}" if math.isfinite(value) else "not finite"


class Scale(NamedTuple):
    """A diverging colour scale on a logarithm of |value|: white at 0, red above, blue below; the
    smallest non-zero |value| (``low``) pale but visible, the largest (``high``) full, so that a
    small difference still shows beside a large one."""

    low: float
    high: float

    @classmethod
    def of(cls, arrays) -> Scale:
        """The scale spanning the finite non-zero |values| of ``arrays`` (1, 1 where none is)."""
        magnitudes = np.concatenate([np.abs(np.ravel(a)) for a in arrays] or [np.zeros(0)])
        shown = magnitudes[np.isfinite(magnitudes) & (magnitudes > 0)]
        return cls(float(shown.min()), float(shown.max())) if shown.size else cls(1.0, 1.0)

    def intensity(self, magnitude: float) -> float:
        """0 for 0; from 0.2 at ``low`` to 1 at ``high``, linear in log |value|."""
        if magnitude <= 0:
            return 0.0
        if self.high <= self.low:
            return 1.0
        t = (math.log(magnitude) - math.log(self.low)) / (math.log(self.high) - math.log(self.low))
        return 0.2 + 0.8 * min(max(t, 0.0), 1.0)

    def colour(self, value: float) -> str:
        if not math.isfinite(value):
            return NOT_FINITE
        t = self.intensity(abs(value))
        end = POSITIVE if value > 0 else NEGATIVE
        r, g, b = (round(255 + (c - 255) * t) for c in end)
        return f"#{r:02x}{g:02x}{b:02x}"


def largest_cell(arrays: dict):
    """(name, (i, j)) of the largest |value| over ``arrays`` (name -> (S, S)); not finite counts
    as largest; None when every value is 0."""
    best, where = 0.0, None
    for name, a in arrays.items():
        magnitude = np.nan_to_num(np.abs(a), nan=np.inf)
        if magnitude.size and magnitude.max() > best:
            best, where = (
                float(magnitude.max()),
                (name, tuple(int(v) for v in np.unravel_index(np.argmax(magnitude), a.shape))),
            )
    return where


def _axis_labels(S: int, cell: float, left: float, top: float) -> list[str]:
    """Column indices above the grid, row indices left of it, in a font that fits a cell."""
    size = min(11.0, cell * 0.62)
    out = []
    for k in range(S):
        centre = k * cell + cell / 2
        out.append(
            f'<text x="{left + centre:.1f}" y="{top - 3:.1f}" font-size="{size:.1f}" text-anchor="middle">{k}</text>'
        )
        out.append(
            f'<text x="{left - 3:.1f}" y="{top + centre + size / 3:.1f}" font-size="{size:.1f}" text-anchor="end">{k}</text>'
        )
    return out


def _outline(i: int, j: int, cell: float, left: float, top: float, extra: str) -> str:
    """An unfilled square over cell (i, j) of a grid of ``cell``-wide squares at (left, top)."""
    return (
        f'<rect x="{left + j * cell:.2f}" y="{top + i * cell:.2f}" width="{cell:.2f}" height="{cell:.2f}" '
        f'fill="none" {extra}/>'
    )


def heatmap(
    name: str, values: np.ndarray, scale: Scale, title: str, named=None, largest=None, width: float = 196.0
) -> str:
    """An (S, S) heatmap: each cell coloured by its value on ``scale``, indices on the axes, a
    title above; ``named`` (i, j), the cell the report names, outlined solid black, ``largest``
    (i, j), the map's largest |value|, dashed. The values ride along as JSON in ``data-values``
    (null for not finite), the name in ``data-heatmap``."""
    S = values.shape[0]
    cell = width / S
    left, top = 24.0, 34.0
    parts = [
        f'<text x="{left}" y="13" font-size="12" font-weight="bold">{escape(title)}</text>',
        *_axis_labels(S, cell, left, top),
    ]
    for i in range(S):
        for j in range(S):
            v = float(values[i, j])
            parts.append(
                f'<rect x="{left + j * cell:.2f}" y="{top + i * cell:.2f}" width="{cell:.2f}" height="{cell:.2f}" '
                f'fill="{scale.colour(v)}" stroke="#d0d0d0" stroke-width="0.5"><title>cell ({i}, {j}): {number(v)}</title></rect>'
            )
    if largest is not None:
        parts.append(_outline(*largest, cell, left, top, LARGEST_OUTLINE))
    if named is not None:
        parts.append(_outline(*named, cell, left, top, NAMED_OUTLINE))
    data = json.dumps([[float(v) if math.isfinite(v) else None for v in row] for row in values.tolist()])
    return _svg(left + width + 4, top + width + 4, parts, f'data-heatmap="{escape(name)}" data-values="{escape(data)}"')


def heatmap_key(named: bool) -> str:
    """The heatmaps' outlines, in words (HTML)."""
    largest = "outlined dashed: each map's largest |value|"
    return f"outlined in black: the cell the report names; {largest}" if named else largest


def legend(scale: Scale, what: str, width: float = 300.0) -> str:
    """``scale`` as a bar: −high to −low, 0 (white) in the middle, low to high; ends, ±low and 0
    labelled; ``what`` below."""
    side, step = 10, width / 21
    left, top, height = 40.0, 14.0, 14.0
    ratio = scale.high / scale.low
    magnitudes = [scale.low * ratio ** (k / (side - 1)) for k in range(side)]
    values = [-m for m in reversed(magnitudes)] + [0.0] + magnitudes
    parts = [
        f'<rect x="{left + k * step:.2f}" y="{top}" width="{step + 0.3:.2f}" height="{height}" fill="{scale.colour(v)}"/>'
        for k, v in enumerate(values)
    ]
    parts.append(f'<rect x="{left}" y="{top}" width="{width}" height="{height}" fill="none" stroke="#888"/>')
    below = top + height + 13
    ticks = [(0, -scale.high, "middle"), (2 * side, scale.high, "middle")]
    if scale.high > scale.low:  # the pale ends beside 0, clear of each other
        ticks += [(side - 0.5, -scale.low, "end"), (side + 1.5, scale.low, "start")]
    for k, v, anchor in ticks:
        x = left + (k + 0.5) * step
        parts.append(f'<text x="{x:.1f}" y="{below}" font-size="10" text-anchor="{anchor}">{number(v)}</text>')
    parts.append(
        f'<text x="{left + (side + 0.5) * step:.1f}" y="{top - 2}" font-size="10" text-anchor="middle">0</text>'
    )
    parts.append(f'<rect x="{left + width + 24}" y="{top}" width="{height}" height="{height}" fill="{NOT_FINITE}"/>')
    parts.append(f'<text x="{left + width + 24 + height + 4}" y="{top + 11}" font-size="11">not finite</text>')
    caption = f"{what}; shade on a logarithmic scale of |value|"
    parts.append(f'<text x="{left}" y="{below + 15}" font-size="11">{escape(caption)}</text>')
    span = max(left + width + 120, left + 6.2 * len(caption))
    return _svg(span, below + 21, parts, 'class="legend"')


def grid(picture, clip_id: str, focus=None, width: float = 420.0) -> str:
    """The S×S grid of ``picture``'s image: object cells shaded, each target box (green) and each
    predictor's box (one colour each, dashed) to scale in image coordinates, the oracle's
    responsible predictor's box solid and thick with a dot at its centre, and the loss's where it
    differs circled in red. ``focus`` (i, j): the cell the report names, outlined, its boxes drawn
    over the others, which fade. Boxes are clipped to the image (``clip_id``: the clip path's id,
    one per page)."""
    spec, S = picture.spec, picture.spec.S
    cell = width / S
    left, top, margin = 28.0, 22.0, 6.0
    has_object = picture.target[..., spec.C] == 1
    parts = [
        f'<defs><clipPath id="{clip_id}"><rect x="{left:.1f}" y="{top:.1f}" width="{width:.1f}" height="{width:.1f}"/></clipPath></defs>',
        *_axis_labels(S, cell, left, top),
    ]
    for i in range(S):
        for j in range(S):
            fill = "#fff2cc" if has_object[i, j] else "#ffffff"
            parts.append(
                f'<rect x="{left + j * cell:.2f}" y="{top + i * cell:.2f}" width="{cell:.2f}" height="{cell:.2f}" fill="{fill}" '
                f'stroke="#bbbbbb" stroke-width="0.6" data-cell="{i},{j}" data-object="{int(has_object[i, j])}"/>'
            )
    cells, targets, predicted = drawn_boxes(picture.pred, picture.target, spec)
    boxes = [f'<g clip-path="url(#{clip_id})" fill="none">']

    def rect(box, stroke, extra):
        cx, cy, w, h = (float(v) for v in box)
        if not all(map(math.isfinite, (cx, cy, w, h))):
            return ""
        w, h = abs(w) * width, abs(h) * width
        return f'<rect x="{left + cx * width - w / 2:.2f}" y="{top + cy * width - h / 2:.2f}" width="{w:.2f}" height="{h:.2f}" stroke="{stroke}" {extra}/>'

    order = sorted(range(len(cells)), key=lambda m: focus is not None and tuple(cells[m]) == tuple(focus))
    for m in order:
        i, j = (int(v) for v in cells[m])
        faded = focus is not None and (i, j) != tuple(focus)
        boxes.append(f'<g opacity="{0.15 if faded else 1}">')
        r, mine = picture.responsible[i, j], picture.loss_responsible[i, j]
        for b in range(spec.B):
            stroke = PREDICTOR_COLOURS[b % len(PREDICTOR_COLOURS)]
            extra = 'stroke-width="2.2"' if b == r else 'stroke-width="1" stroke-dasharray="4 3"'
            boxes.append(rect(predicted[m, b], stroke, extra))
        boxes.append(rect(targets[m], TARGET_COLOUR, 'stroke-width="1.8"'))
        cx, cy = predicted[m, r, :2]
        if math.isfinite(cx) and math.isfinite(cy):
            boxes.append(
                f'<circle cx="{left + cx * width:.2f}" cy="{top + cy * width:.2f}" r="3" fill="{PREDICTOR_COLOURS[r % 6]}"/>'
            )
        if mine >= 0 and mine != r:
            boxes.append(
                f'<circle cx="{left + (j + 0.5) * cell:.2f}" cy="{top + (i + 0.5) * cell:.2f}" r="{cell * 0.42:.2f}" '
                f'stroke="#d7191c" stroke-width="2" data-loss-responsible="{i},{j},{mine}"/>'
            )
        boxes.append("</g>")
    boxes.append("</g>")
    if focus is not None:
        i, j = focus
        boxes.append(_outline(i, j, cell, left, top, NAMED_OUTLINE))
    parts += boxes
    return _svg(left + width + margin, top + width + margin, parts, f'class="grid" data-image="{picture.image}"')


def grid_key(B: int) -> str:
    """The grid's key, in words with colour swatches (HTML)."""
    items = [f'<span class="swatch" style="border-color:{TARGET_COLOUR}"></span>the target box']
    items += [
        f'<span class="swatch" style="border-color:{PREDICTOR_COLOURS[b % 6]}"></span>predictor {b}' for b in range(B)
    ]
    items += [
        "solid and thick, with a dot at its centre: the oracle's responsible predictor; dashed: the others",
        '<span class="swatch" style="background:#fff2cc"></span>a cell that holds an object',
        "circled in red: a cell where the loss makes another predictor responsible (read from its coord gradient)",
        "outlined in black: the cell the report names; the other cells' boxes fade",
    ]
    return " · ".join(items)


def _svg(width: float, height: float, parts: list[str], attributes: str) -> str:
    body = "".join(parts)
    return (
        f'<svg width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" style="{FONT}" {attributes}>{body}</svg>'
    )

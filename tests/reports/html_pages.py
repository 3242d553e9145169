"""Reading an HTML report back: its elements checked for nesting, its heatmaps' numbers, and the
example its reproduction snippet rebuilds."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser

import numpy as np

VOID = {"meta", "br", "img", "input", "link", "hr", "col", "area", "base", "wbr", "source", "track", "embed"}
SELF_CLOSING_SVG = {"rect", "circle", "path", "line"}


class Page(HTMLParser):
    """A page parsed: raises AssertionError where an element closes out of order or stays open;
    ``heatmaps`` (one dict per picture, in order: name -> (S, S) array, NaN for null),
    ``grids`` (each grid's cells: (i, j) -> holds an object) and ``images`` (the image each
    draws), ``pres`` (id -> text of each <pre> with an id), ``outlines`` (one dict per picture:
    heatmap name -> {"solid": [(i, j), ...], "dashed": [...]}, the cells under each unfilled
    square, found by where it is drawn)."""

    def __init__(self, text: str):
        super().__init__()
        self.stack: list[str] = []
        self.heatmaps: list[dict] = []
        self.grids: list[dict] = []
        self.pres: dict = {}  # id -> text of each <pre> with an id
        self.images: list[int] = []  # the image each grid draws
        self.loss_responsible: list[tuple] = []
        self.outlines: list[dict] = []
        self._heatmap = None  # (name, [(x, y) of each cell, row by row]) while inside a heatmap
        self._pre = None
        self.feed(text)
        self.close()
        assert not self.stack, f"elements left open: {self.stack}"

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "section" and a.get("class") == "picture":
            self.heatmaps.append({})
            self.outlines.append({})
        if tag == "svg" and a.get("class") == "grid":
            self.grids.append({})
            self.images.append(int(a["data-image"]))
        if "data-heatmap" in a:
            values = json.loads(a["data-values"])
            self.heatmaps[-1][a["data-heatmap"]] = np.array(values, dtype=float)
            self._heatmap = (a["data-heatmap"], [])
            self.outlines[-1][a["data-heatmap"]] = {"solid": [], "dashed": []}
        if tag == "rect" and self._heatmap is not None:
            self._heatmap_rect(a)
        if "data-cell" in a:
            i, j = map(int, a["data-cell"].split(","))
            self.grids[-1][i, j] = a["data-object"] == "1"
        if "data-loss-responsible" in a:
            self.loss_responsible.append(tuple(map(int, a["data-loss-responsible"].split(","))))
        if tag == "pre":
            self._pre, self._pre_id = [], a.get("id")
        if tag not in VOID:
            self.stack.append(tag)

    def _heatmap_rect(self, a: dict) -> None:
        name, cells = self._heatmap
        corner = (a["x"], a["y"])
        if a.get("fill") != "none":
            cells.append(corner)
            return
        S = round(len(cells) ** 0.5)
        i, j = divmod(cells.index(corner), S)
        self.outlines[-1][name]["dashed" if "stroke-dasharray" in a else "solid"].append((i, j))

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if tag not in VOID:
            self.stack.pop()

    def handle_endtag(self, tag):
        assert self.stack and self.stack[-1] == tag, f"</{tag}> closes {self.stack[-1:]}"
        self.stack.pop()
        if tag == "svg":
            self._heatmap = None
        if tag == "pre":
            if self._pre_id:
                self.pres[self._pre_id] = "".join(self._pre)
            self._pre = None

    def handle_data(self, data):
        if self._pre is not None:
            self._pre.append(data)


NETWORK = re.compile(r"https?:|ftp:|wss?:|//[a-z0-9.-]+\.[a-z]{2,}|@import|<link|\bsrc\s*=|url\((?!#)", re.I)


def network_references(text: str) -> list[str]:
    """Whatever in ``text`` could fetch a resource: URLs with a scheme or a host, @import, <link>,
    src attributes, url() that is not a fragment of the page."""
    return NETWORK.findall(text)


def reproduced_example(snippet: str):
    """The Example a failure's reproduction snippet builds (its imports and its ``example =``
    line, run as a user pasting it would)."""
    namespace: dict = {}
    lines = [line for line in snippet.splitlines() if line.startswith(("import ", "from ", "example ="))]
    exec("\n".join(lines), namespace)
    return namespace["example"]


def failure_report(mutant: str, S: int, prop: str = "values_match_oracle", seed: int = 0):
    """(a CheckReport of ``mutant``'s failure of ``prop`` on an ordinary example, its pictures
    drawn, that example): about a third of the cells hold an object, so a page shows cells the
    mutant breaks and cells it leaves alone."""
    import pytest

    from yolov1_loss.conformance.inputs.example import Recipe, build
    from yolov1_loss.conformance.mutants import MUTANTS
    from yolov1_loss.conformance.reports.check_report import CheckReport
    from yolov1_loss.conformance.reports.html.evidence import failure_picture
    from yolov1_loss.conformance.suite.failure import ConformanceFailure
    from yolov1_loss.conformance.suite.properties import PROPERTIES
    from yolov1_loss.reference import LossSpec

    impl = MUTANTS[mutant].implementation()
    example = build(Recipe(LossSpec(S=S), seed=seed))
    with pytest.raises(ConformanceFailure) as raised:
        PROPERTIES[prop].check(impl, example)
    report = CheckReport(impl.name, "differs", spec=example.spec, properties={prop: "failed"}, failures=[raised.value])
    report.pictures = [failure_picture(impl, raised.value)]
    return report, example

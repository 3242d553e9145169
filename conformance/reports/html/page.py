"""The check's report as one self-contained HTML page: the text report's words (the same
functions write them), and for each failure its example drawn (:mod:`.svg`) from what
:mod:`.evidence` computed while the loss could be called. No network resource, no script needed
to see anything; a few lines of inline script make the copy buttons work, offline.
"""

from __future__ import annotations

from html import escape

from yolov1_loss.conformance.reports.check_report import VERDICT_MEANING
from yolov1_loss.conformance.reports.html import svg
from yolov1_loss.conformance.suite.failure import _number
from yolov1_loss.reference.loss import OUTPUT_NAMES

STYLE = """
body{font-family:sans-serif;margin:1.5em auto;max-width:1180px;color:#222;line-height:1.4}
h1{font-size:1.4em}h2{font-size:1.2em;border-bottom:1px solid #ccc;margin-top:1.6em}h3{font-size:1.05em}
pre{background:#f6f6f6;padding:.6em;overflow-x:auto;white-space:pre-wrap}
.verdict{font-size:1.2em;font-weight:bold}.conforms{color:#1a7f37}.differs,.error{color:#b2182b}
table{border-collapse:collapse}td,th{border:1px solid #ddd;padding:2px 8px;text-align:left;vertical-align:top}
.passed{color:#1a7f37}.failed{color:#b2182b;font-weight:bold}.na{color:#777}
.figures{display:flex;flex-wrap:wrap;gap:10px 18px;align-items:flex-start}
.swatch{display:inline-block;width:12px;height:12px;border:2px solid #999;vertical-align:middle;margin-right:4px}
.key,.note{font-size:.9em;color:#444}button{font-size:.9em}
"""

COPY_SCRIPT = """
function copyText(id, button) {
  var text = document.getElementById(id).textContent;
  function done() { button.textContent = "copied"; }
  if (navigator.clipboard && window.isSecureContext) { navigator.clipboard.writeText(text).then(done); return; }
  var area = document.createElement("textarea"); area.value = text; document.body.appendChild(area);
  area.select(); document.execCommand("copy"); document.body.removeChild(area); done();
}
"""

TERM_WORDS = {
    "coord": "coord (box centres and sizes)",
    "obj": "obj (the responsible predictor's confidence)",
    "noobj": "noobj (confidences that should be 0)",
    "cls": "cls (class scores)",
    "total": "total (weighted)",
}


def _lines(lines: list[str]) -> str:
    return f"<pre>{escape(chr(10).join(lines))}</pre>" if lines else ""


def _properties(report) -> str:
    rows = []
    for name, status in report.properties.items():
        kind = "na" if status.startswith("not applicable") else status
        rows.append(f'<tr><td>{escape(name)}</td><td class="{kind}">{escape(status)}</td></tr>')
    return f"<table><tr><th>property</th><th>status</th></tr>{''.join(rows)}</table>" if rows else "<p>none ran</p>"


def _failure_text(failure, k: int) -> str:
    """The element the text report names, both values, the tolerance, and the reproduction."""
    f = failure.located()
    rows = [("what", failure.message)]
    if f["component"] is not None:
        lies = f" (the difference lies in {f['term']})" if f["term"] not in (None, f["component"]) else ""
        rows.append(("component", f"{f['component']}{lies}"))
    if failure.where():
        rows.append(("where", failure.where()))
    for name in ("expected", "actual", "tolerance", "note"):
        if f[name] is not None:
            rows.append((name if name != "expected" else "expected (the oracle)", _number(f[name])))
    table = "".join(f"<tr><th>{escape(a)}</th><td>{escape(str(b))}</td></tr>" for a, b in rows)
    repro = escape(failure.reproduction())
    return (
        f"<table>{table}</table><h3>Reproduce</h3>"
        f'<button type="button" onclick="copyText(\'repro-{k}\', this)">copy</button>'
        f'<pre id="repro-{k}">{repro}</pre>'
    )


GRADIENTS_AGREE = "the gradients agree on this example within the check's tolerance: the difference lies in the values"
TERMS_AGREE = "the terms agree cell by cell within tolerance on this example"


def _figure(heatmaps: dict, what: str, titles: dict, named=None, agree: str | None = None) -> str:
    """Heatmaps (name -> (S, S)) on one scale, ``named`` (i, j) outlined on each, each map's
    largest |value| outlined dashed, and the legend; the sentence ``agree`` alone instead where
    it is given and every value is 0."""
    if agree is not None and svg.largest_cell(heatmaps) is None:
        return f'<p class="note">{escape(agree)}</p>'
    scale = svg.Scale.of(heatmaps.values())
    maps = []
    for name, values in heatmaps.items():
        largest = svg.largest_cell({name: values})
        maps.append(svg.heatmap(name, values, scale, titles[name], named, largest and largest[1]))
    key = f'<p class="key">{escape(svg.heatmap_key(named is not None))}</p>'
    return f'<div class="figures">{"".join(maps)}</div>{svg.legend(scale, what)}{key}'


def _focus(picture):
    """The cell (i, j) the failure names on the picture's image, or None."""
    if picture.failure is None:
        return None
    f = picture.failure.located()
    return f["cell"] if f["cell"] is not None and (f["image"] or 0) == picture.image else None


def _picture(picture, k: int) -> str:
    spec, named = picture.spec, _focus(picture)
    parts = [f"<h2>{escape(picture.title[0].upper() + picture.title[1:])}</h2>"]
    if picture.failure is not None:
        parts.append(_failure_text(picture.failure, k))
    parts.append(
        f'<h3 id="grid-{k}">The grid of image {picture.image} (S = {spec.S}, B = {spec.B}, C = {spec.C}): rows i, columns j</h3>'
        f'{svg.grid(picture, f"clip-{k}", named)}<p class="key">{svg.grid_key(spec.B)}</p>'
    )
    parts.extend(f'<p class="note">{escape(note)}</p>' for note in picture.notes)
    given = [name for name in OUTPUT_NAMES if picture.terms.get(name) and picture.terms[name].loss is not None]
    if picture.failure is None and given:
        values = {}
        for name in given:
            values[f"{name} (the loss)"] = picture.terms[name].loss
            values[f"{name} (the oracle)"] = picture.terms[name].oracle
        titles = {key: key for key in values}
        parts.append(
            "<h3>Each term's value in each cell: the loss's beside the oracle's, the oracle computing the "
            "dialect above (where that dialect is not the one meant, these agree: the Dialect section says "
            "what differs)</h3>"
        )
        parts.append(f'<p class="key">{escape("; ".join(TERM_WORDS[name] for name in given))}</p>')
        parts.append(_figure(values, "each cell's value of the term, with every other cell emptied", titles))
    elif given:
        differences = {f"term:{name}": picture.terms[name].difference for name in given}
        titles = {f"term:{name}": name for name in given}
        parts.append("<h3>Where the values part: the loss's minus the oracle's, cell by cell, per term</h3>")
        parts.append(f'<p class="key">{escape("; ".join(TERM_WORDS[name] for name in given))}</p>')
        what = "loss − oracle per cell (0 where within the check's tolerance)"
        parts.append(_figure(differences, what, titles, named, TERMS_AGREE))
    if picture.failure is not None and picture.gradient is not None:
        groups = {f"gradient:{name}": values for name, values in picture.gradient.items()}
        titles = {f"gradient:{name}": name for name in picture.gradient}
        parts.append(
            "<h3>Where the gradient parts: d total / d pred, the loss's minus the oracle's, per channel group "
            "(the element furthest from 0 in each cell)</h3>"
        )
        what = "loss − oracle of d total / d pred (0 where within the check's tolerance)"
        parts.append(_figure(groups, what, titles, named, GRADIENTS_AGREE))
    return f'<section class="picture">{"".join(parts)}</section>'


def page(report) -> str:
    """The HTML page of ``report`` (its ``pictures`` drawn, see :func:`.evidence.pictures`)."""
    verdict = report.verdict
    drawn = {id(p.failure) for p in report.pictures if p.failure is not None}
    undrawn = [f for f in report.failures if id(f) not in drawn]
    body = [
        f"<h1>yolov1-loss check: {escape(report.target)}</h1>",
        f"<pre>{escape(report.echo())}</pre>",
        f'<h2>Verdict</h2><p class="verdict {verdict}">{escape(report.verdict_line())}</p>',
        f"<p>{escape(VERDICT_MEANING[verdict].capitalize())}.</p>",
        _lines(report.cause_lines()),
        "<h2>Dialect</h2>",
        _lines(report.dialect_lines()) or "<p>not identified</p>",
        _lines(report.finding_lines()),
        "<h2>Properties</h2>",
        _properties(report),
        *(_picture(picture, k) for k, picture in enumerate(report.pictures)),
        *(f"<h2>{escape(f.property)}</h2><pre>{escape(str(f))}</pre>" for f in undrawn),
    ]
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>yolov1-loss check: {escape(report.target)}</title><style>{STYLE}</style>"
        f"<script>{COPY_SCRIPT}</script></head><body>{''.join(body)}</body></html>\n"
    )


def write_html(report, path) -> None:
    """The page of ``report`` to ``path``."""
    with open(path, "w", encoding="utf-8") as f:
        f.write(page(report))

"""The catalogue of known dialects: the presets and the dialects of public implementations.

The entries are data (``catalogue.json`` beside this module): each names its knobs (a preset's,
or LossSpec fields on top of the paper's defaults), where it comes from (project, file, commit)
and how that was confirmed, what it is known for, the layout and S, B, C its code was written
for, and, where it computes a plain bug rather than a convention, the bug in words. An entry
whose source does something no knob expresses says so (``not_expressible``): its knobs are the
nearest the knobs come, and no loss is said to compute it.

A loss "computes the same as" an entry when every knob that decides values agrees
(:func:`values_key`): the word knobs that change values under the others, the ε's, and the
weights as they act (λ_k · loss_scale, and the weight of the object cells' other predictors'
no-object term), so that darknet's loss_scale 0.5 with λ 5, 1, 0.5, 1 is the same dialect as
λ 2.5, 0.5, 0.25, 0.5. Two entries may compute the same values (the article and its notebook,
whose bug is in its backward, not in its values); the one without a bug comes first, and
:func:`known` names it.
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass, field
from importlib import resources

from yolov1_loss.reference import PRESETS, LossSpec
from yolov1_loss.reference.layouts import LAYOUTS
from yolov1_loss.reference.spec import CHOICES

# Weights agree when within this, relative: fitted weights are snapped to written values, and a
# written value is exact; 1e-6 leaves room for float32 rounding of a weight like 1/64.
WEIGHT_RTOL = 1e-6

# Knobs that change values only when another has a value: knob → (needs knob, value).
ONLY_UNDER = {
    "signed_sqrt_eps": ("wh_mode", "signed_sqrt"),
    "sqrt_clamp_eps": ("wh_mode", "clamped_sqrt"),
    "iou_grad": ("conf_target", "iou"),
    "lambda_noobj_object": ("noobj_scope", "own_weight"),
}
WORD_KNOBS = tuple(CHOICES)
# The weights as they act (λ · loss_scale): of coord, obj, the empty cells' noobj, the object cells'
# other predictors' noobj, cls. (Identification fits them: term_probes.COLUMNS is this.)
EFFECTIVE_WEIGHTS = ("coord", "obj", "noobj", "noobj_object", "cls")
GRID = ("S", "B", "C")


@dataclass(frozen=True)
class Entry:
    """One known dialect."""

    name: str
    knobs: dict = field(hash=False)  # LossSpec fields, S, B, C excluded
    source: str
    known_for: str
    bug: str | None = None  # the plain bug it computes, in words; None for a convention
    preset: str | None = None  # the preset it is, if any
    notes: str | None = None  # what else a user should know about the source
    layout: str | None = None  # the --layout its tensors take; None where none of the project's fits
    written_for: dict = field(default_factory=dict, hash=False)  # the S, B, C its code uses
    not_expressible: str | None = None  # what it does that no knob expresses; None when the knobs say it all
    checked: str = ""  # how its facts were confirmed (read at the source, or as given by whom)

    @property
    def expressible(self) -> bool:
        """Whether the knobs compute exactly what the source does (a loss can then compute it)."""
        return self.not_expressible is None

    def spec(self, S: int = 7, B: int = 2, C: int = 20, **overrides) -> LossSpec:
        """The entry's dialect on a grid, with ``overrides`` (knobs) on top."""
        spec = LossSpec(S=S, B=B, C=C, **self.knobs)
        return spec.replace(**overrides) if overrides else spec

    def native_spec(self) -> LossSpec:
        """The entry's dialect on the grid its code was written for."""
        return LossSpec(**self.written_for, **self.knobs)

    def line(self) -> str:
        """One line for a listing: name, what it is known for, and its bug if any."""
        bug = f" BUG: {self.bug}." if self.bug else ""
        loose = " (not expressible by the knobs)" if not self.expressible else ""
        return f"{self.name}: {self.known_for}.{loose}{bug}"


_FIELDS = frozenset(
    {"name", "preset", "knobs", "source", "known_for", "bug", "notes", "layout", "written_for"}
    | {"not_expressible", "checked"}
)


def _entry(raw: dict) -> Entry:
    """One entry of catalogue.json, validated: a broken catalogue fails loudly, naming the entry."""
    name = raw.get("name", "?")
    unknown = sorted(set(raw) - _FIELDS)
    if unknown:
        raise ValueError(f"catalogue entry {name!r}: unknown field(s) {', '.join(unknown)}")
    preset = raw.get("preset")
    knobs = dict(PRESETS[preset]) if preset else {}
    knobs.update(raw.get("knobs", {}))
    written_for = dict(raw.get("written_for", {}))
    try:
        if set(written_for) - set(GRID) or set(knobs) & set(GRID):
            raise ValueError("written_for holds S, B, C (all or some) and knobs none of them")
        LossSpec(**written_for, **knobs)
        if raw.get("layout") is not None and raw["layout"] not in LAYOUTS:
            raise ValueError(f"layout {raw['layout']!r} is none of {', '.join(LAYOUTS)}")
    except (TypeError, ValueError) as err:
        raise ValueError(f"catalogue entry {name!r}: {err}") from None
    return Entry(
        name=raw["name"],
        knobs=knobs,
        source=raw["source"],
        known_for=raw["known_for"],
        bug=raw.get("bug"),
        preset=preset,
        notes=raw.get("notes"),
        layout=raw.get("layout"),
        written_for=written_for,
        not_expressible=raw.get("not_expressible"),
        checked=raw.get("checked", ""),
    )


@functools.cache
def entries() -> tuple[Entry, ...]:
    """Every entry, in the catalogue's order (the presets first)."""
    text = resources.files("yolov1_loss.conformance.dialects").joinpath("catalogue.json").read_text()
    return tuple(_entry(raw) for raw in json.loads(text)["entries"])


def by_name(name: str) -> Entry:
    """The entry called ``name`` (ValueError listing the names when there is none)."""
    for entry in entries():
        if entry.name == name:
            return entry
    raise ValueError(f"no known dialect {name!r}; known dialects are {', '.join(e.name for e in entries())}")


def matters(spec: LossSpec, knob: str, ignore=()) -> bool:
    """Whether ``knob`` changes ``spec``'s values: a knob that does only under another's value
    does where that one has it, and never where that one is in ``ignore`` (what nothing told
    apart cannot tell the knob under it apart either)."""
    needs = ONLY_UNDER.get(knob)
    return needs is None or (needs[0] not in ignore and getattr(spec, needs[0]) == needs[1])


def values_key(spec: LossSpec, ignore=()) -> dict:
    """What decides ``spec``'s values and gradients, knob by knob (``ignore``: knobs left out, as
    those the probes could not tell apart, and the knobs that matter only under one of them):
    each word knob where it matters, iou_eps, sqrt_clamp_eps under clamped_sqrt, and the weights
    as they act (:data:`EFFECTIVE_WEIGHTS`)."""
    knobs = (*WORD_KNOBS, "iou_eps", "sqrt_clamp_eps")
    key = {k: getattr(spec, k) for k in knobs if k != "noobj_scope" and k not in ignore and matters(spec, k, ignore)}
    s = spec.loss_scale
    weights = (
        spec.lambda_coord,
        spec.lambda_obj,
        spec.lambda_noobj,
        spec.lambda_noobj * spec.noobj_object_factor,
        spec.lambda_class,
    )
    key.update({f"weight_{name}": s * w for name, w in zip(EFFECTIVE_WEIGHTS, weights)})
    if "noobj_scope" in ignore:
        del key["weight_noobj_object"]
    return key


def differing(spec: LossSpec, other: LossSpec, ignore=()) -> list[str]:
    """The keys of :func:`values_key` in which two specs differ (weights within WEIGHT_RTOL agree)."""
    a, b = values_key(spec, ignore), values_key(other, ignore)
    out = []
    for name in dict.fromkeys([*a, *b]):
        x, y = a.get(name), b.get(name)
        if isinstance(x, float) and isinstance(y, float):
            if not math.isclose(x, y, rel_tol=WEIGHT_RTOL, abs_tol=0.0):
                out.append(name)
        elif x != y:
            out.append(name)
    return out


def computes(spec: LossSpec, other: LossSpec, ignore=()) -> bool:
    """Whether ``spec`` computes ``other``'s values and gradients: no key of :func:`values_key`
    differs, the knobs in ``ignore`` (those nothing told apart) aside."""
    return not differing(spec, other, ignore)


def computing(spec: LossSpec, ignore=(), overrides: dict | None = None) -> tuple[Entry, ...]:
    """The entries (each with ``overrides`` on top) whose values ``spec`` computes (on its grid),
    in the catalogue's order; entries the knobs cannot express are never among them."""
    return tuple(
        e
        for e in entries()
        if e.expressible and computes(spec, e.spec(spec.S, spec.B, spec.C, **(overrides or {})), ignore)
    )


def computed(spec: LossSpec, ignore=(), overrides: dict | None = None) -> Entry | None:
    """The entry to name for what ``spec`` computes: the first of :func:`computing` without a bug,
    else the first with one; None where it computes none."""
    same = computing(spec, ignore, overrides)
    return next((e for e in same if e.bug is None), same[0] if same else None)


def known(spec: LossSpec, ignore=()) -> Entry | None:
    """The entry a loss computing ``spec`` conforms to: :func:`computed`, where it has no bug."""
    entry = computed(spec, ignore)
    return entry if entry is not None and entry.bug is None else None


def nearest(spec: LossSpec, ignore=()) -> Entry:
    """The entry that differs from ``spec`` in the fewest keys (the first of equals; entries
    without a bug before those with one), among those the knobs express."""
    ranked = sorted(
        (e for e in entries() if e.expressible),
        key=lambda e: (len(differing(spec, e.spec(spec.S, spec.B, spec.C), ignore)), e.bug is not None),
    )
    return ranked[0]


def same_values() -> list[tuple[str, ...]]:
    """The names of the entries that compute the same values as one another, in groups (each in
    the catalogue's order), on the paper's grid."""
    groups: list[list[Entry]] = []
    for entry in entries():
        group = next((g for g in groups if not differing(entry.spec(), g[0].spec())), None)
        if group is None:
            groups.append([entry])
        else:
            group.append(entry)
    return [tuple(e.name for e in g) for g in groups if len(g) > 1]

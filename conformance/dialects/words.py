"""A dialect in plain words: how it differs from a known dialect (an entry of the catalogue),
what each difference means for training, which values no known dialect uses, and the command
that holds a loss to it in CI."""

from __future__ import annotations

from yolov1_loss.conformance.dialects import catalogue
from yolov1_loss.reference import LossSpec
from yolov1_loss.reference.spec import CHOICES, LAMBDAS

# (knob, value) → what a loss with that value does, for a person training with it.
MEANINGS = {
    ("noobj_scope", "cell"): "only empty cells pay the no-object term: a predictor that is not "
    "responsible for its cell's object is never pushed towards confidence 0",
    ("noobj_scope", "predictor"): "the object cells' non-responsible predictors pay the no-object term "
    "with the empty cells' weight λ_noobj (the paper's per-predictor indicator)",
    ("noobj_scope", "own_weight"): "the object cells' non-responsible predictors pay the no-object term "
    "with a weight of their own (lambda_noobj_object), not the empty cells' λ_noobj",
    ("iou_frame", "raw"): "the IoU takes x, y (cell units) and w, h (image units) as they are, so "
    "boxes are S times wider apart than they are: the responsible predictor and c* differ from the paper's",
    ("iou_frame", "image"): "x and y are divided by S before the IoU, so that centres and sizes "
    "are in the same units (image units)",
    ("wh_mode", "linear"): "w and h enter without square roots: an error on a small box weighs as "
    "much as on a large one; the paper takes square roots",
    ("wh_mode", "sqrt"): "the loss takes the square root of the predicted w and h, so the network "
    "outputs w itself (never negative); the paper's network outputs √w, compared with √w as it is "
    "(wh_mode='sqrt_output')",
    ("wh_mode", "sqrt_output"): "the network outputs √w and √h: coord compares them with the "
    "target's √w, √h as they are, and the IoU squares them (the paper)",
    ("wh_mode", "signed_sqrt"): "sign(ŵ)·√(|ŵ| + ε): square roots that accept negative predicted sizes",
    ("wh_mode", "clamped_sqrt"): "√max(ŵ, ε): square roots of sizes clamped at ε, so a predicted size "
    "below ε gets no gradient from coord at all and is only moved by the IoU",
    ("signed_sqrt_eps", "inside"): "ε inside the absolute value, √|ŵ + ε|: for sizes between −ε and 0 "
    "coord's gradient points the wrong way",
    ("signed_sqrt_eps", "outside"): "ε outside the absolute value, √(|ŵ| + ε)",
    ("conf_target", "one"): "the responsible predictor's confidence is pushed to 1, not to its IoU: "
    "confidence stops estimating how good the box is",
    ("conf_target", "iou"): "the responsible predictor's confidence is pushed to its box's IoU",
    ("iou_grad", "through"): "obj's gradient flows through the IoU target into the box: boxes are "
    "also pulled to bring their IoU towards their confidence",
    ("iou_grad", "detached"): "the IoU target carries no gradient into the box",
    ("responsible", "max_iou_else_min_rmse"): "when no predictor overlaps the target, the nearest one "
    "is responsible (darknet's fallback), not predictor 0",
    ("responsible", "max_iou"): "the predictor with the highest IoU is responsible; when none overlaps, predictor 0",
    ("reduction", "mean"): "the loss is divided by the number of images: its gradient, and with it "
    "the effective learning rate, shrinks as the batch grows; the paper sums",
    ("reduction", "sum"): "the loss is summed over images",
    ("reduction", "none"): "one loss per image, not reduced",
}
NUMBER_MEANINGS = {
    "iou_eps": "is added to the IoU's union (it lowers small boxes' IoU the most)",
    "sqrt_clamp_eps": "is where clamped_sqrt's clamp starts",
    "loss_scale": "multiplies every term (the same as scaling the learning rate)",
    "lambda_coord": "weighs coord",
    "lambda_obj": "weighs obj",
    "lambda_noobj": "weighs the no-object term of empty cells",
    "lambda_class": "weighs cls",
    "lambda_noobj_object": "weighs the no-object term of the object cells' other predictors",
}
# What a weight of 0 leaves out (the object cells' other predictors' 0 is noobj_scope='cell').
ZERO_MEANINGS = {
    "lambda_coord": "the loss has no coord term: box centres and sizes are never trained",
    "lambda_obj": "the loss has no obj term: the responsible predictor's confidence is never trained",
    "lambda_noobj": "the loss has no no-object term in empty cells: their confidences are never pushed to 0",
    "lambda_class": "the loss has no class term: the class scores are never trained",
}


def preset_like(name: str, spec: LossSpec) -> LossSpec:
    """Preset ``name`` on ``spec``'s grid."""
    return LossSpec.preset(name, S=spec.S, B=spec.B, C=spec.C)


def in_terms_of(spec: LossSpec, base: LossSpec) -> LossSpec:
    """``spec`` with its weights written under ``base``'s loss_scale: the same weights as they act
    (λ · loss_scale), so that only the λ that differ differ (darknet's loss_scale 0.5 with
    λ_class 0 is darknet with lambda_class=0, not five changed numbers)."""
    if spec.loss_scale == base.loss_scale or base.loss_scale == 0:
        return spec
    factor = spec.loss_scale / base.loss_scale
    rescaled = {name: float(f"{getattr(spec, name) * factor:.12g}") for name in LAMBDAS}
    return spec.replace(loss_scale=base.loss_scale, **rescaled)


def changed_knobs(spec: LossSpec, base: LossSpec, ignore=()) -> dict:
    """knob → value, for the knobs of ``spec`` (its weights written under ``base``'s loss_scale)
    that differ from ``base`` and change values."""
    spec = in_terms_of(spec, base)
    theirs = base.knobs()
    changed = (k for k, v in spec.knobs().items() if k not in ignore and theirs[k] != v)
    return {k: getattr(spec, k) for k in changed if catalogue.matters(spec, k, ignore)}


def known_base(spec: LossSpec, ignore=()) -> catalogue.Entry:
    """The known dialect to describe ``spec`` from: the one it computes (without a bug first),
    else the nearest."""
    return catalogue.computed(spec, ignore) or catalogue.nearest(spec, ignore)


def describe(spec: LossSpec, ignore=(), base: catalogue.Entry | None = None) -> str:
    """'paper', or a known dialect (``base``; by default the one ``spec`` computes, else the
    nearest) and the knobs that differ from it: "paper with iou_frame='raw'" (knobs in
    ``ignore``, which nothing told apart, are taken to be the known dialect's)."""
    base = base or known_base(spec, ignore)
    theirs = base.spec(spec.S, spec.B, spec.C)
    if catalogue.computes(spec, theirs, ignore):
        return base.name
    changed = changed_knobs(spec, theirs, ignore)
    return base.name + (f" with {', '.join(f'{k}={v!r}' for k, v in changed.items())}" if changed else "")


def unusual(knob: str, value) -> bool:
    """A word value no known dialect uses (wh_mode='linear', say)."""
    return knob in CHOICES and all(getattr(e.spec(), knob) != value for e in catalogue.entries() if e.expressible)


def explain(knob: str, value, base_value, base_name: str) -> str:
    """One line: the knob's value, what it means for training, and the known dialect's value."""
    meaning = MEANINGS.get((knob, value))
    if meaning is None and value == 0 and knob in ZERO_MEANINGS:
        meaning = ZERO_MEANINGS[knob]
    meaning = meaning or f"{value!r} {NUMBER_MEANINGS.get(knob, '')}".strip()
    flag = " (unusual: no known dialect uses it)" if unusual(knob, value) else ""
    return f"{knob}={value!r}{flag}: {meaning} ({base_name}: {base_value!r})"


def differences(spec: LossSpec, base: catalogue.Entry | LossSpec, ignore=(), base_name: str | None = None) -> list[str]:
    """One line per knob in which ``spec`` differs from a known dialect (an entry, or a spec
    called ``base_name``), in plain words."""
    if isinstance(base, catalogue.Entry):
        base, base_name = base.spec(spec.S, spec.B, spec.C), base.name
    theirs = base.knobs()
    return [explain(k, v, theirs[k], base_name or "there") for k, v in changed_knobs(spec, base, ignore).items()]


def pin_command(command: str, spec: LossSpec, ignore=(), base: catalogue.Entry | None = None) -> str:
    """``command`` (yolov1-loss check TARGET and its loss options) with the --dialect and --set
    options that hold a loss to ``spec``: a known dialect (``base``; by default the one ``spec``
    computes, else the nearest) and the knobs that differ from it."""
    base = base or known_base(spec, ignore)
    theirs = base.spec(spec.S, spec.B, spec.C)
    sets = changed_knobs(spec, theirs, ignore)
    if sets.get("noobj_scope") == "own_weight":  # (its weight goes with it)
        sets.setdefault("lambda_noobj_object", in_terms_of(spec, theirs).lambda_noobj_object)
    return " ".join([command, f"--dialect {base.name}", *set_flags(sets)])


def set_flags(knobs: dict) -> list[str]:
    """The --set options that set ``knobs`` (knob → value; a float written with 12 significant digits)."""
    return [f"--set {k}={v:.12g}" if isinstance(v, float) else f"--set {k}={v}" for k, v in knobs.items()]


def weights_line(spec: LossSpec, fitted) -> str:
    """The weights, each marked where the values did not show it (``fitted``: the λ names that fit)."""
    parts = []
    for name in LAMBDAS:
        if name == "lambda_noobj_object" and spec.noobj_scope != "own_weight":
            continue
        value = getattr(spec, name)
        parts.append(f"{name}={value:g}" + ("" if name in fitted else " (not fitted: the paper's)"))
    return ", ".join(parts)

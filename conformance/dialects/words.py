"""A dialect in plain words: how it differs from a preset, what each difference means for
training, which values no preset uses, and the command that holds a loss to it in CI."""

from __future__ import annotations

from yolov1_loss.reference import PRESETS, LossSpec
from yolov1_loss.reference.spec import CHOICES, WEIGHTS

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
# Knobs that change nothing unless another has a value: (knob, needs knob, value).
ONLY_UNDER = {
    "signed_sqrt_eps": ("wh_mode", "signed_sqrt"),
    "sqrt_clamp_eps": ("wh_mode", "clamped_sqrt"),
    "lambda_noobj_object": ("noobj_scope", "own_weight"),
    "iou_grad": ("conf_target", "iou"),
}


def preset_like(name: str, spec: LossSpec) -> LossSpec:
    """Preset ``name`` on ``spec``'s grid."""
    return LossSpec.preset(name, S=spec.S, B=spec.B, C=spec.C)


def _matters(spec: LossSpec, knob: str) -> bool:
    needs = ONLY_UNDER.get(knob)
    return needs is None or getattr(spec, needs[0]) == needs[1]


def changed_knobs(spec: LossSpec, base: LossSpec, ignore=()) -> dict:
    """knob → value, for the knobs of ``spec`` that differ from ``base`` and change values."""
    theirs = base.knobs()
    return {
        k: v for k, v in spec.knobs().items() if k not in ignore and theirs[k] != v and _matters(spec, k)
    }  # fmt: skip


def nearest_preset(spec: LossSpec, ignore=()) -> str:
    """The preset that differs from ``spec`` in the fewest knobs (the first of equals)."""
    return min(PRESETS, key=lambda name: len(changed_knobs(spec, preset_like(name, spec), ignore)))


def describe(spec: LossSpec, ignore=()) -> str:
    """'preset 'paper'', or the nearest preset and the knobs that differ from it (knobs in
    ``ignore``, which nothing told apart, are taken to be the preset's)."""
    base = nearest_preset(spec, ignore)
    changed = changed_knobs(spec, preset_like(base, spec), ignore)
    return f"preset {base!r}" + (f" with {', '.join(f'{k}={v!r}' for k, v in changed.items())}" if changed else "")


def unusual_knobs(spec: LossSpec, ignore=()) -> list[str]:
    """The knobs of ``spec`` (that change values) whose word value no preset uses."""
    return [k for k, v in spec.knobs().items() if k not in ignore and _matters(spec, k) and unusual(k, v)]


def unusual(knob: str, value) -> bool:
    """A word value no preset uses (wh_mode='linear', say)."""
    return knob in CHOICES and all(knobs.get(knob, getattr(LossSpec(), knob)) != value for knobs in PRESETS.values())


def explain(knob: str, value, base_value) -> str:
    """One line: the knob's value, what it means for training, and the base's value."""
    meaning = MEANINGS.get((knob, value)) or f"{value!r} {NUMBER_MEANINGS.get(knob, '')}".strip()
    flag = " (unusual: no preset uses it)" if unusual(knob, value) else ""
    return f"{knob}={value!r}{flag}: {meaning} (there: {base_value!r})"


def differences(spec: LossSpec, base: LossSpec, ignore=()) -> list[str]:
    """One line per knob in which ``spec`` differs from ``base``, in plain words."""
    theirs = base.knobs()
    return [explain(k, v, theirs[k]) for k, v in changed_knobs(spec, base, ignore).items()]


def pin_command(command: str, spec: LossSpec, ignore=()) -> str:
    """``command`` (yolov1-loss check TARGET and its loss options) with the --dialect and --set
    options that hold a loss to ``spec``: the nearest preset and the knobs that differ from it."""
    base_name = nearest_preset(spec, ignore)
    sets = changed_knobs(spec, preset_like(base_name, spec), ignore)
    if spec.noobj_scope == "own_weight":  # (it is refused without its weight's value)
        sets.setdefault("lambda_noobj_object", spec.lambda_noobj_object)
    words = [command, f"--dialect {base_name}", *(f"--set {k}={_plain(v)}" for k, v in sets.items())]
    return " ".join(words)


def _plain(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def weights_line(spec: LossSpec, fitted) -> str:
    """The weights, each marked where the values did not show it (``fitted``: the λ names that fit)."""
    parts = []
    for name in (*WEIGHTS, "lambda_noobj_object"):
        if name == "lambda_noobj_object" and spec.noobj_scope != "own_weight":
            continue
        value = getattr(spec, name)
        parts.append(f"{name}={value:g}" + ("" if name in fitted else " (not fitted: the paper's)"))
    return ", ".join(parts)

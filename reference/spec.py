"""The loss's parameters: grid size, dialect knobs, λ weights, and the named presets.

A :class:`LossSpec` is frozen and validated on construction, so every function that takes
one can trust its values.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

# Every knob that takes one of a fixed set of words, with its allowed words.
CHOICES: dict[str, tuple[str, ...]] = {
    "noobj_scope": ("cell", "predictor", "own_weight"),
    "iou_frame": ("raw", "image"),
    "wh_mode": ("signed_sqrt", "sqrt_output", "sqrt", "linear", "clamped_sqrt"),
    "signed_sqrt_eps": ("outside", "inside"),
    "conf_target": ("iou", "one"),
    "iou_grad": ("detached", "through"),
    "responsible": ("max_iou", "max_iou_else_min_rmse"),
    "reduction": ("sum", "mean", "none"),
}

# The ε of wh_mode='signed_sqrt': g(v) = sign(v)·√(|v| + ε), or √|v + ε| (signed_sqrt_eps).
SIGNED_SQRT_EPS = 1e-6

# The default ε of wh_mode='clamped_sqrt' (the knob sqrt_clamp_eps): f(w) = √max(w, ε), g(v) = √max(v, ε).
CLAMP_EPS = 1e-6

# responsible='max_iou_else_min_rmse' (darknet's fallback) considers only predictors whose box
# lies nearer the target than this (the Euclidean distance of (x, y, w, h) in the IoU frame).
DISTANCE_CAP = 20.0

# wh_mode values under which the target's w, h go through a square root.
SQRT_TARGET_MODES = ("signed_sqrt", "sqrt_output", "sqrt", "clamped_sqrt")


@dataclass(frozen=True)
class LossSpec:
    """Everything that decides the value of the YOLOv1 loss, besides the inputs.

    The defaults are the ``paper`` preset with S=7, B=2, C=20. See docs/spec.md for what each
    knob means and where each preset comes from.
    """

    S: int = 7
    B: int = 2
    C: int = 20
    noobj_scope: str = "predictor"
    iou_frame: str = "image"
    wh_mode: str = "sqrt_output"
    signed_sqrt_eps: str = "outside"
    conf_target: str = "iou"
    iou_grad: str = "detached"
    responsible: str = "max_iou"
    iou_eps: float = 0.0
    sqrt_clamp_eps: float = CLAMP_EPS
    reduction: str = "sum"
    loss_scale: float = 1.0
    lambda_coord: float = 5.0
    lambda_obj: float = 1.0
    lambda_noobj: float = 0.5
    lambda_class: float = 1.0
    lambda_noobj_object: float = 1.0  # under noobj_scope='own_weight' only

    def __post_init__(self) -> None:
        for name in ("S", "B", "C"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"LossSpec.{name} must be an integer >= 1, got {value!r}")
        for name, allowed in CHOICES.items():
            value = getattr(self, name)
            if value not in allowed:
                raise ValueError(f"LossSpec.{name} must be one of {', '.join(map(repr, allowed))}, got {value!r}")
        for name in ("iou_eps", "sqrt_clamp_eps", "loss_scale", *LAMBDAS):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f"LossSpec.{name} must be a finite number, got {value!r}")
            object.__setattr__(self, name, float(value))
        for name in NON_NEGATIVE:
            if getattr(self, name) < 0:
                raise ValueError(f"LossSpec.{name} must be >= 0, got {getattr(self, name)!r}")
        if not self.sqrt_clamp_eps > 0:  # (at 0, g'(0) would be infinite, which the clamp is there to avoid)
            raise ValueError(f"LossSpec.sqrt_clamp_eps must be > 0, got {self.sqrt_clamp_eps!r}")
        if self.noobj_scope == "own_weight" and self.lambda_noobj == 0:
            raise ValueError(
                "LossSpec.lambda_noobj must not be 0 under noobj_scope='own_weight': the noobj component "
                "counts the object cells' predictors relative to it (lambda_noobj_object / lambda_noobj)"
            )

    @classmethod
    def preset(cls, name: str, **overrides) -> LossSpec:
        """The named dialect (see PRESETS), with S, B, C or any knob overridden."""
        if name not in PRESETS:
            raise ValueError(f"unknown preset {name!r}; presets are {', '.join(PRESETS)}")
        _refuse_unknown_fields(overrides)
        return cls(**{**PRESETS[name], **overrides})

    def replace(self, **changes) -> LossSpec:
        """A copy with some fields changed (validated like a new spec)."""
        _refuse_unknown_fields(changes)
        return dataclasses.replace(self, **changes)

    @property
    def pred_channels(self) -> int:
        """Values per cell of a prediction: C class scores, then (c, x, y, w, h) per predictor."""
        return self.C + 5 * self.B

    @property
    def target_channels(self) -> int:
        """Values per cell of a target: C class values, then (o, x, y, w, h)."""
        return self.C + 5

    def weights(self) -> tuple[float, float, float, float]:
        """(λ_coord, λ_obj, λ_noobj, λ_class): the total's weights, in the order of the components."""
        return (self.lambda_coord, self.lambda_obj, self.lambda_noobj, self.lambda_class)  # WEIGHTS' order

    def reduction_scale(self, n_images: int) -> float:
        """What each image's values are multiplied by: loss_scale, and 1/N under reduction='mean'
        (the mean of an empty batch is 0)."""
        if self.reduction == "mean":
            return self.loss_scale / max(n_images, 1)
        return self.loss_scale

    @property
    def iou_frame_scale(self) -> float:
        """What x and y are multiplied by in the IoU frame: 1/S in frame 'image', else 1."""
        return 1.0 / self.S if self.iou_frame == "image" else 1.0

    @property
    def noobj_object_factor(self) -> float:
        """ρ, what a non-responsible predictor of an object cell counts for in the noobj component,
        relative to a predictor of an empty cell: 0 ('cell'), 1 ('predictor'), or
        λ_noobj_object / λ_noobj ('own_weight'), so that λ_noobj · noobj weighs them by λ_noobj_object."""
        if self.noobj_scope == "cell":
            return 0.0
        if self.noobj_scope == "predictor":
            return 1.0
        return self.lambda_noobj_object / self.lambda_noobj

    def knobs(self) -> dict:
        """Every field but the grid size: the dialect, weights included, as a plain dict."""
        return {name: getattr(self, name) for name in FIELDS if name not in ("S", "B", "C")}

    def preset_name(self) -> str | None:
        """The preset whose knobs this spec has (whatever S, B, C), or None."""
        for name in PRESETS:
            if LossSpec.preset(name, S=self.S, B=self.B, C=self.C) == self:
                return name
        return None


WEIGHTS = ("lambda_coord", "lambda_obj", "lambda_noobj", "lambda_class")
# Every λ: the components' weights (WEIGHTS), then the object cells' other predictors' no-object
# weight (noobj_scope='own_weight').
LAMBDAS = (*WEIGHTS, "lambda_noobj_object")

# The numbers that may not be negative: a negative weight or loss_scale rewards the errors it
# weighs (training would push them up), and an ε below 0 could make the union 0 or negative.
NON_NEGATIVE = ("iou_eps", "loss_scale", *LAMBDAS)
FIELDS = tuple(f.name for f in dataclasses.fields(LossSpec))


def _refuse_unknown_fields(names) -> None:
    unknown = sorted(set(names) - set(FIELDS))
    if unknown:
        raise ValueError(f"unknown LossSpec field(s) {', '.join(unknown)}; fields are {', '.join(FIELDS)}")


# The named dialects. Sources: the YOLOv1 paper; darknet's detection layer; the walkthrough
# article (Ardi, 2026); Machine-Learning-Collection's YOLO loss; motokimura/yolo_v1_pytorch.
PRESETS: dict[str, dict] = {
    "paper": {},
    "darknet": {"responsible": "max_iou_else_min_rmse", "loss_scale": 0.5},
    "article": {
        "noobj_scope": "cell",
        "iou_frame": "raw",
        "wh_mode": "signed_sqrt",
        "iou_grad": "through",
        "iou_eps": 1e-6,
    },
    "ml_collection": {
        "noobj_scope": "cell",
        "iou_frame": "raw",
        "wh_mode": "signed_sqrt",
        "signed_sqrt_eps": "inside",
        "conf_target": "one",
        "iou_eps": 1e-6,
    },
    "motokimura": {"noobj_scope": "cell", "wh_mode": "sqrt", "reduction": "mean"},
}

"""The public entry points: :func:`yolov1_loss`, :func:`fused_loss_and_grad` and :class:`YoloV1Loss`."""

from __future__ import annotations

from torch import Tensor, nn

from yolov1_loss.reference import LossSpec
from yolov1_loss.torch_impl import fused
from yolov1_loss.torch_impl.dtypes import compute_dtype
from yolov1_loss.torch_impl.inputs import canonical_inputs
from yolov1_loss.torch_impl.parts import TorchLossParts, finish, weighted_sum
from yolov1_loss.torch_impl.terms import nonfinite_guard, per_image_terms

PATHS = ("auto", "autograd", "fused")


PAPER = LossSpec()  # the spec when none is given (frozen: one object serves every call)


def _spec_or_paper(spec) -> LossSpec:
    if spec is None:
        return PAPER
    if not isinstance(spec, LossSpec):
        raise ValueError(f"spec: expected a reference.LossSpec, got {type(spec).__name__}")
    return spec


def _check_path(path: str) -> None:
    if path not in PATHS:
        raise ValueError(f"unknown path {path!r}; paths are {', '.join(map(repr, PATHS))}")


def yolov1_loss(
    pred: Tensor, target: Tensor, spec: LossSpec | None = None, path: str = "auto", validate: bool = False
) -> TorchLossParts:
    """The YOLOv1 loss of ``pred`` (N, S, S, C + 5B) or flat against ``target`` (N, S, S, C + 5) or flat.

    ``spec`` is a ``reference.LossSpec`` (None: the paper preset, S=7, B=2, C=20). ``path``:
    'autograd' (torch ops differentiated by autograd), 'fused' (loss and gradient in one pass,
    a Triton kernel on CUDA, a numba kernel on the CPU that compiles on first use) or 'auto' (fused). Returns :class:`TorchLossParts` in ``pred``'s
    dtype (half types are computed in float32), on its device, differentiable with respect to
    ``pred``. Inputs are never modified. ``validate=True`` runs the reference's value checks
    first (it reads the values, a synchronisation on a GPU); shapes, dtypes and devices are
    always checked.
    """
    spec = _spec_or_paper(spec)
    _check_path(path)
    pred4, target4 = canonical_inputs(pred, target, spec, validate)
    if path == "autograd":
        dt = compute_dtype(pred.dtype)
        p = pred4.to(dt)
        terms = per_image_terms(p, target4.detach().to(dt), spec)  # targets get no gradient
        return finish(terms, weighted_sum(terms, spec) + nonfinite_guard(p), spec, pred.dtype)
    return TorchLossParts(*fused.fused_loss(pred4, target4, spec))


def fused_loss_and_grad(
    pred: Tensor, target: Tensor, spec: LossSpec | None = None, validate: bool = False
) -> tuple[TorchLossParts, TorchLossParts]:
    """The fused path's loss and the gradient of each component and of the total, without autograd.

    Returns (values, gradients): values as :func:`yolov1_loss` gives them (detached), gradients
    shaped like ``pred`` in its dtype; under reduction='none' each is the gradient of the sum of
    the per-image values (as ``reference.loss_and_grad``).
    """
    spec = _spec_or_paper(spec)
    pred4, target4 = canonical_inputs(pred, target, spec, validate)
    backend = fused.backend_for(pred)
    scale = spec.reduction_scale(pred4.shape[0])
    alone = [tuple(1.0 if j == k else None for j in range(4)) for k in range(4)]
    grads = []
    for weights in (*alone, spec.weights()):
        values, grad = backend(pred4.detach(), target4.detach(), spec, weights, scale)
        grads.append(grad.reshape(pred.shape).to(pred.dtype))
    return TorchLossParts(*values), TorchLossParts(*grads)


class YoloV1Loss(nn.Module):
    """The YOLOv1 loss as a module: ``YoloV1Loss(preset="article")(pred, target).total.backward()``.

    Give a ``spec`` (``reference.LossSpec``) or a ``preset`` name (default 'paper'), and any
    knob or S, B, C as keywords on top of either. ``path`` and ``validate`` as in
    :func:`yolov1_loss`.
    """

    def __init__(
        self,
        spec: LossSpec | None = None,
        preset: str | None = None,
        path: str = "auto",
        validate: bool = False,
        **knobs,
    ):
        super().__init__()
        if spec is not None and preset is not None:
            raise ValueError("give either spec or preset, not both")
        _check_path(path)
        if spec is None:
            self.spec = LossSpec.preset(preset or "paper", **knobs)
        else:
            self.spec = _spec_or_paper(spec).replace(**knobs)
        self.path = path
        self.validate = validate

    def forward(self, pred: Tensor, target: Tensor) -> TorchLossParts:
        return yolov1_loss(pred, target, self.spec, self.path, self.validate)

    def extra_repr(self) -> str:
        name = self.spec.preset_name()
        dialect = f"preset={name!r}" if name else f"spec={self.spec!r}"
        return f"{dialect}, S={self.spec.S}, B={self.spec.B}, C={self.spec.C}, path={self.path!r}"

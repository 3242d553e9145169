"""The mutants: each a :class:`TorchLoss` with one realistic bug, in one overridden method."""

from __future__ import annotations

import torch

from yolov1_loss.conformance.mutants.base import TorchLoss


class SwappedLambdas(TorchLoss):
    """λ_coord and λ_noobj swapped in the total."""

    def weights(self):
        w = super().weights()
        return {**w, "coord": w["noobj"], "noobj": w["coord"]}


class NoobjWeightMissing(TorchLoss):
    """The no-object term added to the total without λ_noobj."""

    def weights(self):
        return {**super().weights(), "noobj": 1.0}


class TieGoesToLast(TorchLoss):
    """On an IoU tie the last predictor is responsible (a `>=` scan instead of `>`)."""

    def responsible(self, iou, pframe, tframe, conf):
        flipped = iou.flip(-1).argmax(dim=-1)
        return iou.shape[-1] - 1 - flipped


class ResponsibleByConfidence(TorchLoss):
    """The predictor with the highest confidence is made responsible, not the highest IoU."""

    def responsible(self, iou, pframe, tframe, conf):
        return conf.detach().argmax(dim=-1)


class FallbackIgnoresCap(TorchLoss):
    """Darknet's fallback picks the nearest predictor even when it is 20 or more away."""

    def responsible(self, iou, pframe, tframe, conf):
        if self.spec.responsible == "max_iou":
            return super().responsible(iou, pframe, tframe, conf)
        nearest = (pframe - tframe[:, None, :]).detach().norm(dim=-1).argmin(dim=-1)
        return torch.where(iou.amax(dim=-1) > 0, iou.argmax(dim=-1), nearest)


class UnionKeepsIntersection(TorchLoss):
    """The union is the sum of the areas: the intersection is not subtracted."""

    def union(self, area_p, area_t, inter):
        return area_p + area_t + self.spec.iou_eps


class CornersNotCentres(TorchLoss):
    """The IoU reads (x, y) as the box's top-left corner instead of its centre."""

    def iou(self, p, t):
        def centred(box):
            return torch.cat([box[..., :2] + box[..., 2:] / 2, box[..., 2:]], dim=-1)

        return super().iou(centred(p), centred(t))


class XAndYInDifferentFrames(TorchLoss):
    """Under iou_frame='image' only x is divided by S; y stays in cell units."""

    def frame_centre(self, x, y):
        return (x / self.spec.S if self.spec.iou_frame == "image" else x), y


class IouIgnoresSqrtOutput(TorchLoss):
    """Under wh_mode='sqrt_output' the IoU uses the raw output as the size, not its square."""

    def frame_size(self, v):
        return v


class ClassLossOnEmptyCells(TorchLoss):
    """The class term is summed over every cell, not only the cells that hold an object."""

    def class_loss(self, pred, target, has_object):
        return self.squared_error(self.class_scores(target), self.class_scores(pred)).sum(dim=(1, 2, 3))


class ResponsiblePaysNoobj(TorchLoss):
    """In object cells every predictor pays the no-object term, the responsible one included."""

    def noobj_loss(self, conf, has_object, responsible_mask):
        nobody = torch.zeros_like(responsible_mask)
        if self.spec.noobj_object_factor == 0:
            return super().noobj_loss(conf, has_object, nobody) + (conf**2 * has_object[..., None]).sum(dim=(1, 2, 3))
        return super().noobj_loss(conf, has_object, nobody)


NUM_CLASSES = 20  # "the number of VOC classes", hard-coded


class HardCodedTwentyClasses(TorchLoss):
    """The class term reads the first 20 class scores, whatever C is."""

    def class_loss(self, pred, target, has_object):
        q = self.class_scores(target)[..., :NUM_CLASSES]
        p = self.class_scores(pred)[..., :NUM_CLASSES]
        return (self.squared_error(q, p).sum(dim=-1) * has_object).sum(dim=(1, 2))


class BoxSliceOffByOne(TorchLoss):
    """Each predictor's box read one channel early: (ĉ, x̂, ŷ, ŵ) taken as (x̂, ŷ, ŵ, ĥ)."""

    def predictor_boxes(self, cells):
        boxes = super().predictor_boxes(cells)
        return torch.cat([boxes[..., :1], boxes[..., :4]], dim=-1)


class SqrtOnTargetOnly(TorchLoss):
    """Under wh_mode 'sqrt' and 'signed_sqrt' the target's size is rooted, the prediction's not."""

    def pred_size(self, v):
        return v


class MeanInsteadOfSum(TorchLoss):
    """reduction='sum' divides by the number of images anyway."""

    def reduce(self, per_image):
        if self.spec.reduction == "sum":
            return per_image.sum() / max(len(per_image), 1)
        return super().reduce(per_image)


class ConfTargetNotDetached(TorchLoss):
    """With iou_grad='detached', the IoU target is not detached: gradient flows into the box."""

    def confidence_target(self, iou_r):
        return torch.ones_like(iou_r) if self.spec.conf_target == "one" else iou_r


class SignedSqrtEpsIgnored(TorchLoss):
    """signed_sqrt_eps ignored: ε always outside the absolute value (√(|v| + ε))."""

    def pred_size(self, v):
        if self.spec.wh_mode == "signed_sqrt":
            return torch.sign(v) * torch.sqrt(v.abs() + 1e-6)
        return super().pred_size(v)


class _RootForgetsUpstream(torch.autograd.Function):
    """√x whose backward returns d√x/dx without multiplying by the incoming gradient."""

    @staticmethod
    def forward(ctx, x):
        root = torch.sqrt(x)
        ctx.save_for_backward(root)
        return root

    @staticmethod
    def backward(ctx, grad_output):
        (root,) = ctx.saved_tensors
        return 0.5 / root


class RootBackwardIgnoresUpstream(TorchLoss):
    """A hand-written square root whose backward ignores the upstream gradient."""

    def root(self, v):
        return _RootForgetsUpstream.apply(v)


class _SquaredErrorHalfGradient(torch.autograd.Function):
    """(a − b)² with a backward that forgets the factor 2: correct values, half the gradient."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a - b)
        return (a - b) ** 2

    @staticmethod
    def backward(ctx, grad_output):
        (diff,) = ctx.saved_tensors
        return grad_output * diff, -grad_output * diff


class SquaredErrorHalfGradient(TorchLoss):
    """A hand-written squared error: right forward, backward missing its factor 2."""

    def squared_error(self, a, b):
        return _SquaredErrorHalfGradient.apply(a, b)


class _TotalForgetsUpstream(torch.autograd.Function):
    """Passes the total through; backward hands back the gradient computed in forward,
    ignoring the incoming gradient (as hand-fused losses that precompute it sometimes do)."""

    @staticmethod
    def forward(ctx, pred, total, grad):
        ctx.save_for_backward(grad)
        return total.detach().clone()

    @staticmethod
    def backward(ctx, grad_output):
        (grad,) = ctx.saved_tensors
        return grad, None, None


class FusedBackwardIgnoresUpstream(TorchLoss):
    """A fused total whose backward returns d total / d pred, not upstream × that."""

    def __call__(self, pred, target):
        with torch.enable_grad():
            leaf = pred.detach().requires_grad_(True)
            parts = super().__call__(leaf, target)
            total = parts["total"].sum()
            (grad,) = torch.autograd.grad(total, leaf, allow_unused=True)
        grad = torch.zeros_like(pred) if grad is None else grad
        fused = _TotalForgetsUpstream.apply(pred, parts["total"], grad)
        inner = super().__call__(pred, target)
        return {**{name: inner[name] for name in ("coord", "obj", "noobj", "cls")}, "total": fused}


class WritesTargetInPlace(TorchLoss):
    """Tidies the caller's target in place: zeroes the boxes of empty cells (values unchanged)."""

    def prepare_target(self, target):
        C = self.spec.C
        target[..., C + 1 :][target[..., C] == 0] = 0.0
        return target

"""A correct YOLOv1 loss in PyTorch, written the way users write theirs, one method per step.

It is the common base of the mutant zoo: each mutant overrides one method with a realistic
bug. Unmodified, it is an independent (non-project) implementation that the suite must not
flag. Canonical layout, any S, B, C, every knob of the spec; autograd does the gradients.
"""

from __future__ import annotations

import torch

from yolov1_loss.reference.spec import DISTANCE_CAP, SQRT_TARGET_MODES, LossSpec


class TorchLoss:
    """``TorchLoss(spec)(pred, target)`` → dict of coord, obj, noobj, cls, total (tensors)."""

    def __init__(self, spec: LossSpec):
        self.spec = spec

    # --- inputs ------------------------------------------------------------------------------

    def prepare_target(self, target: torch.Tensor) -> torch.Tensor:
        """The target as the loss reads it (a hook for mutants; the caller's tensor is left alone)."""
        return target

    def predictor_boxes(self, cells: torch.Tensor) -> torch.Tensor:
        """(M, C + 5B) object cells → (M, B, 5): (ĉ, x̂, ŷ, ŵ, ĥ) per predictor."""
        return cells[:, self.spec.C :].reshape(len(cells), self.spec.B, 5)

    def class_scores(self, cells: torch.Tensor) -> torch.Tensor:
        return cells[..., : self.spec.C]

    # --- IoU ---------------------------------------------------------------------------------

    def frame_centre(self, x: torch.Tensor, y: torch.Tensor):
        """Centres in the IoU frame: divided by S under iou_frame='image'."""
        if self.spec.iou_frame == "image":
            return x / self.spec.S, y / self.spec.S
        return x, y

    def frame_size(self, v: torch.Tensor) -> torch.Tensor:
        """A predicted size as the IoU sees it: the square of the output under 'sqrt_output'."""
        return v * v if self.spec.wh_mode == "sqrt_output" else v

    def area(self, w: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        return (w * h).abs()

    def union(self, area_p, area_t, inter):
        return area_p + area_t - inter + self.spec.iou_eps

    def iou(self, p: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """IoU of frame boxes p (..., 4) and t (..., 4), both (x, y, w, h); 0 where the union is 0."""
        overlap = []
        for axis in (0, 1):
            low = torch.maximum(p[..., axis] - p[..., axis + 2] / 2, t[..., axis] - t[..., axis + 2] / 2)
            high = torch.minimum(p[..., axis] + p[..., axis + 2] / 2, t[..., axis] + t[..., axis + 2] / 2)
            overlap.append((high - low).clamp(min=0))
        inter = overlap[0] * overlap[1]
        union = self.union(self.area(p[..., 2], p[..., 3]), self.area(t[..., 2], t[..., 3]), inter)
        positive = union > 0
        return torch.where(positive, inter / torch.where(positive, union, torch.ones_like(union)), 0.0)

    def in_frame(self, box: torch.Tensor, predicted: bool) -> torch.Tensor:
        x, y = self.frame_centre(box[..., 0], box[..., 1])
        w, h = box[..., 2], box[..., 3]
        if predicted:
            w, h = self.frame_size(w), self.frame_size(h)
        return torch.stack([x, y, w, h], dim=-1)

    # --- who is responsible --------------------------------------------------------------------

    def responsible(self, iou, pframe, tframe, conf) -> torch.Tensor:
        """(M,) index of the responsible predictor: highest IoU, first on ties; darknet's
        fallback (nearest box under the cap of 20, else predictor 0) when every IoU is 0."""
        best = iou.argmax(dim=-1)
        if self.spec.responsible == "max_iou":
            return best
        distance = (pframe - tframe[:, None, :]).detach().norm(dim=-1)
        nearest = torch.where(distance < DISTANCE_CAP, distance, torch.inf).argmin(dim=-1)
        return torch.where(iou.amax(dim=-1) > 0, best, nearest)

    # --- terms -------------------------------------------------------------------------------

    def squared_error(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return (a - b) ** 2

    def root(self, v: torch.Tensor) -> torch.Tensor:
        return torch.sqrt(v)

    def target_size(self, w: torch.Tensor) -> torch.Tensor:
        if self.spec.wh_mode == "clamped_sqrt":
            return self.root(torch.clamp(w, min=self.spec.sqrt_clamp_eps))
        return self.root(w) if self.spec.wh_mode in SQRT_TARGET_MODES else w

    def pred_size(self, v: torch.Tensor) -> torch.Tensor:
        mode = self.spec.wh_mode
        if mode == "sqrt":
            return self.root(v)
        if mode == "clamped_sqrt":
            return self.root(torch.clamp(v, min=self.spec.sqrt_clamp_eps))
        if mode == "signed_sqrt":
            inner = v.abs() + 1e-6 if self.spec.signed_sqrt_eps == "outside" else (v + 1e-6).abs()
            return torch.sign(v) * self.root(inner)
        return v

    def coord(self, box_r: torch.Tensor, tbox: torch.Tensor) -> torch.Tensor:
        """(M,) squared error of centre and (rooted) size of the responsible predictor."""
        se = self.squared_error
        return (
            se(tbox[:, 0], box_r[:, 0])
            + se(tbox[:, 1], box_r[:, 1])
            + se(self.target_size(tbox[:, 2]), self.pred_size(box_r[:, 2]))
            + se(self.target_size(tbox[:, 3]), self.pred_size(box_r[:, 3]))
        )

    def confidence_target(self, iou_r: torch.Tensor) -> torch.Tensor:
        if self.spec.conf_target == "one":
            return torch.ones_like(iou_r)
        return iou_r if self.spec.iou_grad == "through" else iou_r.detach()

    def class_loss(self, pred, target, has_object) -> torch.Tensor:
        """(N,) Σ over object cells of Σ_k (q_k − p_k)²."""
        per_cell = self.squared_error(self.class_scores(target), self.class_scores(pred)).sum(dim=-1)
        return (per_cell * has_object).sum(dim=(1, 2))

    def noobj_loss(self, conf, has_object, responsible_mask) -> torch.Tensor:
        """(N,) Σ ĉ² over every predictor of empty cells, plus ρ Σ ĉ² over the non-responsible
        predictors of object cells (ρ = spec.noobj_object_factor). ``responsible_mask`` (N, S, S, B)."""
        empty = (~has_object[..., None]).expand_as(conf).to(conf.dtype)
        others = (has_object[..., None] & ~responsible_mask).to(conf.dtype)
        pays = empty + self.spec.noobj_object_factor * others
        return (self.squared_error(conf, torch.zeros_like(conf)) * pays).sum(dim=(1, 2, 3))

    # --- assembly ----------------------------------------------------------------------------

    def weights(self) -> dict:
        s = self.spec
        return {"coord": s.lambda_coord, "obj": s.lambda_obj, "noobj": s.lambda_noobj, "cls": s.lambda_class}

    def reduce(self, per_image: torch.Tensor) -> torch.Tensor:
        if self.spec.reduction == "none":
            return per_image
        total = per_image.sum()
        return total / max(len(per_image), 1) if self.spec.reduction == "mean" else total

    def components(self, pred: torch.Tensor, target: torch.Tensor) -> dict:
        """Per-image (N,) coord, obj, noobj, cls, before reduction and loss_scale."""
        s = self.spec
        C, B, N = s.C, s.B, pred.shape[0]
        pred = pred.reshape(N, s.S, s.S, s.pred_channels)
        target = self.prepare_target(target).reshape(N, s.S, s.S, s.target_channels)
        has_object = target[..., C] == 1
        image = has_object.nonzero()[:, 0]
        cells, tcells = pred[has_object], target[has_object]

        boxes = self.predictor_boxes(cells)
        conf, pbox, tbox = boxes[..., 0], boxes[..., 1:], tcells[:, C + 1 :]
        pframe, tframe = self.in_frame(pbox, predicted=True), self.in_frame(tbox, predicted=False)
        iou = self.iou(pframe, tframe[:, None, :])
        r = self.responsible(iou, pframe, tframe, conf)
        rows = torch.arange(len(r))

        def per_image(per_cell):
            return torch.zeros(N, dtype=pred.dtype, device=pred.device).index_add(0, image, per_cell)

        responsible_mask = torch.zeros(N, s.S, s.S, B, dtype=torch.bool, device=pred.device)
        responsible_mask[has_object] = torch.nn.functional.one_hot(r, B).bool()
        all_conf = pred[..., C:].reshape(N, s.S, s.S, B, 5)[..., 0]
        return {
            "coord": per_image(self.coord(pbox[rows, r], tbox)),
            "obj": per_image(self.squared_error(self.confidence_target(iou[rows, r]), conf[rows, r])),
            "noobj": self.noobj_loss(all_conf, has_object, responsible_mask),
            "cls": self.class_loss(pred, target, has_object),
        }

    def __call__(self, pred: torch.Tensor, target: torch.Tensor) -> dict:
        per_image = self.components(pred, target)
        parts = {name: self.spec.loss_scale * self.reduce(value) for name, value in per_image.items()}
        weights = self.weights()
        parts["total"] = sum(weights[name] * parts[name] for name in weights)
        return parts

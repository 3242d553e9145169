"""The mutant zoo: deliberately wrong YOLOv1 losses, one realistic bug each, that the suite must catch.

``MUTANTS[name].implementation()`` gives an :class:`~conformance.user_loss.implementation.Implementation`
(torch, canonical layout, float64, honours any spec); ``correct_torch_loss()`` gives their
common, correct base, an independent implementation the suite must not flag.
"""

from __future__ import annotations

from dataclasses import dataclass

from yolov1_loss.conformance.mutants import zoo
from yolov1_loss.conformance.mutants.base import TorchLoss
from yolov1_loss.conformance.user_loss.implementation import Implementation


@dataclass(frozen=True)
class Mutant:
    """A wrong loss: its class, what is wrong, and the outputs whose values or gradients show it."""

    name: str
    loss_class: type
    shows_in: tuple  # output names (coord, obj, noobj, cls, total) a report may name

    @property
    def bug(self) -> str:
        return self.loss_class.__doc__.strip()

    def implementation(self) -> Implementation:
        repro = f"yolov1_loss.conformance.mutants.MUTANTS[{self.name!r}].implementation()"
        return _implementation(self.loss_class, self.name, repro)


def _implementation(loss_class: type, name: str, repro: str) -> Implementation:
    return Implementation(name=name, loss=lambda pred, target, spec: loss_class(spec)(pred, target), repro=repro)


def correct_torch_loss() -> Implementation:
    """The zoo's base, unmodified: a correct torch loss written independently of torch_impl."""
    return _implementation(
        TorchLoss, "conformance TorchLoss (correct)", "yolov1_loss.conformance.mutants.correct_torch_loss()"
    )


ANY_TERM = ("coord", "obj", "noobj", "cls")
BOX_TERMS = ("coord", "obj", "noobj")  # a wrong responsible predictor moves these

MUTANTS = {
    m.name: m
    for m in (
        Mutant("swapped_lambdas", zoo.SwappedLambdas, ("total",)),
        Mutant("noobj_weight_missing", zoo.NoobjWeightMissing, ("total",)),
        Mutant("tie_goes_to_last", zoo.TieGoesToLast, BOX_TERMS),
        Mutant("responsible_by_confidence", zoo.ResponsibleByConfidence, BOX_TERMS),
        Mutant("fallback_ignores_cap", zoo.FallbackIgnoresCap, BOX_TERMS),
        Mutant("union_keeps_intersection", zoo.UnionKeepsIntersection, BOX_TERMS),
        Mutant("corners_not_centres", zoo.CornersNotCentres, BOX_TERMS),
        Mutant("x_and_y_in_different_frames", zoo.XAndYInDifferentFrames, BOX_TERMS),
        Mutant("iou_ignores_sqrt_output", zoo.IouIgnoresSqrtOutput, BOX_TERMS),
        Mutant("class_loss_on_empty_cells", zoo.ClassLossOnEmptyCells, ("cls",)),
        Mutant("responsible_pays_noobj", zoo.ResponsiblePaysNoobj, ("noobj",)),
        Mutant("hard_coded_twenty_classes", zoo.HardCodedTwentyClasses, ("cls",)),
        Mutant("box_slice_off_by_one", zoo.BoxSliceOffByOne, BOX_TERMS),
        Mutant("sqrt_on_target_only", zoo.SqrtOnTargetOnly, ("coord",)),
        Mutant("mean_instead_of_sum", zoo.MeanInsteadOfSum, ANY_TERM),
        Mutant("conf_target_not_detached", zoo.ConfTargetNotDetached, ("obj",)),
        Mutant("signed_sqrt_eps_ignored", zoo.SignedSqrtEpsIgnored, ("coord",)),
        Mutant("root_backward_ignores_upstream", zoo.RootBackwardIgnoresUpstream, ("coord",)),
        Mutant("squared_error_half_gradient", zoo.SquaredErrorHalfGradient, ANY_TERM),
        Mutant("fused_backward_ignores_upstream", zoo.FusedBackwardIgnoresUpstream, ("total",)),
        Mutant("writes_target_in_place", zoo.WritesTargetInPlace, ("target",)),
    )
}

"""The public interface: the module, paths, input checks, layouts and strides, untouched inputs,
empty batches, fused_loss_and_grad, and torch.compile."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from yolov1_loss import reference
from yolov1_loss.reference import LossSpec
from yolov1_loss.reference.validate import check_inputs
from yolov1_loss.torch_impl import TorchLossParts, YoloV1Loss, fused_loss_and_grad, yolov1_loss
from yolov1_loss.torch_impl.fused import cpu_backend, fused_loss

from ..reference.inputs import random_inputs
from .helpers import IMPLEMENTATIONS, OUTPUT_NAMES, assert_matches_reference, relative_error, run, skip_unless_available

SPEC = LossSpec.preset("article", S=2, B=2, C=3)


def inputs(spec: LossSpec = SPEC, n_images: int = 2, seed: int = 0):
    pred, target = random_inputs(np.random.default_rng(seed), spec, n_images)
    return torch.tensor(pred), torch.tensor(target)


# --- the module and the paths ---------------------------------------------------------------


def test_module_builds_its_spec_from_a_preset_knobs_or_a_spec():
    assert YoloV1Loss().spec == LossSpec()
    assert YoloV1Loss(preset="darknet", S=3, C=5).spec == LossSpec.preset("darknet", S=3, C=5)
    assert YoloV1Loss(SPEC, reduction="mean").spec == SPEC.replace(reduction="mean")
    assert "preset='article'" in repr(YoloV1Loss(SPEC))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(spec=SPEC, preset="paper"), "either spec or preset"),
        (dict(preset="yolo9000"), "unknown preset"),
        (dict(lambda_cord=5.0), "unknown LossSpec field"),
        (dict(path="cuda"), "unknown path"),
        (dict(wh_mode="log"), "wh_mode must be one of"),
        (dict(spec="article"), "spec: expected a reference.LossSpec, got str"),
    ],
)
def test_module_refuses_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        YoloV1Loss(**kwargs)


@pytest.mark.parametrize("path", ["auto", "autograd", "fused"])
def test_module_forward_is_the_functional_form(path):
    pred, target = inputs()
    from_module = YoloV1Loss(SPEC, path=path)(pred, target)
    from_function = yolov1_loss(pred, target, SPEC, path=path)
    assert isinstance(from_module, TorchLossParts)
    assert all(torch.equal(a, b) for a, b in zip(from_module, from_function))


def _graph_nodes(tensor: torch.Tensor) -> set[str]:
    seen, todo = set(), [tensor.grad_fn]
    while todo:
        node = todo.pop()
        if node is not None and node.name() not in seen:
            seen.add(node.name())
            todo.extend(next_node for next_node, _ in node.next_functions)
    return seen


def test_auto_takes_the_fused_path():
    pred, target = inputs()
    pred.requires_grad_()
    assert any("FusedLoss" in name for name in _graph_nodes(yolov1_loss(pred, target, SPEC).total))
    assert not any("FusedLoss" in name for name in _graph_nodes(yolov1_loss(pred, target, SPEC, path="autograd").total))


def test_default_spec_is_the_paper_preset():
    pred, target = inputs(LossSpec())
    ref = reference.loss(pred.numpy(), target.numpy())
    assert yolov1_loss(pred, target).total.item() == pytest.approx(ref.total, rel=1e-12)


# --- input checks ---------------------------------------------------------------------------


def _reference_message(pred, target, spec=SPEC) -> str:
    with pytest.raises(ValueError) as refused:
        check_inputs(np.asarray(pred), np.asarray(target), spec)
    return str(refused.value)


def _spoil(kind: str):
    pred, target = inputs()
    C = SPEC.C
    if kind == "objectness":
        target[1, 0, 1, C] = 0.7
    elif kind == "nan":
        pred[0, 0, 0, 0] = float("nan")  # a class score of an object cell
    elif kind == "negative target size":
        target[0, 0, 0, C] = 1
        target[0, 0, 0, C + 3] = -0.5
    elif kind == "rank":
        pred = pred[0]
    elif kind == "channels":
        target = target[..., :-1]
    return pred, target


@pytest.mark.parametrize("kind", ["objectness", "nan", "negative target size", "rank", "channels"])
@pytest.mark.parametrize("path", ["autograd", "fused"])
def test_validate_raises_the_reference_messages(kind, path):
    pred, target = _spoil(kind)
    with pytest.raises(ValueError) as refused:
        yolov1_loss(pred, target, SPEC, path=path, validate=True)
    assert str(refused.value) == _reference_message(pred, target)


@pytest.mark.parametrize("kind", ["rank", "channels"])
def test_shapes_are_checked_without_validate_with_the_reference_message(kind):
    pred, target = _spoil(kind)
    with pytest.raises(ValueError) as refused:
        yolov1_loss(pred, target, SPEC)
    assert str(refused.value) == _reference_message(pred, target)


def test_without_validate_values_are_not_read():
    # No synchronisation by default: a NaN goes through (and shows in the result).
    pred, target = _spoil("nan")
    assert torch.isnan(yolov1_loss(pred, target, SPEC).total)


@pytest.mark.parametrize(
    "pred, target, message",
    [
        ([[0.0]], torch.zeros(1, 2, 2, 8), "pred: expected a torch.Tensor, got list"),
        (torch.zeros(1, 2, 2, 13), torch.zeros(1, 2, 2, 8, dtype=torch.int64), "target: expected a floating-point"),
        (torch.zeros(1, 2, 2, 13, device="meta"), torch.zeros(1, 2, 2, 8), "pred is on meta but target is on cpu"),
        (torch.zeros(2, 2, 2, 13), torch.zeros(3, 2, 2, 8), "pred has 2 images but target has 3"),
    ],
)
def test_default_checks(pred, target, message):
    with pytest.raises(ValueError, match=message):
        yolov1_loss(pred, target, SPEC)


def test_unknown_path_is_refused():
    with pytest.raises(ValueError, match="unknown path 'triton'"):
        yolov1_loss(*inputs(), SPEC, path="triton")


# --- layouts, strides, untouched inputs, empty batches ----------------------------------------


def _loss_and_grad(impl, pred, target, spec=SPEC):
    p = pred.detach().clone().requires_grad_() if pred.is_contiguous() else pred.detach().requires_grad_()
    parts = run(impl[0], p, target, spec)
    parts.total.backward()
    return parts, p.grad


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
def test_flat_inputs_give_the_same_loss_and_a_flat_gradient(impl):
    skip_unless_available(*impl)
    pred, target = (x.to(impl[1]) for x in inputs())
    parts4, grad4 = _loss_and_grad(impl, pred, target)
    parts2, grad2 = _loss_and_grad(impl, pred.reshape(2, -1), target.reshape(2, -1))
    assert grad2.shape == (2, pred[0].numel())
    assert torch.equal(parts4.total, parts2.total)
    assert torch.equal(grad4.reshape(2, -1), grad2)


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
def test_non_contiguous_inputs(impl):
    skip_unless_available(*impl)
    pred, target = (x.to(impl[1]) for x in inputs(n_images=3))
    parts, grad = _loss_and_grad(impl, pred, target)
    # Transposed storage for the 4-D tensors, every other image of a batch, and a strided flat view.
    transposed = pred.permute(3, 0, 1, 2).contiguous().permute(1, 2, 3, 0)
    spaced = torch.stack([pred, torch.zeros_like(pred)], dim=1)[:, 0]
    wide = torch.cat([target.reshape(3, -1), torch.ones(3, 7, dtype=target.dtype, device=target.device)], 1)
    for p, t in [(transposed, target.transpose(1, 2).contiguous().transpose(1, 2)), (spaced, wide[:, :-7])]:
        assert not p.is_contiguous() or not t.is_contiguous()
        parts_strided, grad_strided = _loss_and_grad(impl, p, t)
        for name in OUTPUT_NAMES:
            assert (
                relative_error(getattr(parts_strided, name).detach().cpu(), getattr(parts, name).detach().cpu())
                <= 1e-14
            )
        assert relative_error(grad_strided.cpu(), grad.cpu()) <= 1e-14


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
def test_inputs_are_not_modified(impl):
    skip_unless_available(*impl)
    pred, target = (x.to(impl[1]) for x in inputs())
    pred_before, target_before = pred.clone(), target.clone()
    p = pred.requires_grad_()
    parts = run(impl[0], p, target, SPEC)
    torch.autograd.backward([parts.coord, parts.total])
    assert torch.equal(pred.detach(), pred_before) and torch.equal(target, target_before)


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
def test_an_output_can_be_modified_in_place(impl):
    # As gradient accumulation does (loss /= steps); autograd refuses that on a view that a custom
    # Function returned, so the fused path's outputs must not be views of one tensor.
    skip_unless_available(*impl)
    pred, target = (x.to(impl[1]) for x in inputs())
    _, grad = _loss_and_grad(impl, pred, target)
    p = pred.clone().requires_grad_()
    total = run(impl[0], p, target, SPEC).total
    total /= 4
    total.backward()
    # Scaling by a power of two is exact: only a different rounding order could show.
    assert relative_error(4 * p.grad.cpu(), grad.cpu()) <= 1e-15


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
@pytest.mark.parametrize("reduction", ["sum", "mean", "none"])
def test_an_empty_batch_has_zero_loss_and_an_empty_gradient(impl, reduction):
    skip_unless_available(*impl)
    spec = SPEC.replace(reduction=reduction)
    pred = torch.zeros(0, 2, 2, 13, dtype=torch.float64, device=impl[1], requires_grad=True)
    parts = run(impl[0], pred, torch.zeros(0, 2, 2, 8, dtype=torch.float64, device=impl[1]), spec)
    expected_shape = (0,) if reduction == "none" else ()
    assert all(getattr(parts, name).shape == expected_shape for name in OUTPUT_NAMES)
    assert all(torch.all(getattr(parts, name) == 0) for name in OUTPUT_NAMES)
    parts.total.sum().backward()
    assert pred.grad.shape == pred.shape


# --- fused_loss_and_grad ----------------------------------------------------------------------


@pytest.mark.parametrize("spec", [SPEC, LossSpec.preset("motokimura", S=2, B=3, C=2, reduction="none")])
def test_fused_loss_and_grad_matches_the_reference(spec):
    pred, target = inputs(spec)
    values, grads = fused_loss_and_grad(pred.reshape(2, -1), target, spec)
    ref_parts, ref_grads = reference.loss_and_grad(pred.reshape(2, -1).numpy(), target.numpy(), spec)
    as_numpy = lambda parts: {name: getattr(parts, name).numpy() for name in OUTPUT_NAMES}  # noqa: E731
    assert_matches_reference(as_numpy(values), as_numpy(grads), ref_parts, ref_grads, tol=1e-10)


# --- torch.compile ----------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated:DeprecationWarning")  # torch's own
def test_torch_compile_of_the_autograd_path():
    # One small graph, compiled whole (fullgraph: no graph break); ~10 s on two CPU cores.
    pred, target = inputs()
    compiled = torch.compile(lambda p, t: yolov1_loss(p, t, SPEC, path="autograd").total, fullgraph=True)
    p = pred.clone().requires_grad_()
    value = compiled(p, target)
    value.backward()
    eager, eager_grad = _loss_and_grad(("autograd", "cpu"), pred, target)
    assert relative_error(value.detach(), eager.total.detach()) <= 1e-14
    assert relative_error(p.grad, eager_grad) <= 1e-14


def test_torch_compile_around_the_fused_path():
    # A compiled training step that calls the default path: the fused loss runs outside the graph
    # (dynamo cannot trace the numba kernel's dispatcher), with the same results as eager. The
    # "eager" backend: what is tested is dynamo's tracing, not inductor's code.
    pred, target = inputs()
    compiled = torch.compile(lambda p, t: 2 * yolov1_loss(p, t, SPEC).total, backend="eager")
    p = pred.clone().requires_grad_()
    compiled(p, target).backward()
    eager, eager_grad = _loss_and_grad(("fused", "cpu"), pred, target)
    assert torch.equal(p.grad, 2 * eager_grad)


# --- no host-device synchronisation -----------------------------------------------------------


@pytest.mark.parametrize("path", ["autograd", "fused"])
def test_no_host_device_synchronisation_on_cuda(path):
    skip_unless_available(path, "cuda")
    pred, target = (x.to("cuda", torch.float32) for x in inputs())
    pred.requires_grad_()
    yolov1_loss(pred, target, SPEC, path=path).total.backward()  # warm-up: the kernel's compile
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")  # any synchronising call now raises
    try:
        parts = yolov1_loss(pred, target, SPEC, path=path)
        torch.autograd.backward([parts.total, parts.coord])
    finally:
        torch.cuda.set_sync_debug_mode("default")


@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_the_fused_step_is_captured_in_a_cuda_graph_and_replays_exactly(reduction):
    # Capture needs what the launch count and the sync test show (no synchronisation, no
    # allocation sized by the data); here it is done, and a replay on new values must give what
    # an eager call gives, bit for bit (the kernel's reductions have a fixed order).
    skip_unless_available("fused", "cuda")
    spec = SPEC.replace(reduction=reduction)
    pred, target = (x.to("cuda", torch.float32) for x in inputs())
    static_pred = pred.clone().requires_grad_()
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):  # warm-up off the default stream, as capture requires
        for _ in range(2):
            static_pred.grad = None
            yolov1_loss(static_pred, target, spec, path="fused").total.backward()
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    static_pred.grad = None
    with torch.cuda.graph(graph):
        static_total = yolov1_loss(static_pred, target, spec, path="fused").total
        static_total.backward()
    fresh = pred * 0.9 + 0.05
    with torch.no_grad():
        static_pred.copy_(fresh)
    graph.replay()
    eager_pred = fresh.clone().requires_grad_()
    eager_total = yolov1_loss(eager_pred, target, spec, path="fused").total
    eager_total.backward()
    assert torch.equal(static_total, eager_total.detach())
    assert torch.equal(static_pred.grad, eager_pred.grad)


# --- non-finite predictions and targets ----------------------------------------------------------


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")  # the interpreter's 0 · inf
@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
@pytest.mark.parametrize("where", ["responsible w", "ignored class score"])
def test_a_non_finite_prediction_anywhere_gives_a_non_finite_total(impl, bad, where):
    # Without validation a NaN in the responsible predictor's w used to hand responsibility to
    # the other predictor and leave the total finite; a NaN in a channel the loss ignores (an
    # empty cell's class score) vanished too. Any torch op would propagate it.
    kind, device = impl
    skip_unless_available(kind, device)
    spec = LossSpec.preset("paper")
    pred = torch.rand(2, 7, 7, 30, dtype=torch.float64, device=device) * 0.5 + 0.25
    target = torch.zeros(2, 7, 7, 25, dtype=torch.float64, device=device)
    target[:, 3, 3, 20:] = torch.tensor([1.0, 0.5, 0.5, 0.3, 0.3])
    pred[:, 3, 3, 21:25] = torch.tensor([0.5, 0.5, 0.3**0.5, 0.3**0.5])  # predictor 0 responsible
    if where == "responsible w":
        pred[1, 3, 3, 23] = bad
    else:
        pred[1, 0, 0, 4] = bad
    parts = run(kind, pred, target, spec)
    assert not torch.isfinite(parts.total).item()


@pytest.mark.parametrize("path", ["autograd", "fused"])
def test_targets_never_receive_a_gradient(path):
    spec = LossSpec.preset("article")
    pred = torch.rand(2, 7, 7, 30, dtype=torch.float64, requires_grad=True)
    target = torch.zeros(2, 7, 7, 25, dtype=torch.float64)
    target[:, 2, 2, 20:] = torch.tensor([1.0, 0.5, 0.5, 0.3, 0.3])
    target.requires_grad_(True)
    yolov1_loss(pred, target, spec, path=path).total.backward()
    assert pred.grad is not None and target.grad is None


@pytest.mark.parametrize("kind", ["fused", "vectorized"])
def test_the_fused_gradient_is_not_differentiable_again_and_says_so(kind):
    # Under create_graph=True the fused path still gives the gradient, but differentiating that
    # gradient again must fail loudly: the saved gradient carries no second derivative. (total²,
    # so that the upstream gradient 2·total itself requires grad.)
    pred, target = inputs()
    p = pred.clone().requires_grad_()
    (plain,) = torch.autograd.grad(run(kind, p, target, SPEC).total, p)
    total = run(kind, p, target, SPEC).total
    (grad,) = torch.autograd.grad(total**2, p, create_graph=True)
    assert torch.allclose(grad.detach(), 2 * total.detach() * plain, rtol=1e-15, atol=0)
    with pytest.raises(RuntimeError, match="trying to differentiate twice"):
        grad.sum().backward()


def test_a_graph_kept_for_a_second_backward_gives_the_same_gradient_again():
    # The first backward of the total hands the saved gradient itself to the caller: a second
    # backward through the kept graph computes it again, .grad adds up the two, and a caller who
    # writes into the gradient it was given changes nothing the graph uses.
    pred, target = inputs()
    p = pred.clone().requires_grad_()
    total = yolov1_loss(p, target, SPEC, path="fused").total
    (first,) = torch.autograd.grad(total, p, retain_graph=True)
    expected = first.clone()
    first.zero_()
    total.backward(retain_graph=True)
    total.backward(retain_graph=True)
    assert torch.equal(p.grad, 2 * expected)
    (again,) = torch.autograd.grad(total, p)
    assert torch.equal(again, expected)


@pytest.mark.parametrize("reduction", ["sum", "none"])
def test_backward_of_the_total_makes_the_saved_gradient_the_grad_without_a_copy(reduction):
    # Forward's gradient is handed over, scaled in place: .grad is the very buffer the backend
    # wrote (no second gradient-sized allocation; on a GPU, no copy), and its values are right.
    written = []

    def recording(pred, target, spec, weights, scale):
        outputs, grad = cpu_backend()(pred, target, spec, weights, scale)
        written.append(grad)
        return outputs, grad

    spec = SPEC.replace(reduction=reduction)
    pred, target = inputs()
    p = pred.clone().requires_grad_()
    (expected,) = torch.autograd.grad(yolov1_loss(p, target, spec, path="autograd").total.sum(), p)
    total = fused_loss(p, target, spec, backend=recording)[-1]
    pointer = written[0].data_ptr()
    del written[:]
    scale = 1 if reduction == "none" else 3
    (scale * total).sum().backward()
    assert p.grad.data_ptr() == pointer
    torch.testing.assert_close(p.grad, scale * expected, rtol=1e-12, atol=1e-12)

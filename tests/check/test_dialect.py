"""Dialect identification against implementations whose dialect is known (oracle-backed)."""

from __future__ import annotations

import numpy as np
import pytest

from yolov1_loss.conformance.dialects.fitting import identify
from yolov1_loss.reference import PRESETS, LossSpec, loss, loss_and_grad
from yolov1_loss.reference.spec import CHOICES

from ..reference.inputs import random_inputs


def float32_values(spec: LossSpec):
    """An implementation of ``spec`` whose values are rounded to float32, as most real ones are."""
    return lambda pred, target: np.float32(loss(pred, target, spec).total)


def gradient(spec: LossSpec):
    return lambda pred, target: loss_and_grad(pred, target, spec)[1].total


@pytest.mark.parametrize("preset", list(PRESETS))
def test_every_preset_is_named(preset):
    truth = LossSpec.preset(preset)
    found = identify(float32_values(truth), grad_fn=gradient(truth))
    assert found.matches and found.preset == preset, found
    assert found.spec == truth
    assert found.undetermined == ()


@pytest.mark.parametrize(
    "knob, value",
    [
        ("noobj_scope", "cell"),
        ("iou_frame", "raw"),
        ("wh_mode", "linear"),
        ("wh_mode", "sqrt"),
        ("conf_target", "one"),
        ("iou_grad", "through"),
        ("responsible", "max_iou_else_min_rmse"),
        ("iou_eps", 1e-6),
        ("reduction", "mean"),
        ("reduction", "none"),
    ],
)
def test_one_knob_away_from_the_paper(knob, value):
    truth = LossSpec.preset("paper", S=4, C=3, **{knob: value})
    found = identify(float32_values(truth), S=4, B=2, C=3, grad_fn=gradient(truth))
    assert found.matches and found.spec == truth, (found.spec.knobs(), truth.knobs())


def test_weights_are_fitted():
    truth = LossSpec.preset("motokimura", lambda_coord=3.0, lambda_noobj=0.2, lambda_class=2.0)
    found = identify(float32_values(truth))
    assert found.matches and found.spec == truth
    assert found.preset is None


def test_a_common_factor_of_the_default_weights_is_the_loss_scale():
    truth = LossSpec.preset("paper", loss_scale=0.25)
    assert identify(float32_values(truth)).spec.loss_scale == 0.25


@pytest.mark.parametrize("seed", range(6))
def test_random_dialects_are_reproduced(seed):
    rng = np.random.default_rng(seed)
    knobs = {name: str(rng.choice(values)) for name, values in CHOICES.items()}
    truth = LossSpec(S=3, B=int(rng.integers(1, 4)), C=2, iou_eps=float(rng.choice([0.0, 1e-6])), **knobs)
    found = identify(float32_values(truth), S=3, B=truth.B, C=2, grad_fn=gradient(truth))
    assert found.matches
    # Knobs that cannot change anything (signed_sqrt_eps outside signed_sqrt, say) may differ;
    # what must hold is that the identified dialect gives the same values and gradients.
    for check in range(3):
        pred, target = random_inputs(np.random.default_rng(100 + check), truth.replace(wh_mode="sqrt"), 2)
        expected, expected_grad = loss_and_grad(pred, target, truth)
        got, got_grad = loss_and_grad(pred, target, found.spec)
        np.testing.assert_allclose(got.total, expected.total, rtol=1e-9)
        np.testing.assert_allclose(got_grad.total, expected_grad.total, rtol=1e-9, atol=1e-12)


def test_nothing_matches_a_wrong_loss():
    truth = LossSpec.preset("article")
    broken = lambda pred, target: loss(pred, target, truth).total + 0.01 * float(np.sum(pred[..., 0] ** 2))
    found = identify(broken)
    assert not found.matches
    assert "no dialect reproduces the values" in found.notes[0]


def test_an_implementation_that_always_fails_is_reported():
    def fails(pred, target):
        raise RuntimeError("boom")

    with pytest.raises(ValueError, match="failed on every probe"):
        identify(fails, S=2, B=1, C=1)


def test_without_gradients_iou_grad_is_left_undetermined():
    truth = LossSpec.preset("article")
    found = identify(float32_values(truth))
    assert found.matches and "iou_grad" in found.undetermined


@pytest.mark.parametrize(
    "knobs",
    [
        dict(noobj_scope="own_weight", lambda_noobj_object=1.0),  # public code: 1 here, 0.5 in empty cells
        dict(noobj_scope="own_weight", lambda_noobj_object=2.0, loss_scale=0.5),
        dict(wh_mode="clamped_sqrt"),
        dict(wh_mode="clamped_sqrt", iou_frame="raw", noobj_scope="cell"),
    ],
    ids=str,
)
def test_the_knobs_of_public_code_are_identified(knobs):
    truth = LossSpec.preset("paper", S=4, C=3, **knobs)
    found = identify(float32_values(truth), S=4, B=2, C=3, grad_fn=gradient(truth))
    assert found.matches and found.spec == truth, (found.spec.knobs(), truth.knobs())


def test_a_loss_that_clamps_is_not_dropped_for_accepting_negative_sizes():
    # √max(v, ε) accepts the negative-size probes that 'sqrt' refuses: it is told from 'sqrt' there.
    truth = LossSpec.preset("motokimura", S=3, C=2, wh_mode="clamped_sqrt")
    found = identify(float32_values(truth), S=3, B=2, C=2)
    assert found.matches and found.spec.wh_mode == "clamped_sqrt"
    plain_sqrt = identify(float32_values(truth.replace(wh_mode="sqrt")), S=3, B=2, C=2)
    assert plain_sqrt.matches and plain_sqrt.spec.wh_mode == "sqrt"


def test_each_family_of_term_probes_isolates_its_columns_in_every_dialect():
    from yolov1_loss.conformance.dialects.fitting import _candidates, _oracle_columns, _probe_groups
    from yolov1_loss.conformance.dialects.term_probes import COLUMNS, FAMILIES, KNOB_FREE

    groups = _probe_groups(3, 2, 2)
    first = {family: np.concatenate(_oracle_columns(next(_candidates(3, 2, 2)), groups[family])) for family in FAMILIES}
    for spec_none in _candidates(3, 2, 2):
        for family, active in FAMILIES.items():
            columns = np.concatenate(_oracle_columns(spec_none, groups[family]))
            if family in KNOB_FREE:  # the same in every dialect (so the oracle evaluates it once)
                np.testing.assert_allclose(columns, first[family], rtol=0, atol=1e-9 * np.abs(columns).max())
            inactive = [k for k, name in enumerate(COLUMNS) if name not in active]
            assert np.abs(columns[:, inactive]).max() <= 1e-9 * np.abs(columns).max(), (family, spec_none)
            for name in active:  # and what it shows is really there
                assert np.abs(columns[:, COLUMNS.index(name)]).max() > 1e-3, (family, name, spec_none)


def _paper_with_cls(cls_term):
    """The paper's loss, but with its class term replaced by ``cls_term(q, p)`` summed over object cells."""
    truth = LossSpec.preset("paper", S=3, C=2)

    def values(pred, target):
        has = target[..., truth.C] == 1
        rest = loss(pred, target, truth.replace(lambda_class=0.0)).total
        return np.float32(rest + cls_term(target[..., : truth.C], pred[..., : truth.C])[has].sum())

    return truth, values


def test_a_loss_that_fits_no_dialect_in_one_term_only_is_told_term_by_term():
    truth, values = _paper_with_cls(lambda q, p: np.abs(q - p).sum(-1))  # an L1 class term
    found = identify(values, S=3, B=2, C=2)
    assert not found.matches
    by_family = {t.family: t for t in found.terms}
    assert not by_family["cls"].matches and by_family["cls"].residual > 0.1
    assert all(t.matches for name, t in by_family.items() if name != "cls"), found.terms
    assert by_family["coord"].weights["coord"] == pytest.approx(5.0, rel=1e-5)
    assert by_family["noobj"].weights["noobj"] == pytest.approx(0.5, rel=1e-5)
    # The weights that fit are the dialect's; the class term's is not presented as fitted.
    assert "lambda_class" not in found.fitted_weights
    assert {"lambda_coord", "lambda_obj", "lambda_noobj"} <= found.fitted_weights
    assert (found.spec.lambda_coord, found.spec.lambda_obj, found.spec.lambda_noobj) == (5.0, 1.0, 0.5)
    assert found.spec.noobj_scope == "predictor"
    assert found.undetermined in ((), ("iou_grad",))  # nothing fits, so nothing was "told apart"
    assert "cls (class scores): no dialect reproduces it" in by_family["cls"].line()


def test_no_weight_is_fitted_negative():
    truth, values = _paper_with_cls(lambda q, p: -0.5 * ((q - p) ** 2).sum(-1))  # λ_class = −0.5
    found = identify(values, S=3, B=2, C=2)
    assert not found.matches
    assert min(found.spec.weights()) >= 0
    assert "lambda_class" not in found.fitted_weights


def test_the_non_negative_fit_is_scipys_nnls():
    import scipy.optimize

    from yolov1_loss.conformance.dialects.fitting import _nonnegative_lstsq

    rng = np.random.default_rng(0)
    for _ in range(200):
        A = rng.normal(size=(12, int(rng.integers(1, 6))))
        b = rng.normal(size=12)
        np.testing.assert_allclose(_nonnegative_lstsq(A, b), scipy.optimize.nnls(A, b)[0], atol=1e-9)


def test_a_fitted_weight_reads_as_its_shortest_number_and_minus_zero_as_zero():
    # A loss whose object cells' other predictors pay nothing was reported "weight -0".
    from yolov1_loss.conformance.dialects.fitting import _tidy

    assert [f"{_tidy(w):g}" for w in (-0.0, 0.19999905, 5.0000002, 0.123456789)] == ["0", "0.2", "5", "0.123457"]

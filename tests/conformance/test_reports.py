"""Failure reports: located, readable, JSON-ready, and their reproduction runs as pasted."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from yolov1_loss.conformance.inputs.example import Example, Recipe, build
from yolov1_loss.conformance.mutants import MUTANTS
from yolov1_loss.conformance.mutants.base import TorchLoss
from yolov1_loss.conformance.suite.failure import ConformanceFailure, ImplementationRaised
from yolov1_loss.conformance.suite.properties import PROPERTIES
from yolov1_loss.conformance.user_loss.implementation import Implementation
from yolov1_loss.reference import LossSpec

ARTICLE = LossSpec.preset("article", S=2, B=2, C=3)
ARTICLE_TIE = build(Recipe(ARTICLE, images=2, occupancy="full", cases=("tie",), seed=3))


def _failure(mutant: str, prop: str, example=ARTICLE_TIE) -> ConformanceFailure:
    with pytest.raises(ConformanceFailure) as caught:
        PROPERTIES[prop].check(MUTANTS[mutant].implementation(), example)
    return caught.value


def test_a_value_failure_names_component_cell_predictor_and_both_values():
    failure = _failure("tie_goes_to_last", "values_match_oracle")
    assert failure.component == "obj"
    assert (failure.image, failure.cell, failure.predictor) == (0, (0, 0), 0)
    assert failure.actual != pytest.approx(failure.expected)
    assert "IoUs with the target" in failure.note


def test_a_gradient_failure_names_the_channel():
    failure = _failure("squared_error_half_gradient", "gradients_match_oracle")
    assert failure.component == "coord"
    assert failure.channel.startswith(f"predictor {failure.predictor} ")
    assert failure.actual == pytest.approx(failure.expected / 2)  # the mutant's missing factor 2


def test_the_reproduction_raises_the_same_failure_when_run():
    failure = _failure("swapped_lambdas", "values_match_oracle")
    with pytest.raises(ConformanceFailure) as again:
        exec(failure.reproduction(), {})
    assert (again.value.property, again.value.component) == (failure.property, failure.component)
    assert (again.value.image, again.value.cell) == (failure.image, failure.cell)


def test_an_example_without_a_recipe_is_reproduced_from_its_arrays():
    one = ARTICLE_TIE.select_images([1])
    no_objects = Example(one.spec, one.pred, np.zeros_like(one.target))
    failure = _failure("class_loss_on_empty_cells", "values_match_oracle", no_objects)
    assert "np.array(" in failure.reproduction()
    with pytest.raises(ConformanceFailure):
        exec(failure.reproduction(), {})


def test_to_dict_is_json_ready():
    record = json.loads(json.dumps(_failure("tie_goes_to_last", "values_match_oracle").to_dict()))
    assert record["property"] == "values_match_oracle" and record["component"] == "obj"
    assert record["cell"] == [0, 0] and record["counterexample"].startswith("build(Recipe(")


class _RaisesInBackward(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return x * 1.0

    @staticmethod
    def backward(ctx, grad):
        raise RuntimeError("one of the variables needed for gradient computation has been modified")


def test_an_exception_in_backward_is_reported_with_its_stage_and_text():
    def loss(pred, target, spec):
        parts = TorchLoss(spec)(_RaisesInBackward.apply(pred), target)
        return parts["total"]

    impl = Implementation("raises in backward", loss)
    with pytest.raises(ImplementationRaised) as caught:
        PROPERTIES["gradients_match_oracle"].check(impl, ARTICLE_TIE)
    assert caught.value.stage == "backward of total"
    assert "RuntimeError: one of the variables needed" in str(caught.value)


def test_an_output_that_is_no_loss_is_reported():
    impl = Implementation("returns a dict without total", lambda pred, target, spec: {"value": pred.sum()})
    with pytest.raises(ImplementationRaised, match="without 'total' or 'loss'"):
        PROPERTIES["values_match_oracle"].check(impl, ARTICLE_TIE)


def test_unknown_report_fields_are_refused():
    with pytest.raises(TypeError, match="unknown ConformanceFailure field"):
        ConformanceFailure("p", "m", colour="red")


def test_a_located_failure_reads_its_location_once():
    calls = []

    def locate():
        calls.append(1)
        return {"image": 1, "cell": (2, 3)}

    failure = ConformanceFailure("p", "m", component="cls", locate=locate)
    assert (failure.image, failure.cell) == (1, (2, 3))
    assert "image 1, cell (2, 3)" in str(failure) and np.sum(calls) == 1

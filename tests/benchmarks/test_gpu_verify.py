"""The one-command GPU verification, as far as a machine without a GPU can take it: its refusal
without CUDA, the selection of the CUDA tests, and the JSON and PNG it writes (its CUDA steps
stubbed: they need a device)."""

from __future__ import annotations

import json

from yolov1_loss.benchmarks import gpu_verify
from yolov1_loss.benchmarks.sweep import Grid
from yolov1_loss.benchmarks.targets import Outcome
from yolov1_loss.cli import main


def test_it_needs_a_cuda_device(capsys):
    assert main(["bench", "--verify-gpu", "out"]) == 2
    assert "--verify-gpu needs --device cuda" in capsys.readouterr().err


def test_its_test_selection_is_the_suites_cuda_cases():
    # -k cuda picks the implementations on the device by their IDs, and the device-only tests by name.
    from tests.torch_impl import helpers, test_api

    assert gpu_verify.checkout_root() is not None
    for param in helpers.IMPLEMENTATIONS:
        (_, device), name = param.values[0], param.id
        assert (gpu_verify.TESTS_SELECTION in name) == (device == "cuda"), name
    for test in (test_api.test_the_fused_step_is_captured_in_a_cuda_graph_and_replays_exactly,
                 test_api.test_no_host_device_synchronisation_on_cuda):  # fmt: skip
        assert gpu_verify.TESTS_SELECTION in test.__name__


def test_it_writes_one_json_and_one_png(tmp_path, monkeypatch):
    monkeypatch.setattr(gpu_verify, "cuda_tests", lambda root, log: {"returncode": 0, "summary": "3 passed"})
    targets = [Outcome("CUDA N=64: fused over naive", 25.0, 20), Outcome("launches", 4, 3, at_most=True, unit="")]
    monkeypatch.setattr("yolov1_loss.benchmarks.targets.cuda_targets", lambda device: targets)
    monkeypatch.setattr("yolov1_loss.benchmarks.sweep.QUICK", Grid((1,)))  # one batch size: seconds less
    content = gpu_verify.run(tmp_path, device="cpu")  # the sweep runs where it is: here, the CPU
    written = json.loads((tmp_path / "gpu-verify.json").read_text())
    assert (tmp_path / "gpu-verify.png").read_bytes()[:4] == b"\x89PNG"
    assert written["cuda_tests"]["summary"] == "3 passed"
    assert [t["met"] for t in written["targets"]] == [True, False]
    assert {r["contender"] for r in written["sweep"]} == {"reference", "naive", "autograd", "fused"}
    assert not gpu_verify.passed(content)  # a target not met fails the verification


def test_a_step_that_raises_is_recorded_and_the_others_still_run(tmp_path, monkeypatch):
    monkeypatch.setattr(gpu_verify, "cuda_tests", lambda root, log: {"returncode": 0, "summary": "3 passed"})

    def broken(device):
        raise RuntimeError("the kernel did not compile")

    monkeypatch.setattr("yolov1_loss.benchmarks.targets.cuda_targets", broken)
    monkeypatch.setattr("yolov1_loss.benchmarks.sweep.QUICK", Grid((1,)))
    content = gpu_verify.run(tmp_path, device="cpu")
    written = json.loads((tmp_path / "gpu-verify.json").read_text())
    assert "RuntimeError: the kernel did not compile" in written["targets"]["error"]
    assert {r["contender"] for r in written["sweep"]} == {"reference", "naive", "autograd", "fused"}
    assert not gpu_verify.passed(content)

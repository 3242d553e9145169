"""The sweep's grids and the bytes a step must move (the CUDA bandwidth figure's numerator)."""

from __future__ import annotations

import torch

from yolov1_loss.benchmarks.sweep import DEFAULT, FULL, configurations, for_device, required_bytes


def test_the_full_grid_is_the_issues_sweep():
    assert (FULL.batch_sizes, FULL.grid_sides, FULL.predictors) == ((1, 8, 64, 512, 4096), (7, 14), (2, 3))
    assert FULL.dtypes == ("float32", "bfloat16") and FULL.modes == ("forward", "backward", "forward+backward")
    assert for_device(FULL, "cuda").batch_sizes[-1] == 65536
    assert for_device(FULL, "cpu") is FULL


def test_configurations_vary_the_batch_size_fastest():
    assert list(configurations(DEFAULT)) == [(n, 7, 2, "float32") for n in (1, 8, 64, 512)]
    assert len(list(configurations(FULL))) == 5 * 2 * 2 * 2


def test_required_bytes_read_inputs_once_and_write_the_gradient_once():
    pred, target = torch.zeros(3, 7, 7, 30), torch.zeros(3, 7, 7, 25, dtype=torch.bfloat16)
    reads, writes = 3 * 49 * 30 * 4 + 3 * 49 * 25 * 2, 3 * 49 * 30 * 4
    assert required_bytes(pred, target, "forward") == reads
    assert required_bytes(pred, target, "backward") == writes
    assert required_bytes(pred, target, "forward+backward") == reads + writes

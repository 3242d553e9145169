"""The README's training-loop example runs as printed, and trains."""

from __future__ import annotations

import re
from pathlib import Path

import torch

README = Path(__file__).resolve().parents[2] / "README.md"


def training_example() -> str:
    section = README.read_text().split("## Training with torch_impl", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_readme_training_loop_runs_and_lowers_the_loss():
    torch.manual_seed(0)
    images = torch.randn(4, 8)
    targets = torch.zeros(4, 7, 7, 25)
    targets[:, 3, 3, 20:] = torch.tensor([1.0, 0.5, 0.5, 0.25, 0.25])  # one object per image
    targets[:, 3, 3, 7] = 1.0  # of class 7
    model = torch.nn.Linear(8, 7 * 7 * 30)
    namespace = {
        "model": model,
        "loader": [(images, targets)] * 20,
        "optimizer": torch.optim.SGD(model.parameters(), lr=1e-3),
    }
    from yolov1_loss import torch_impl

    before = torch_impl.YoloV1Loss()(model(images), targets).total.item()
    exec(training_example(), namespace)
    after = torch_impl.YoloV1Loss()(model(images), targets).total.item()
    assert after < before

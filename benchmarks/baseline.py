"""The fused path as it was when its CPU target was set, as a contender to time beside today's.

The fixed-cost issue asks for forward and backward at N = 1 in at most half the time of the code
it measured, commit BASELINE_COMMIT, in one run. That tree's packages are top-level (``reference``,
``torch_impl``), so they import beside ``yolov1_loss`` into one process::

    git worktree add /tmp/baseline ee4f096
    yolov1-loss bench --targets --baseline /tmp/baseline
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

from yolov1_loss.benchmarks.contenders import Contender, runs_anywhere
from yolov1_loss.reference import LossSpec

BASELINE_COMMIT = "ee4f096"


def baseline_contender(tree: str | Path) -> Contender:
    """The fused path of the checkout at ``tree`` (of BASELINE_COMMIT), in the preset of the spec it
    is built for. ValueError where ``tree`` is no such checkout, or its packages do not import from it."""
    root = Path(tree).resolve()
    if not ((root / "torch_impl" / "fused.py").is_file() and (root / "reference" / "spec.py").is_file()):
        raise ValueError(
            f"{tree} is not a checkout of {BASELINE_COMMIT}: it has no torch_impl/fused.py and reference/spec.py "
            f"at its top (make one with: git worktree add DIR {BASELINE_COMMIT})"
        )
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))  # first (yolov1_loss is imported already, so it stays ours)
    modules = [importlib.import_module(name) for name in ("reference", "torch_impl")]
    for module in modules:
        found = Path(module.__file__).resolve()
        if root not in found.parents:
            raise ValueError(f"{tree}: `import {module.__name__}` finds {found}, not the checkout's")
    reference, torch_impl = modules

    def build(spec: LossSpec):
        name = spec.preset_name()
        if name is None:
            raise ValueError(f"the {BASELINE_COMMIT} baseline runs a preset's dialect; this spec is none: {spec}")
        old = reference.LossSpec.preset(name, S=spec.S, B=spec.B, C=spec.C)
        return lambda pred, target: torch_impl.yolov1_loss(pred, target, old, path="fused").total

    return Contender(f"fused@{BASELINE_COMMIT}", build, runs_anywhere)

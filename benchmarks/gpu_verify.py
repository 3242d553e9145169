"""The one-command GPU verification: what a session with a lent CUDA device runs once.

Three steps, each with a time limit of its own, so that the whole stays within about 8 minutes:
the project's CUDA tests (in a pytest process of their own, from the checkout), the fused path's
CUDA targets (:func:`benchmarks.targets.cuda_targets`: launches, speed over naive at N=64,
bandwidth and memory at N=65536), and a short sweep of the contenders without torch.compile. It
writes one JSON (every figure, the machine, the tests' summary) and one PNG (the sweep).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

TESTS_TIMEOUT_S = 240
# The CUDA cases of the suite: torch_impl's paths on the device (their IDs end in -cuda), its
# synchronisation and CUDA-graph tests, and the throughput benchmarks on CUDA.
TESTS = ("tests/torch_impl", "benchmarks/test_throughput.py")
TESTS_SELECTION = "cuda"


def checkout_root() -> Path | None:
    """The repository the package was installed from (editable), where the tests are; or None."""
    root = Path(__file__).resolve().parents[1]
    return root if (root / "tests" / "torch_impl").is_dir() else None


def cuda_tests(root: Path | None, timeout_s: float = TESTS_TIMEOUT_S) -> dict:
    """Run the CUDA tests; their counts, the summary line and the exit status (None if not run)."""
    if root is None:
        return {"returncode": None, "summary": "not run: the tests live in a checkout (pip install -e .)"}
    command = [sys.executable, "-m", "pytest", *TESTS, "-k", TESTS_SELECTION, "-q", "-n", "0", "-p", "no:cacheprovider"]
    environment = {key: value for key, value in os.environ.items() if key != "TRITON_INTERPRET"}
    start = time.perf_counter()
    try:
        done = subprocess.run(command, cwd=root, env=environment, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return {"returncode": None, "summary": f"not finished in {timeout_s:g} s", "command": " ".join(command)}
    lines = done.stdout.strip().splitlines()
    summary = lines[-1] if lines else done.stderr.strip()[-500:]
    counts = {word: int(n) for n, word in re.findall(r"(\d+) (passed|failed|skipped|errors?|deselected)", summary)}
    return {
        "returncode": done.returncode,
        "summary": summary,
        "counts": counts,
        "seconds": round(time.perf_counter() - start, 1),
        "command": " ".join(command),
        "failures": [line for line in lines if line.startswith(("FAILED", "ERROR"))],
    }


def run(out: Path, device: str = "cuda") -> dict:
    """All three steps; writes ``out/gpu-verify.json`` and ``out/gpu-verify.png``; returns the JSON's content."""
    from yolov1_loss.benchmarks import report, sweep
    from yolov1_loss.benchmarks.contenders import project_contenders
    from yolov1_loss.benchmarks.machine import machine_info
    from yolov1_loss.benchmarks.targets import TARGET_SPEC, cuda_targets

    out.mkdir(parents=True, exist_ok=True)
    print("1/3 the CUDA tests", flush=True)
    tests = cuda_tests(checkout_root())
    print(f"    {tests['summary']}", flush=True)
    print("2/3 the CUDA targets", flush=True)
    outcomes = cuda_targets(device)
    for outcome in outcomes:
        print(f"    {outcome.line()}", flush=True)
    print("3/3 a short sweep (N in 1, 64, 65536; no torch.compile)", flush=True)
    grid = sweep.for_device(sweep.QUICK, device)
    results = sweep.run_sweep(project_contenders(None), grid, TARGET_SPEC, device, progress=lambda line: None)
    print(report.table(results), flush=True)
    content = {
        "machine": machine_info(),
        "cuda_tests": tests,
        "targets": [{**asdict(o), "met": o.met, "line": o.line()} for o in outcomes],
        "sweep": [r.as_dict() for r in results],
    }
    (out / "gpu-verify.json").write_text(json.dumps(content, indent=1, default=str))
    report.plot(results, str(out / "gpu-verify.png"))
    print(f"wrote {out / 'gpu-verify.json'} and {out / 'gpu-verify.png'}", flush=True)
    return content


def passed(content: dict) -> bool:
    """Every CUDA test passed and every target that was measured was met."""
    return content["cuda_tests"]["returncode"] == 0 and all(t["met"] is not False for t in content["targets"])

"""The one-command GPU verification: what a session with a lent CUDA device runs once.

Three steps, each with a time limit of its own, so that the whole stays within about 8 minutes:
the project's CUDA tests (in a pytest process of their own, from the checkout), the fused path's
CUDA targets (:func:`benchmarks.targets.cuda_targets`: launches, speed over naive at N=64,
bandwidth and memory at N=65536), and a short sweep of the contenders without torch.compile. It
writes one JSON (every figure, the machine, the tests' summary), the tests' whole output, and one
PNG (the sweep). A step that raises is recorded in the JSON with its traceback and the next still
runs: a lent device is scarce, so one call should bring back everything it can.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import traceback
from dataclasses import asdict
from pathlib import Path

TESTS_TIMEOUT_S = 240
# The CUDA cases of the suite: torch_impl's paths on the device (their IDs end in -cuda), its
# synchronisation and CUDA-graph tests, and the throughput benchmarks on CUDA.
TESTS = ("tests/torch_impl", "benchmarks/test_throughput.py")
TESTS_SELECTION = "cuda"
# Most of the tests' time is Triton compiling one kernel per dialect and dtype (about a second
# each): in one process they took over 240 s on an H200 machine's 16 cores; xdist spreads them.
TESTS_WORKERS = 8


def checkout_root() -> Path | None:
    """The repository the package was installed from (editable), where the tests are; or None."""
    root = Path(__file__).resolve().parents[1]
    return root if (root / "tests" / "torch_impl").is_dir() else None


def cuda_tests(root: Path | None, log: Path, timeout_s: float = TESTS_TIMEOUT_S) -> dict:
    """Run the CUDA tests, their whole output written to ``log``; their counts, the summary line and
    the exit status (None if not run)."""
    if root is None:
        return {"returncode": None, "summary": "not run: the tests live in a checkout (pip install -e .)"}
    workers = str(min(TESTS_WORKERS, os.cpu_count() or 1))
    command = [
        sys.executable,
        "-m",
        "pytest",
        *TESTS,
        "-k",
        TESTS_SELECTION,
        "-q",
        "-n",
        workers,
        "-p",
        "no:cacheprovider",
    ]
    environment = {key: value for key, value in os.environ.items() if key != "TRITON_INTERPRET"}
    start = time.perf_counter()
    try:
        done = subprocess.run(command, cwd=root, env=environment, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired as stopped:
        log.write_text(_text(stopped.stdout) + _text(stopped.stderr))
        return {"returncode": None, "summary": f"not finished in {timeout_s:g} s", "command": " ".join(command)}
    log.write_text(done.stdout + done.stderr)
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


def _text(output: bytes | str | None) -> str:
    """What a timed-out subprocess had printed (bytes, even in text mode, or None)."""
    if isinstance(output, bytes):
        return output.decode(errors="replace")
    return output or ""


def _step(number: int, title: str, body):
    """Run one step; its value, or a dict holding the exception's traceback (printed too)."""
    print(f"{number}/3 {title}", flush=True)
    try:
        return body()
    except Exception:
        failure = traceback.format_exc()
        print(failure, flush=True)
        return {"error": failure}


def run(out: Path, device: str = "cuda") -> dict:
    """All three steps; writes ``out/gpu-verify.json`` and ``out/gpu-verify.png``; returns the JSON's content."""
    from yolov1_loss.benchmarks import report, sweep
    from yolov1_loss.benchmarks.contenders import project_contenders
    from yolov1_loss.benchmarks.machine import machine_info
    from yolov1_loss.benchmarks.targets import TARGET_SPEC, cuda_targets

    out.mkdir(parents=True, exist_ok=True)
    tests = _step(1, "the CUDA tests", lambda: cuda_tests(checkout_root(), out / "cuda-tests.log"))
    print(f"    {tests.get('summary', 'raised')}", flush=True)
    outcomes = _step(2, "the CUDA targets", lambda: cuda_targets(device))
    for outcome in outcomes if isinstance(outcomes, list) else ():
        print(f"    {outcome.line()}", flush=True)
    grid = sweep.for_device(sweep.QUICK, device)
    results = _step(
        3,
        f"a short sweep (N in {', '.join(map(str, grid.batch_sizes))}; no torch.compile)",
        lambda: sweep.run_sweep(
            project_contenders(None), grid, TARGET_SPEC, device, progress=lambda line: print(f"    {line}", flush=True)
        ),
    )
    content = {
        "machine": machine_info(),
        "cuda_tests": tests,
        "targets": [{**asdict(o), "met": o.met, "line": o.line()} for o in outcomes]
        if isinstance(outcomes, list)
        else outcomes,
        "sweep": [r.as_dict() for r in results] if isinstance(results, list) else results,
    }
    (out / "gpu-verify.json").write_text(json.dumps(content, indent=1, default=str))
    if isinstance(results, list):
        print(report.table(results), flush=True)
        report.plot(results, str(out / "gpu-verify.png"))
    print(f"wrote {out / 'gpu-verify.json'}, the tests' output and the sweep's plot to {out}", flush=True)
    return content


def passed(content: dict) -> bool:
    """Every CUDA test passed, no step raised, and every target that was measured was met."""
    targets, sweep = content["targets"], content["sweep"]
    if not isinstance(targets, list) or not isinstance(sweep, list):
        return False
    return content["cuda_tests"].get("returncode") == 0 and all(t["met"] is not False for t in targets)

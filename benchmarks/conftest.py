"""pytest hooks of the benchmark suite: --bench-full, the cases, machine info, thread pinning."""

from __future__ import annotations

import pytest

from yolov1_loss.benchmarks import machine, suite
from yolov1_loss.benchmarks.timing import pinned_threads


def pytest_addoption(parser):
    parser.addoption(
        "--bench-full",
        action="store_true",
        help="run the whole benchmark sweep with inductor (long) instead of the quick CI mode",
    )


def pytest_generate_tests(metafunc):
    if "case" in metafunc.fixturenames:
        full = metafunc.config.getoption("--bench-full", default=False)
        metafunc.parametrize("case", suite.cases(full), ids=str)


def pytest_benchmark_update_machine_info(config, machine_info):
    """Add the CPU model, torch and NumPy versions, and the GPU's name and driver to saved benchmark JSON."""
    machine_info["yolov1_loss"] = machine.machine_info()


@pytest.fixture(autouse=True)
def one_thread():
    """Every benchmark runs with torch pinned to one thread (restored afterwards)."""
    with pinned_threads(1):
        yield 1

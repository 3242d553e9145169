"""Without a GPU, the Triton kernel is tested through Triton's interpreter on CPU tensors.

Triton reads TRITON_INTERPRET when ``triton`` is first imported (its own library functions are
jitted then), so it is set here, at the root, before any test module is collected: torch's
compiler, which the benchmarks and the conformance suite use, may import triton early.
On a machine with CUDA it is left alone and the kernel is compiled.
"""

import os

import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

# The pytest plugin's tests run nested sessions through pytester.
pytest_plugins = ["pytester"]

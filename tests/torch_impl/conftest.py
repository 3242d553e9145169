"""Without a GPU, the Triton kernel is tested through Triton's interpreter on CPU tensors.

``triton.jit`` reads TRITON_INTERPRET when the kernel is defined, so it is set here, while
pytest collects, before any test imports ``torch_impl.triton_kernel`` (torch_impl imports it
only for CUDA tensors). On a machine with CUDA it is left alone and the kernel is compiled.
"""

import os

import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

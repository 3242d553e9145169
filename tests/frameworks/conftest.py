"""These tests load JAX and TensorFlow into the test process: Triton's compiler library goes first.

TensorFlow and Triton each carry a copy of LLVM, whose command-line options are registered by each
copy; loading Triton's after TensorFlow's aborts the process ("LLVM ERROR: inconsistency in
registered CommandLine options"), the other order is harmless. A test process of the suite runs
the torch_impl tests (which load Triton) after these, in any order, so Triton's library is loaded
here, before any test of this folder imports TensorFlow. (A check of a TensorFlow loss loads
TensorFlow only in its worker process, which never loads Triton.)
"""

import contextlib

with contextlib.suppress(ImportError):  # triton is in the test extra on Linux only
    import triton._C.libtriton  # noqa: F401

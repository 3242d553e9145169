"""JAX and TensorFlow (Keras) losses, called the way their users call them.

A JAX loss gets ``jax.Array``s and its gradient comes from ``jax.grad``; a TensorFlow or Keras
loss (a function, or a ``tf.keras.losses.Loss`` instance) gets ``tf.Tensor``s and its gradient
comes from ``tf.GradientTape``. Their users run a loss compiled (``jax.jit``, ``tf.function``),
so the loss and its gradient are run compiled, and that is what is judged; where the compiled
run raises and the eager one does not, the eager results are judged and
:attr:`~yolov1_loss.conformance.user_loss.implementation.Evaluation.eager_only` says why the
compiled one failed (``check`` reports it as a finding).

Each framework is imported on first use, in the process that runs the loss (``check``'s
worker): a check of a torch loss imports neither.
"""

from __future__ import annotations

import functools
import os
import sys
import traceback

import numpy as np

from yolov1_loss.conformance.user_loss.implementation import (
    TRACEBACK_FRAME,
    Evaluation,
    call_in_order,
    checked_output,
    each_array,
    forward,
    is_users_file,
    named_outputs,
    output_as_array,
    pred_from_layout,
    raised_in,
    to_layout,
    users_line,
)

# What each framework's compiled run is called, in a report.
COMPILERS = {"jax": "jax.jit", "tensorflow": "tf.function"}

# What tf.function's conversion of the user's code is run from: not the user's own file.
AUTOGRAPH_FILES = "__autograph_generated_file"

# TensorFlow's C++ log level in the process that runs the loss: 2 leaves out its INFO and
# WARNING lines (CPU features, oneDNN), which are about TensorFlow, not about the loss.
TF_LOG_LEVEL = "2"


def prepare(framework: str, dtype: str) -> None:
    """Set ``framework`` up before the user's module imports it: TensorFlow's log level, and
    JAX's 64-bit mode where the loss is to get float64 (without it, JAX makes float32 of them)."""
    if framework == "tensorflow":
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", TF_LOG_LEVEL)
    if framework == "jax" and dtype == "float64":
        _enable_x64()


def keras_in_input_dtype(loss):
    """``loss``, or where it is a Keras ``Loss`` (which casts its inputs to its own dtype, Keras's
    floatx, float32 unless set) a callable that calls it in its inputs' dtype, as a Keras user who
    works in float64 gets it: a copy of it made with that dtype. Imports nothing the loss's module
    did not."""
    keras = sys.modules.get("keras")
    if keras is None or not isinstance(loss, keras.losses.Loss):
        return loss
    copies = {loss.dtype: loss}

    def called(first, second):
        dtype = first.dtype.name
        if dtype not in copies:  # (copy.copy would go through Keras's saving, which wants the class registered)
            twin = object.__new__(type(loss))
            twin.__dict__.update(loss.__dict__, _dtype_policy=keras.dtype_policies.get(dtype), _dtype=dtype)
            copies[dtype] = twin
        return copies[dtype](first, second)

    return called


def _enable_x64() -> None:
    import jax

    if not jax.config.jax_enable_x64:
        jax.config.update("jax_enable_x64", True)


def _wanted(grads: str, outputs: dict) -> list:
    """The outputs whose gradient is asked for: none, the total, or every one exposed."""
    return [] if grads == "none" else ["total"] if grads == "total" else list(outputs)


# --- each framework: tensors, and the loss with its gradients as one function -----------------


def _jax_tensor(array, dtype: str):
    import jax.numpy as jnp

    if dtype == "float64":
        _enable_x64()
    return jnp.asarray(np.asarray(array), dtype=dtype)


def _jax_run(call, grads: str):
    """``run(p, t, w)``: (named outputs, {name: the gradient of Σ w·output with respect to p}), by jax.grad."""
    import jax
    import jax.numpy as jnp

    def weighted(q, t, w, name):
        out = named_outputs(call(q, t))[name]
        return jnp.sum(jnp.broadcast_to(w, jnp.shape(out)) * out)

    def run(p, t, w):
        outputs = named_outputs(call(p, t))
        gradient = {name: jax.grad(functools.partial(weighted, name=name))(p, t, w) for name in _wanted(grads, outputs)}
        return outputs, gradient

    return run


def _tf_tensor(array, dtype: str):
    import tensorflow as tf

    return tf.constant(np.asarray(array), dtype=dtype)


def _tf_run(call, grads: str):
    """``run(p, t, w)``: (named outputs, {name: the gradient of Σ w·output with respect to p}), by tf.GradientTape."""
    import tensorflow as tf

    def run(p, t, w):
        with tf.GradientTape(persistent=True) as tape:
            tape.watch(p)
            outputs = named_outputs(call(p, t))
        gradient = {}
        for name in _wanted(grads, outputs):
            out = outputs[name]
            g = None
            if tf.is_tensor(out):  # (anything else is a constant: its gradient is zero)
                weight = tf.broadcast_to(tf.cast(w, out.dtype), tf.shape(out))
                g = tape.gradient(out, p, output_gradients=weight)
            gradient[name] = tf.zeros_like(p) if g is None else tf.convert_to_tensor(g)
        del tape
        return outputs, gradient

    return run


def _jax_compile(run):
    import jax

    return jax.jit(run)


def _tf_compile(run):
    import tensorflow as tf

    return tf.function(run)


TENSOR = {"jax": _jax_tensor, "tensorflow": _tf_tensor}
RUN = {"jax": _jax_run, "tensorflow": _tf_run}
COMPILE = {"jax": _jax_compile, "tensorflow": _tf_compile}

# (loss, argument order, spec, grads asked, framework) -> its compiled run, so that the framework's
# own cache (one trace per shape and dtype) is kept from call to call.
_COMPILED: dict = {}


def _compiled(impl, spec, grads: str):
    key = (impl.loss, impl.arguments, spec, grads, impl.framework)
    if key not in _COMPILED:
        call = functools.partial(call_in_order, impl, spec=spec)
        _COMPILED[key] = COMPILE[impl.framework](RUN[impl.framework](call, grads))
    return _COMPILED[key]


def _first_line(err: BaseException) -> str:
    """``Type: message (at file:line)``: the message's first line, at the user's innermost line.
    TensorFlow's errors under tf.function read 'in user code:', then the user's frames, then the
    error itself: that error, at the last of those frames that is the user's."""
    lines = [line.strip() for line in str(err).strip().splitlines() if line.strip()] or [""]
    said = f"{type(err).__name__}: {lines[0]}"
    frames = [
        f"{m['file']}:{m['line']}"
        for m in TRACEBACK_FRAME.finditer(str(err))
        if is_users_file(m["file"]) and AUTOGRAPH_FILES not in m["file"]
    ]
    if lines[0] == "in user code:" and frames:
        return f"{lines[-1]} (at {frames[-1]})"
    return f"{said}{users_line(traceback.extract_tb(err.__traceback__))}"


def _tensors(impl, pred, target, spec, upstream):
    """(p, t, w): canonical ``pred`` and ``target`` in the loss's layout as its framework's tensors
    of its dtype (a target of box lists: each image's array), and ``upstream``, the weights of its
    outputs."""
    lay_pred, lay_target = to_layout(impl, pred, target, spec)
    tensor = functools.partial(TENSOR[impl.framework], dtype=impl.dtype)
    return tensor(lay_pred), each_array(tensor, lay_target), tensor(upstream)


def evaluate_traced(impl, pred, target, spec, grads, upstream, strided, keep_inputs) -> Evaluation:
    """:meth:`Implementation.evaluate` for framework 'jax' or 'tensorflow' (see the module).

    ``strided`` changes nothing: a JAX array or a TensorFlow tensor has no strides of its own.
    ``keep_inputs``: the inputs as given, since neither framework's tensors can be written in place.
    """
    p, t, w = _tensors(impl, pred, target, spec, 1.0 if upstream is None else upstream)
    eager_only = None
    try:
        outputs, gradient = _compiled(impl, spec, grads)(p, t, w)
    except Exception as err:  # the eager run says whether the loss fails at all
        outputs, gradient = _eager(impl, p, t, w, spec, grads, len(pred))
        eager_only = f"it runs eagerly but raises under {COMPILERS[impl.framework]}: {_first_line(err)}"
    values = {
        name: checked_output(name, output_as_array(name, value, _float64), spec, len(pred))
        for name, value in outputs.items()
    }
    gradients = {name: pred_from_layout(impl, _float64(g), spec) for name, g in gradient.items()}
    return Evaluation(values, gradients, (pred, target) if keep_inputs else None, eager_only)


def _float64(value) -> np.ndarray:
    return np.asarray(value, dtype=np.float64)


def _eager(impl, p, t, w, spec, grads: str, n_images: int):
    """(outputs, gradients) of the loss run eagerly; ImplementationError where it raises or
    returns no loss (in forward, or in the gradient: 'backward of total')."""
    outputs = forward(impl, p, t, spec)
    for name, value in outputs.items():
        checked_output(name, output_as_array(name, value, _float64), spec, n_images)
    if grads == "none":
        return outputs, {}
    run = RUN[impl.framework](functools.partial(call_in_order, impl, spec=spec), grads)
    try:
        return run(p, t, w)
    except Exception as err:
        raise raised_in(f"backward of {_wanted(grads, outputs)[0]}", err) from err


# --- bench --impl: the compiled loss, and loss and gradient, on a batch held in the worker ------


def timed_calls(impl, pred, target, spec):
    """What ``bench`` times for a JAX or TensorFlow loss on canonical ``pred`` and ``target``
    (NumPy): {mode: step()} for 'forward' (the compiled loss) and 'forward+backward' (the
    compiled loss and gradient of the total), each returning once its result is computed (JAX
    dispatches asynchronously: it is waited for). The tensors are made once, here."""
    p, t, w = _tensors(impl, pred, target, spec, 1.0)
    loss_alone, with_gradient = _compiled(impl, spec, "none"), _compiled(impl, spec, "total")
    ready = _ready if impl.framework == "jax" else (lambda result: result)
    return {
        "forward": lambda: ready(loss_alone(p, t, w)),
        "forward+backward": lambda: ready(with_gradient(p, t, w)),
    }


def _ready(result):
    import jax

    return jax.block_until_ready(result)


def bench_refuses(framework: str, device: str, dtype: str, mode: str) -> str | None:
    """Why ``bench`` cannot time a loss of ``framework`` in a case (``dtype`` a name: 'float32'), or None."""
    if framework not in COMPILERS:
        return None
    if mode == "backward":
        return f"{framework} computes the gradient with the loss: no backward pass alone"
    if device != "cpu":
        return f"{framework} places its tensors itself (--device is torch's)"
    if dtype not in ("float32", "float64"):
        return f"checked in float32 and float64 only, not {dtype}"
    return None

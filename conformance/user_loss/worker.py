"""The child process that runs a user's loss for ``check``, ``bench`` and the pytest plugin.

Started by :class:`yolov1_loss.conformance.user_loss.isolation.Worker` as
``python -m yolov1_loss.conformance.user_loss.worker REQUEST_FD REPLY_FD``, in a process group of
its own. Requests come on one pipe as length-prefixed pickles, each ``(call, kind, *args)``:

- ``load, options``: import and build the loss (a :class:`~yolov1_loss.conformance.check.CheckOptions`);
- ``evaluate, how, pred, target, spec, kwargs``: :meth:`Implementation.evaluate` on it, with
  ``how`` (dtype, layout, arguments) replacing the loaded options' (so that ``check`` can try
  the alternatives of a hint without loading the loss again); its result: ``{"eager_only":
  [why]}`` where a JAX or TensorFlow loss failed only compiled, else ``{"eager_only": []}``;
- ``encode, call, boxes, labels``: an encoder loaded as the loss is (``check-encoder``), called
  on one image's boxes or a batch (:func:`yolov1_loss.conformance.encoding.calling.call_encoder`);
- ``bench_case, spec, n, dtype, device, threads, wire``: a benchmark's batch, built here
  (:func:`benchmarks.contenders.user_case`), and the loss's first call on it: its total and
  gradient (canonical, as ``wire`` floats) and the seconds the call took;
- ``bench_time, mode, budget_s, copy_bytes_per_s, beat_s``: that batch timed here in ``mode``
  (:func:`benchmarks.contenders.time_user_case`), a "beat" frame sent at most every ``beat_s``
  seconds between rounds so that the checker can tell slow from hung.

Pickles are safe in this direction: they are unpickled here, in the loss's own process, where a
forged one can do nothing the loss could not do itself, and the checker never reads this pipe.
Replies go the other way as frames of :mod:`~yolov1_loss.conformance.user_loss.channel` (data
only: nothing the loss writes there runs in the checker), each answering its request's ``call``
with a status: ``ok``; ``error`` with an :class:`ImplementationError`'s stage and detail;
``raised`` with a description of any other exception (``SystemExit`` and ``KeyboardInterrupt``
included). Each lists the kinds of warning the request raised, with a count and one example.

The two descriptors are moved to high numbers, close-on-exec, before the loss is imported, so
that nothing the loss spawns inherits them. A watcher process ends the whole process group (this
process and everything the loss started) once the checker's end of the requests pipe closes,
however the checker ended. At the end of its input the worker exits at once, without waiting for threads
the loss may have left running.
"""

from __future__ import annotations

import dataclasses
import faulthandler
import os
import random
import resource
import select
import signal
import sys
import time
import traceback
import warnings
from collections import Counter

from yolov1_loss.conformance.user_loss import channel

HIGHEST_FD = 4096  # the descriptors go at random between half this (or half the process's limit) and it


def describe_exception(err: BaseException) -> str:
    """``Type: message (at file:line)``, at the innermost frame of the user's code where there is one."""
    if isinstance(err, SystemExit):
        return f"the loss called sys.exit({err.code!r})"
    from yolov1_loss.conformance.user_loss.implementation import users_line

    return f"{type(err).__name__}: {err}{users_line(traceback.extract_tb(err.__traceback__))}"


class _Loss:
    """The loaded loss, and the benchmark case it was last given; each request kind is a method
    returning (result, arrays)."""

    def __init__(self, replies: int):
        self.impl = None
        self.case = None
        self._replies = replies
        self.call = 0

    def load(self, options):
        from yolov1_loss.conformance.user_loss.loading import user_implementation

        self.impl = user_implementation(options.target, **options.call_options())
        return None, {}

    def evaluate(self, how, pred, target, spec, kwargs):
        got = dataclasses.replace(self.impl, **how).evaluate(pred, target, spec, **kwargs)
        arrays = {f"values.{name}": value for name, value in got.values.items()}
        arrays |= {f"grads.{name}": grad for name, grad in got.grads.items()}
        if got.inputs_after is not None:
            arrays["after.pred"], arrays["after.target"] = got.inputs_after
        eager_only = [] if got.eager_only is None else [channel.clipped(got.eager_only)]
        return {"eager_only": eager_only}, arrays

    def encode(self, call, boxes, labels):
        from yolov1_loss.conformance.encoding.calling import call_encoder

        encoder = lambda boxes, labels: self.impl.loss(boxes, labels, None)  # loaded as a loss is
        return None, {"grid": call_encoder(encoder, call, boxes, labels)}

    def bench_case(self, spec, n, dtype, device, threads, wire):
        from yolov1_loss.benchmarks.contenders import first_user_call, user_case

        self.case = user_case(self.impl, spec, n, dtype, device, threads)
        total, grad, seconds = first_user_call(self.case)
        return {"total": total, "seconds": seconds}, {"grad": grad.astype(wire)}

    def bench_time(self, mode, budget_s, copy_bytes_per_s, beat_s):
        from yolov1_loss.benchmarks.contenders import time_user_case

        last = [time.monotonic()]

        def beat():
            if time.monotonic() - last[0] >= beat_s:
                channel.write_all(self._replies, channel.encode(self.call, "beat"))
                last[0] = time.monotonic()

        timing, cuda = time_user_case(self.case, mode, budget_s, copy_bytes_per_s, beat)
        return {"timing": dataclasses.asdict(timing), "cuda": [[k, v] for k, v in cuda.items()]}, {}


def _warning_kinds(caught) -> list:
    """(category, message, where, count) per kind of warning among ``caught`` (the first of each kind as its example)."""
    counts, examples = Counter(), {}
    for w in caught:
        channel.tally(counts, examples, w.category.__name__, str(w.message), f"{w.filename}:{w.lineno}")
    return [(category, channel.clipped(message), where, n) for (category, message, where), n in counts.items()]


def serve(requests, replies: int) -> None:
    from yolov1_loss.conformance.user_loss.implementation import ImplementationError
    from yolov1_loss.conformance.user_loss.loading import LoadError

    loss = _Loss(replies)
    while True:
        request = channel.read_request(requests)
        if request is None:
            return
        loss.call, kind, *args = request
        result, arrays = None, {}
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                result, arrays = getattr(loss, kind)(*args)
                status = "ok"
            except ImplementationError as err:
                status, result = "error", {"stage": err.stage, "detail": channel.clipped(err.detail)}
            except LoadError as err:  # its message quotes what the import raised, and where
                status, result = "raised", {"message": channel.clipped(str(err))}
            except BaseException as err:  # the user's code may raise anything, even SystemExit
                status, result = "raised", {"message": channel.clipped(describe_exception(err))}
        channel.write_all(replies, channel.encode(loss.call, status, result, arrays, _warning_kinds(caught)))


def _hidden(fd: int) -> int:
    """``fd`` moved to a free descriptor number drawn at random high in the process's range,
    close-on-exec: not among the low numbers a loss would try, not inherited by what it spawns."""
    top = min(resource.getrlimit(resource.RLIMIT_NOFILE)[0], HIGHEST_FD)
    for candidate in random.sample(range(top // 2, top), min(64, top - top // 2)):
        try:
            os.fstat(candidate)
        except OSError:  # free
            os.dup2(fd, candidate, inheritable=False)
            os.close(fd)
            return candidate
    os.set_inheritable(fd, False)
    return fd


def _end_with_checker(requests: int, replies: int) -> None:
    """Fork a watcher that kills this process group (this process and whatever the loss starts
    in it) once no one holds the requests pipe's other end: the checker ended or closed it. A
    process of its own, not a thread: a thread beside the loss slowed each call by ~0.07 ms."""
    if os.fork() != 0:
        return
    try:
        os.close(replies)  # the checker sees the replies pipe close when the worker ends
        poller = select.poll()
        poller.register(requests, 0)  # only POLLHUP and POLLERR, which are always reported
        while not poller.poll():
            pass
        os.killpg(os.getpgrp(), signal.SIGKILL)
    finally:
        os._exit(0)


def main(argv: list[str]) -> None:
    request_fd, reply_fd = _hidden(int(argv[1])), _hidden(int(argv[2]))
    _end_with_checker(request_fd, reply_fd)
    requests = os.fdopen(request_fd, "rb")
    faulthandler.enable()  # a crash prints the Python stack (the user's line) to the log
    try:
        serve(requests, reply_fd)
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)  # not waiting for threads the loss left behind


if __name__ == "__main__":
    main(sys.argv)

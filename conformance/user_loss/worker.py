"""The child process that runs a user's loss for ``check`` and the pytest plugin.

Started by :class:`yolov1_loss.conformance.user_loss.isolation.Worker` as
``python -m yolov1_loss.conformance.user_loss.worker REQUEST_FD REPLY_FD``; it reads requests from one
pipe and writes replies to the other (length-prefixed pickles), so that whatever the loss prints
cannot garble them. Requests:

- ``("load", options)``: import and build the loss (a :class:`~yolov1_loss.conformance.check.CheckOptions`);
- ``("evaluate", call, pred, target, spec, kwargs)``: :meth:`Implementation.evaluate` on it, with
  ``call`` (dtype, layout, arguments) replacing the loaded options' (so that ``check`` can try the
  alternatives of a hint without loading the loss again).

Each reply is ``(status, payload, warnings)``: status ``"ok"`` with the result, ``"error"`` with
an :class:`ImplementationError`'s (stage, detail), or ``"raised"`` with a description of any other
exception (``SystemExit`` and ``KeyboardInterrupt`` included). ``warnings`` lists what the call
warned, as (category, message, where) triples. At the end of its input the worker exits at once,
without waiting for threads the loss may have left running.
"""

from __future__ import annotations

import dataclasses
import faulthandler
import os
import pickle
import struct
import sys
import traceback
import warnings

HEADER = struct.Struct("<Q")  # the length of the pickle that follows


def read_message(stream):
    """One message from ``stream``, or None at its end."""
    header = stream.read(HEADER.size)
    if len(header) < HEADER.size:
        return None
    (size,) = HEADER.unpack(header)
    body = stream.read(size)
    if len(body) < size:
        return None
    return pickle.loads(body)


def write_message(stream, message) -> None:
    body = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(HEADER.pack(len(body)) + body)
    stream.flush()


def describe_exception(err: BaseException) -> str:
    """``Type: message (at file:line)``, at the innermost frame of the user's code where there is one."""
    if isinstance(err, SystemExit):
        return f"the loss called sys.exit({err.code!r})"
    from yolov1_loss.conformance.user_loss.implementation import users_line

    return f"{type(err).__name__}: {err}{users_line(traceback.extract_tb(err.__traceback__))}"


class _Loss:
    """The loaded loss and the options it was loaded with."""

    def __init__(self):
        self.impl = None

    def load(self, options):
        from yolov1_loss.conformance.user_loss.loading import user_implementation

        self.impl = user_implementation(options.target, **options.call_options())
        return True

    def evaluate(self, call, pred, target, spec, kwargs):
        return dataclasses.replace(self.impl, **call).evaluate(pred, target, spec, **kwargs)


def _warning_summary(caught) -> list:
    return [(w.category.__name__, str(w.message), f"{w.filename}:{w.lineno}") for w in caught]


def serve(requests, replies) -> None:
    from yolov1_loss.conformance.user_loss.implementation import ImplementationError
    from yolov1_loss.conformance.user_loss.loading import LoadError

    loss = _Loss()
    while True:
        request = read_message(requests)
        if request is None:
            return
        kind, *args = request
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                reply = ("ok", getattr(loss, kind)(*args))
            except ImplementationError as err:
                reply = ("error", (err.stage, err.detail))
            except LoadError as err:  # its message quotes what the import raised, and where
                reply = ("raised", str(err))
            except BaseException as err:  # the user's code may raise anything, even SystemExit
                reply = ("raised", describe_exception(err))
        write_message(replies, (*reply, _warning_summary(caught)))


def main(argv: list[str]) -> None:
    requests = os.fdopen(int(argv[1]), "rb")
    replies = os.fdopen(int(argv[2]), "wb")
    faulthandler.enable()  # a crash prints the Python stack (the user's line) to the log
    try:
        serve(requests, replies)
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)  # not waiting for threads the loss left behind


if __name__ == "__main__":
    main(sys.argv)

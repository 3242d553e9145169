"""A user's loss kept in a child process, out of reach of the oracle and the verdict.

A :class:`Worker` starts one long-lived child (:mod:`yolov1_loss.conformance.user_loss.worker`) for a
whole check: the child imports the loss and runs every call of it; this process sends inputs and
reads back values and gradients, as data (:mod:`~yolov1_loss.conformance.user_loss.channel`):
arrays of the dtype and shape asked for, everything else in a checked JSON header. Whatever the
loss does to its own process (patch the oracle, exit, crash, hang, leave threads or processes
running, write into the reply pipe) cannot change what is judged here or run code here. A
request that gets no answer before its deadline (the timeout, from when it is sent), whose child
ends, or whose answer is not a frame of the worker's raises :class:`WorkerDied` saying what
happened; the child and everything it started are then ended, and every later call raises the same.
"""

from __future__ import annotations

import fcntl
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import weakref
from collections import Counter
from collections.abc import Callable

from yolov1_loss.conformance.user_loss import channel
from yolov1_loss.conformance.user_loss.implementation import Evaluation, ImplementationError
from yolov1_loss.reference.loss import OUTPUT_NAMES

DEFAULT_TIMEOUT = 60.0  # seconds for one call; an honest loss at S = 7 answers in well under 1 s
LOG_TAIL = 1500  # characters of the child's output quoted when it dies
PIPE_SIZE = 1 << 20  # bytes a pipe to or from the child holds (Linux's default maximum)
EXITED_WAIT_S = 5.0  # how long a child whose pipe closed is given to finish exiting, to say how it ended


class WorkerDied(BaseException):
    """The loss's process ended, gave no answer in time, or wrote to the checker's channel;
    ``what`` says which and when in one line, ``str()`` adds the last lines it printed.

    A BaseException, like KeyboardInterrupt: nothing that catches the loss's own exceptions
    (a probe that fails, a property under Hypothesis, which would retry and shrink) may take it
    for a failure of one input; it ends the check.
    """

    def __init__(self, what: str, last_words: str = ""):
        super().__init__(what + last_words)
        self.what = what


class LossRaised(Exception):
    """Loading the loss raised; ``str()`` quotes the exception and the user's line."""


def _widen(fd: int) -> None:
    """Let the pipe hold a whole reply (gradients: ~120 KB at S = 7), so that one write need not
    wait for the reader to drain the default 64 KiB four times over (Linux; elsewhere as it is)."""
    try:
        fcntl.fcntl(fd, getattr(fcntl, "F_SETPIPE_SZ", 1031), PIPE_SIZE)
    except OSError:  # above the system's limit (/proc/sys/fs/pipe-max-size), or not Linux
        pass


def _signal_name(number: int) -> str:
    try:
        name = signal.Signals(number).name
    except ValueError:
        return f"signal {number}"
    meaning = {
        "SIGSEGV": "a segmentation fault",
        "SIGABRT": "an abort",
        "SIGKILL": "killed",
        "SIGBUS": "a bus error",
        "SIGFPE": "a floating-point exception",
    }
    return f"{name} ({meaning[name]})" if name in meaning else name


def _end_group(process: subprocess.Popen) -> None:
    """Kill the child's process group (the child and everything the loss started in it), then
    reap the child. The child is not reaped before: its pid, the group's id, cannot have been
    reused for another process."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    process.wait()


def _exit_status(pid: int, seconds: float) -> int | None:
    """The child's exit status as Popen.returncode gives it (negative: the signal), once it has
    exited, within ``seconds``; None if it has not. The child is left unreaped (see _end_group)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            status = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return None
        if status is not None:
            return status.si_status if status.si_code == os.CLD_EXITED else -status.si_status
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.01)


def _evaluation_arrays(pred, target, spec) -> dict:
    """The arrays an evaluation of the loss on ``pred`` and ``target`` under ``spec`` may answer with."""
    value_shape = (len(pred),) if spec.reduction == "none" else ()
    allowed = {f"values.{name}": ("float64", value_shape) for name in OUTPUT_NAMES}
    allowed |= {f"grads.{name}": ("float64", pred.shape) for name in OUTPUT_NAMES}
    return allowed | {"after.pred": ("float64", pred.shape), "after.target": ("float64", target.shape)}


def _evaluation(arrays: dict, keep_inputs: bool, eager_only: str | None = None) -> Evaluation:
    """The Evaluation the arrays of a reply hold; ChannelError when one it must hold is missing."""
    values = {name.removeprefix("values."): a for name, a in arrays.items() if name.startswith("values.")}
    grads = {name.removeprefix("grads."): a for name, a in arrays.items() if name.startswith("grads.")}
    after = (arrays.get("after.pred"), arrays.get("after.target"))
    if "total" not in values or not grads.keys() <= values.keys() or any(a is None for a in after) == keep_inputs:
        raise channel.ChannelError("an evaluation without the arrays asked for")
    return Evaluation(values, grads, after if keep_inputs else None, eager_only)


class Worker:
    """One child process running the loss named by ``options`` (a CheckOptions).

    Its descriptors: the read end of the requests pipe, the write end of the replies pipe,
    /dev/null as input and a temporary file as output; nothing else of this process.
    """

    def __init__(
        self,
        options,
        timeout: float = DEFAULT_TIMEOUT,
        meanwhile: Callable[[], object] | None = None,
        runs: str = "loss",
    ):
        """Start the child and load the loss there; ``meanwhile()`` runs here while it loads
        (seconds of imports in the child, which the other core can spend on the check's own work).
        The import is given ``options.import_timeout`` seconds, or ``timeout`` where that is None."""
        self.timeout = timeout
        self._runs = runs  # what the child runs, as its messages name it: 'loss' or 'encoder'
        self.warnings: Counter = Counter()  # (category, message, where) -> how many, one example per kind
        self._kinds: dict = {}
        self._dead: str | None = None
        self._calls = 0
        self._log = tempfile.TemporaryFile()
        request_read, self._requests = os.pipe()
        self._replies, reply_write = os.pipe()
        for fd in (self._requests, reply_write):
            _widen(fd)
        self._process = subprocess.Popen(
            [sys.executable, "-m", "yolov1_loss.conformance.user_loss.worker", str(request_read), str(reply_write)],
            pass_fds=(request_read, reply_write),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=self._log,
            start_new_session=True,  # its own process group: ending it ends whatever the loss started
        )
        # However this object goes (close, an exception, the interpreter's exit), the group goes too.
        self._end = weakref.finalize(self, _end_group, self._process)
        os.close(request_read)
        os.close(reply_write)
        for fd in (self._requests, self._replies):
            os.set_blocking(fd, False)  # every read and write waits at most until its deadline
        try:
            if options.import_timeout is None:
                limit, option = timeout, "--timeout"
            else:
                limit, option = options.import_timeout, "--import-timeout"
            self._send(f"loading the {runs}", self._start("load", options), limit, option)
            if meanwhile is not None:
                meanwhile()
            self._receive(f"loading the {runs}", LossRaised, {}, None)
        except BaseException:  # Ctrl-C or SIGTERM while it loads included
            self.close()
            raise

    def evaluate(self, how: dict, pred, target, spec, **kwargs):
        """:meth:`Implementation.evaluate` of the loss, in the child; ``how``: the dtype, layout and
        argument order to call it with."""
        during = "forward" if kwargs.get("grads", "none") == "none" else "forward and backward"
        request = ("evaluate", how, pred, target, spec, kwargs)
        result, arrays = self.request(
            during, request, arrays=_evaluation_arrays(pred, target, spec), result={"eager_only": [str]}
        )
        try:
            return _evaluation(arrays, kwargs.get("keep_inputs", False), (result["eager_only"] or [None])[0])
        except channel.ChannelError as err:
            self._die(during, wrote=str(err))

    def request(self, during: str, request: tuple, arrays: dict, result=None, beats: int = 0):
        """(result, arrays) of the child's answer to ``request`` (a kind and its arguments; see
        the worker's module), sent and answered within the timeout.

        ``arrays``: name -> (dtype, shape) of each array the answer may hold; ``result``: the
        schema of its result (see channel.conforms); ``beats``: how many "beat" frames the child
        may send first, each of which gives it the timeout anew. Raises ImplementationError where
        the loss raised, WorkerDied where the child died, hung or wrote what is not an answer.
        """
        self._send(during, self._start(*request), self.timeout, "--timeout")
        return self._receive(during, None, arrays, result, beats)

    def _start(self, kind: str, *args) -> bytes:
        if self._dead is not None:
            raise WorkerDied(self._dead)
        self._calls += 1
        return channel.encode_request((self._calls, kind, *args))

    def _send(self, during: str, request: bytes, timeout: float, option: str) -> None:
        self._timeout, self._option = timeout, option
        self._deadline = time.monotonic() + timeout
        try:
            channel.send(self._requests, request, self._deadline)
        except channel.Silence:
            self._die(during, timed_out=True)
        except channel.Closed:
            self._die(during)

    def _receive(self, during: str, raised_as, arrays: dict, result, beats: int = 0):
        while True:
            try:
                header, got = channel.read_frame(self._replies, self._deadline, self._calls, arrays)
            except channel.ChannelError as err:
                self._die(during, wrote=str(err))
            except channel.Silence:
                self._die(during, timed_out=True)
            except channel.Closed:
                self._die(during)
            if header["status"] != "beat":
                break
            if beats <= 0:
                self._die(during, wrote="more beat frames than the request allows")
            beats -= 1
            self._deadline = time.monotonic() + self._timeout
        self._count_warnings(header["warnings"])
        status, payload = header["status"], header["result"]
        schema = {"ok": result, "error": {"stage": str, "detail": str}, "raised": {"message": str}}[status]
        if not channel.conforms(payload, schema):
            self._die(during, wrote=f"a reply whose {status!r} result is not of the schema asked for")
        if status == "ok":
            return payload, got
        if status == "error":
            raise ImplementationError(payload["stage"], payload["detail"])
        raise (raised_as or (lambda message: ImplementationError("forward", message)))(payload["message"])

    def _count_warnings(self, warned) -> None:
        for category, message, where, n in warned:
            channel.tally(self.warnings, self._kinds, category, message, where, n)

    def _die(self, during: str, timed_out: bool = False, wrote: str | None = None):
        """Record why the child is gone (``timed_out``: no answer before the deadline; ``wrote``:
        what came instead of an answer), end it and all it started, and raise WorkerDied."""
        last_words = ""
        if wrote is not None:
            what = f"the {self._runs}'s process wrote to the checker's channel during {during}: {wrote}"
        elif timed_out:
            what = f"no answer in {self._timeout:g} s during {during} (the {self._runs} hangs, or is far too slow; {self._option} sets the limit)"
        else:
            code = _exit_status(self._process.pid, EXITED_WAIT_S)
            if code is None:
                what = f"the {self._runs}'s process stopped answering during {during}"
            elif code < 0:
                what = f"the {self._runs}'s process was killed by {_signal_name(-code)} during {during}"
            else:
                what = f"the {self._runs}'s process exited with status {code} during {during} (os._exit, or a crash of native code)"
            last_words = self._last_words()
        self._dead = what
        self.close()
        raise WorkerDied(what, last_words)

    def _last_words(self) -> str:
        self._log.seek(0)
        text = self._log.read().decode(errors="replace").strip()
        # faulthandler ends a crash's stack with the list of extension modules loaded, which
        # says nothing about the crash and would push the stack out of the tail.
        text = re.sub(r"\n*Extension modules:[^\n]*", "", text).strip()
        return f"; its last output:\n{text[-LOG_TAIL:]}" if text else ""

    def close(self) -> None:
        """End the child and everything the loss started (its process group), and release the pipes."""
        self._end()
        if not self._log.closed:  # (the first close releases them all)
            os.close(self._requests)
            os.close(self._replies)
            self._log.close()
        if self._dead is None:
            self._dead = f"the {self._runs}'s process was closed"

"""A user's loss kept in a child process, out of reach of the oracle and the verdict.

A :class:`Worker` starts one long-lived child (:mod:`yolov1_loss.conformance.user_loss.worker`) for a
whole check: the child imports the loss and runs every call of it; this process sends inputs and
reads back values and gradients. Whatever the loss does to its own process (patch the oracle,
exit, crash, hang, leave threads running) cannot change what is judged here. A call that gets no
answer within the timeout, or whose child ends, raises :class:`WorkerDied` with what happened;
the child is then gone, and every later call raises the same.
"""

from __future__ import annotations

import fcntl
import os
import re
import select
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable

from yolov1_loss.conformance.user_loss.implementation import ImplementationError
from yolov1_loss.conformance.user_loss.worker import read_message, write_message

DEFAULT_TIMEOUT = 60.0  # seconds for one call; an honest loss at S = 7 answers in well under 1 s
LOAD_TIMEOUT = 300.0  # seconds for importing the loss at least (torch alone takes seconds to import)
LOG_TAIL = 1500  # characters of the child's output quoted when it dies
PIPE_SIZE = 1 << 20  # bytes a pipe to or from the child holds (Linux's default maximum)


class WorkerDied(BaseException):
    """The loss's process ended, or gave no answer in time; ``str()`` says which and when.

    A BaseException, like KeyboardInterrupt: nothing that catches the loss's own exceptions
    (a probe that fails, a property under Hypothesis, which would retry and shrink) may take it
    for a failure of one input; it ends the check.
    """


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


class Worker:
    """One child process running the loss named by ``options`` (a CheckOptions)."""

    def __init__(self, options, timeout: float = DEFAULT_TIMEOUT, meanwhile: Callable[[], object] | None = None):
        """Start the child and load the loss there; ``meanwhile()`` runs here while it loads
        (seconds of imports in the child, which the other core can spend on the check's own work)."""
        self.timeout = timeout
        self.warnings: Counter = Counter()  # (category, message, where) -> how many times
        self._dead: str | None = None
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
            start_new_session=True,  # its own process group: a timeout ends whatever it started
        )
        os.close(request_read)
        os.close(reply_write)
        self._request_stream = os.fdopen(self._requests, "wb")
        self._reply_stream = os.fdopen(self._replies, "rb")
        self._send("loading the loss", ("load", options))
        if meanwhile is not None:
            meanwhile()
        self._receive("loading the loss", LossRaised, max(timeout, LOAD_TIMEOUT))

    def evaluate(self, call: dict, pred, target, spec, **kwargs):
        """:meth:`Implementation.evaluate` of the loss, in the child; ``call``: the dtype, layout and
        argument order to call it with."""
        return self._call(
            "forward" if kwargs.get("grads", "none") == "none" else "forward and backward",
            ("evaluate", call, pred, target, spec, kwargs),
            None,
        )

    def _call(self, during: str, request, raised_as, timeout: float | None = None):
        self._send(during, request)
        return self._receive(during, raised_as, timeout)

    def _send(self, during: str, request) -> None:
        if self._dead is not None:
            raise WorkerDied(self._dead)
        try:
            write_message(self._request_stream, request)
        except (BrokenPipeError, OSError):
            self._die(during)

    def _receive(self, during: str, raised_as, timeout: float | None = None):
        timeout = self.timeout if timeout is None else timeout
        ready, _, _ = select.select([self._replies], [], [], timeout)
        if not ready:
            self._die(during, timed_out=timeout)
        reply = read_message(self._reply_stream)
        if reply is None:
            self._die(during)
        status, payload, warned = reply
        self.warnings.update(map(tuple, warned))
        if status == "ok":
            return payload
        if status == "error":
            raise ImplementationError(*payload)
        if raised_as is not None:
            raise raised_as(payload)
        raise ImplementationError("forward", payload)

    def _die(self, during: str, timed_out: float | None = None):
        """Record why the child is gone (``timed_out``: after that many seconds without an
        answer), end it, and raise WorkerDied."""
        if timed_out is not None:
            what = f"no answer in {timed_out:g} s during {during} (the loss hangs, or is far too slow; --timeout sets the limit)"
        else:
            code = self._wait(5.0)
            if code is None:
                what = f"the loss's process stopped answering during {during}"
            elif code < 0:
                what = f"the loss's process was killed by {_signal_name(-code)} during {during}"
            else:
                what = f"the loss's process exited with status {code} during {during} (os._exit, or a crash of native code)"
        self._dead = what + self._last_words()
        self.close()
        raise WorkerDied(self._dead)

    def _wait(self, seconds: float):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            code = self._process.poll()
            if code is not None:
                return code
            time.sleep(0.01)
        return None

    def _last_words(self) -> str:
        self._log.seek(0)
        text = self._log.read().decode(errors="replace").strip()
        # faulthandler ends a crash's stack with the list of extension modules loaded, which
        # says nothing about the crash and would push the stack out of the tail.
        text = re.sub(r"\n*Extension modules:[^\n]*", "", text).strip()
        return f"; its last output:\n{text[-LOG_TAIL:]}" if text else ""

    def close(self) -> None:
        """End the child (politely, then by force) and release the pipes."""
        for stream in (self._request_stream, self._reply_stream):
            try:
                stream.close()
            except OSError:
                pass
        if self._wait(2.0) is None:
            try:
                os.killpg(self._process.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            self._process.wait()
        if self._dead is None:
            self._dead = "the loss's process was closed"

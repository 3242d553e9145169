"""A loss that attacks the checker from its worker process: writes into the reply pipe, sleeps
at import, outlives the check, or is stopped with the checker by Ctrl-C or SIGTERM. Each ends as
exit 2 (or 130, 143) with one line saying what happened, and no process of the loss's is left."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest

from .helpers import command, report, run, write

CORRECT = """
    from yolov1_loss.torch_impl import YoloV1Loss
    _loss = YoloV1Loss(preset="paper")
"""

# Writes ``payload`` into every descriptor the loss's process has, at its first call.
WRITES_EVERYWHERE = """
    import os
    def loss(pred, target):
        for name in os.listdir("/proc/self/fd"):
            try:
                os.write(int(name), PAYLOAD)
            except OSError:
                pass
        AFTERWARDS()
        return _loss(pred, target).total
"""

PICKLE = """
    import pickle
    class _Runs:  # unpickled, it writes MARKER: what the old reply channel ran in the checker
        def __reduce__(self):
            return (exec, (f"open({str(MARKER)!r}, 'w').write('ran in the checker')",))
    _body = pickle.dumps(_Runs())
    PAYLOAD = len(_body).to_bytes(8, "little") + _body
    AFTERWARDS = lambda: None
"""

GARBAGE = """
    PAYLOAD = b"\\xff" * 64  # read by the old channel as a length of 2**64 - 1
    AFTERWARDS = lambda: None
"""

SHORT = """
    import time
    from yolov1_loss.conformance.user_loss.channel import MAGIC
    PAYLOAD = MAGIC + (100).to_bytes(4, "little") + b'{"call": 1'  # a frame begun, never ended
    AFTERWARDS = lambda: time.sleep(1e6)
"""


def alive(pid: int) -> bool:
    """Whether process ``pid`` exists and is not a zombie (a dead process its parent has not reaped)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def gone(pids, seconds: float = 5.0) -> bool:
    """Whether every pid is dead within ``seconds`` (a SIGKILL is delivered asynchronously)."""
    deadline = time.monotonic() + seconds
    while any(alive(pid) for pid in pids):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


@pytest.mark.parametrize(
    "payload, more, wrote",
    [
        (PICKLE, (), "bytes that do not begin a frame"),
        (GARBAGE, (), "bytes that do not begin a frame"),
        (SHORT, ("--timeout", 2), "a frame cut short"),
    ],
    ids=["pickle", "garbage", "short-write"],
)
def test_what_a_loss_writes_into_the_reply_pipe_ends_the_check_and_runs_nothing(tmp_path, payload, more, wrote):
    marker = tmp_path / "ran"
    source = f"MARKER = {str(marker)!r}\n" + CORRECT + payload + WRITES_EVERYWHERE
    impl = write(tmp_path, "writes.py", source.replace("\n    ", "\n"))
    start = time.monotonic()
    result = run("check", f"{impl}:loss", "--max-examples", 3, *more, "--json", tmp_path / "r.json")
    assert not marker.exists()  # nothing the loss wrote ran here
    assert result.returncode == 2, result.stdout
    error = report(tmp_path / "r.json")["error"]
    assert error.startswith(f"the loss's process wrote to the checker's channel during forward: {wrote}")
    assert "\n" not in error  # one line
    assert time.monotonic() - start < 60


def test_the_channel_lies_high_and_is_not_inherited_by_what_the_loss_spawns(tmp_path):
    from yolov1_loss.conformance.check import CheckOptions
    from yolov1_loss.conformance.user_loss.isolation import Worker

    pipes = """
    import os, stat
    def pipes():
        found = []
        for name in os.listdir("/proc/self/fd"):
            try:
                if stat.S_ISFIFO(os.stat(f"/proc/self/fd/{name}").st_mode):
                    found.append(int(name))
            except OSError:
                pass
        return found
    """
    write(tmp_path, "fifos.py", pipes)
    impl = write(
        tmp_path,
        "spawns.py",
        f"""
    import subprocess, sys
    from fifos import pipes
    open({str(tmp_path / "own")!r}, "w").write(repr(pipes()))
    child = "import sys; sys.path.insert(0, {str(tmp_path)!r}); from fifos import pipes; print(pipes())"
    with open({str(tmp_path / "child")!r}, "w") as out:
        subprocess.run([sys.executable, "-c", child], close_fds=False, stdout=out, check=True)
    loss = lambda pred, target: 0.0
    """,
    )
    worker = Worker(CheckOptions(f"{impl}:loss"), timeout=30)
    worker.close()
    own = eval((tmp_path / "own").read_text())
    assert len(own) == 2 and min(own) >= 256  # the two pipes, not among the low numbers a loss would try
    assert eval((tmp_path / "child").read_text()) == []


@pytest.mark.parametrize(
    "options, option",
    [(("--timeout", 1), "--timeout"), (("--timeout", 60, "--import-timeout", 1), "--import-timeout")],
)
def test_the_import_is_bounded_by_the_timeout_that_applies_and_named(tmp_path, options, option):
    impl = write(tmp_path, "slow.py", "import time\ntime.sleep(1e6)\nloss = None\n")
    start = time.monotonic()
    result = run("check", f"{impl}:loss", *options, "--json", tmp_path / "r.json")
    seconds = time.monotonic() - start
    limit = options[-1]
    assert result.returncode == 2
    assert report(tmp_path / "r.json")["error"].startswith(
        f"no answer in {limit} s during loading the loss (the loss hangs, or is far too slow; {option} sets the limit)"
    )
    assert limit <= seconds < limit + 10


SLEEPS_WITH_A_CHILD = """
import os, subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(1e6)"])
open({pids!r}, "w").write(f"{{os.getpid()}} {{child.pid}}")
time.sleep(1e6)
loss = None
"""


@pytest.mark.parametrize(
    "sent, status, line", [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated (SIGTERM)")]
)
def test_a_check_stopped_by_a_signal_ends_the_loss_and_all_it_started(tmp_path, sent, status, line):
    pids = tmp_path / "pids"
    impl = write(tmp_path, "sleeps.py", SLEEPS_WITH_A_CHILD.format(pids=str(pids)))
    checker = subprocess.Popen(
        [*command(), "check", f"{impl}:loss"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # as a shell starts it in a terminal
    )
    try:
        deadline = time.monotonic() + 60
        while not (pids.exists() and len(pids.read_text().split()) == 2):
            assert time.monotonic() < deadline and checker.poll() is None, "the loss did not start"
            time.sleep(0.05)
        worker, child = map(int, pids.read_text().split())
        checker.send_signal(sent)
        _, err = checker.communicate(timeout=30)
    finally:
        checker.kill()
    assert checker.returncode == status, err
    assert err.strip().splitlines()[-1] == f"yolov1-loss check: {line}"
    assert "Traceback" not in err
    assert gone([worker, child])

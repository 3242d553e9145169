"""Running ``yolov1-loss`` as a user would, in this process: the command line's ``main``, its
exit status and what it prints."""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from yolov1_loss.cli import main


def command() -> list[str]:
    script = Path(sys.executable).with_name("yolov1-loss")
    return [str(script)] if script.exists() else [sys.executable, "-m", "yolov1_loss.cli"]


def run(*args, cwd=None) -> subprocess.CompletedProcess:
    """``yolov1-loss ARGS`` through the command line's ``main``, in this process (its exit status
    and printed output as a subprocess would give them)."""
    out, err = io.StringIO(), io.StringIO()
    previous = os.getcwd()
    try:
        if cwd is not None:
            os.chdir(cwd)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            returncode = main([str(arg) for arg in args])
    finally:
        os.chdir(previous)
    return subprocess.CompletedProcess(["yolov1-loss", *map(str, args)], returncode, out.getvalue(), err.getvalue())


def write(tmp_path: Path, name: str, source: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(source))
    return path


def report(path: Path) -> dict:
    return json.loads(path.read_text())

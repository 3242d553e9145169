"""The worker's reply channel read as untrusted bytes: whatever is written into the pipe, the
checker gets the frame asked for, or a ChannelError, Silence or Closed within the deadline;
nothing it reads is executed, and no length it reads is allocated before it is checked."""

from __future__ import annotations

import json
import os
import pickle
import time

import numpy as np
import pytest

from yolov1_loss.conformance.user_loss import channel
from yolov1_loss.conformance.user_loss.channel import warning_kind

GRAD = {"grads.total": ("float64", (2, 3))}


@pytest.fixture
def pipe():
    """(read end, non-blocking as the checker holds it; write end)."""
    read, write = os.pipe()
    os.set_blocking(read, False)
    yield read, write
    for fd in (read, write):
        try:
            os.close(fd)
        except OSError:
            pass


def read(fd, call=1, allowed=GRAD, seconds=0.5):
    return channel.read_frame(fd, time.monotonic() + seconds, call, allowed)


def test_a_frame_carries_its_header_and_arrays(pipe):
    grad = np.arange(6.0).reshape(2, 3)
    warned = [("UserWarning", "careful", "loss.py:3", 2)]
    os.write(pipe[1], channel.encode(1, "ok", None, {"grads.total": grad}, warned))
    header, arrays = read(pipe[0])
    assert header["status"] == "ok" and header["warnings"] == [list(w) for w in warned]
    np.testing.assert_array_equal(arrays["grads.total"], grad)


class _Runs:
    def __reduce__(self):
        return (exec, ("raise SystemExit('a pickle ran in the checker')",))


def test_a_pickle_is_refused_unread(pipe):
    body = pickle.dumps(_Runs())
    os.write(pipe[1], len(body).to_bytes(8, "little") + body)  # the old format's reply
    with pytest.raises(channel.ChannelError, match="do not begin a frame"):
        read(pipe[0])


def test_a_huge_header_length_is_refused_before_reading_it(pipe):
    os.write(pipe[1], channel.MAGIC + (2**32 - 1).to_bytes(4, "little"))
    start = time.monotonic()
    with pytest.raises(channel.ChannelError, match="a header of 4294967295 bytes, above the limit"):
        read(pipe[0], seconds=10)
    assert time.monotonic() - start < 1


def test_a_short_write_is_cut_short_at_the_deadline(pipe):
    frame = channel.encode(1, "ok", None, {"grads.total": np.zeros((2, 3))})
    os.write(pipe[1], frame[:-5])
    start = time.monotonic()
    with pytest.raises(channel.ChannelError, match=f"a frame cut short: {len(frame) - 5} bytes, then nothing"):
        read(pipe[0], seconds=0.3)
    assert 0.3 <= time.monotonic() - start < 2


def test_silence_and_a_closed_pipe_are_told_apart(pipe):
    start = time.monotonic()
    with pytest.raises(channel.Silence):
        read(pipe[0], seconds=0.2)
    assert 0.2 <= time.monotonic() - start < 2
    os.close(pipe[1])
    with pytest.raises(channel.Closed):
        read(pipe[0])


def test_what_came_in_time_counts_though_the_reader_comes_late(pipe):
    os.write(pipe[1], channel.encode(1, "ok"))
    header, _ = channel.read_frame(pipe[0], time.monotonic() - 1, 1, {})
    assert header["status"] == "ok"


def _header_frame(header: dict) -> bytes:
    text = json.dumps(header).encode()
    return channel.MAGIC + len(text).to_bytes(4, "little") + text


@pytest.mark.parametrize(
    "header, complaint",
    [
        ({"call": 1, "status": "ok", "result": None, "arrays": [], "warnings": [], "more": 1}, "without the keys"),
        ({"call": "1", "status": "ok", "result": None, "arrays": [], "warnings": []}, "without the keys"),
        ({"call": 1, "status": "pwned", "result": None, "arrays": [], "warnings": []}, "without the keys"),
        ({"call": 1, "status": "ok", "result": None, "arrays": [], "warnings": [["W", "m", "f:1"]]}, "without the keys"),
        ({"call": 2, "status": "ok", "result": None, "arrays": [], "warnings": []}, "an answer to request 2, not to request 1"),
        ({"call": 1, "status": "ok", "result": None, "arrays": [["grads.total", "float64", [2**40, 2**40]]], "warnings": []}, "not asked for"),
        ({"call": 1, "status": "ok", "result": None, "arrays": [["grads.total", "object", [2, 3]]], "warnings": []}, "not asked for"),
        ({"call": 1, "status": "ok", "result": None, "arrays": [["elsewhere", "float64", [2, 3]]], "warnings": []}, "not asked for"),
    ],
)  # fmt: skip
def test_a_header_not_of_the_schema_or_not_asked_for_is_refused(pipe, header, complaint):
    os.write(pipe[1], _header_frame(header))
    with pytest.raises(channel.ChannelError, match=complaint):
        read(pipe[0])


@pytest.mark.parametrize("text", [b"\xff\xfe not utf-8", b"[" * 60_000, b"{'call': 1}"])
def test_a_header_that_is_not_json_is_refused(pipe, text):
    os.write(pipe[1], channel.MAGIC + len(text).to_bytes(4, "little") + text)
    with pytest.raises(channel.ChannelError, match="not JSON"):
        read(pipe[0])


def test_a_write_the_reader_does_not_take_ends_at_the_deadline():
    read_end, write_end = os.pipe()
    os.set_blocking(write_end, False)
    try:
        start = time.monotonic()
        with pytest.raises(channel.Silence):
            channel.send(write_end, b"x" * (16 << 20), time.monotonic() + 0.2)  # far beyond what the pipe holds
        assert time.monotonic() - start < 2
    finally:
        os.close(read_end)
        os.close(write_end)


def test_warnings_of_one_place_differing_in_numbers_are_one_kind():
    first = warning_kind("UserWarning", "shapes torch.Size([3, 7, 7, 30]) and (3, 7, 7) at 0x7f3a", "loss.py:5")
    second = warning_kind("UserWarning", "shapes torch.Size([16, 7, 7, 30]) and (16, 7, 7) at 0x55aa", "loss.py:5")
    assert first == second
    assert warning_kind("UserWarning", "shapes torch.Size([3])", "loss.py:6") != first  # another place
    assert warning_kind("UserWarning", "sizes torch.Size([3])", "loss.py:5")[1] != first[1]  # another message

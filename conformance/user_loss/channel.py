"""The worker's replies as data, never code: frames that the checker reads within a deadline.

A frame is ``MAGIC``, the header's length (4 bytes, little-endian), a JSON header, then the raw
bytes of the arrays the header lists, in order. The header is an object with exactly the keys
``call`` (the number of the request it answers), ``status``, ``result``, ``arrays`` (a list of
``[name, dtype, shape]``) and ``warnings`` (a list of ``[category, message, where, count]``).
Reading one (:func:`read_frame`) executes nothing: JSON decodes to plain values, each checked
against a schema, and an array is bytes given the dtype and shape that the checker asked for,
so its size is known before a byte of it is read. Every read waits at most until a deadline.

The loss runs in the worker's process and can write into the reply pipe (it is one of its
process's descriptors); what it writes is then not a frame, or not the frame asked for, and
ends the check (:class:`ChannelError`).

Requests go the other way as length-prefixed pickles (:func:`encode_request`,
:func:`read_request`), unpickled only in the worker's process; warnings are counted by kind
(:func:`tally`) on both sides.
"""

from __future__ import annotations

import json
import os
import pickle
import re
import select
import struct
import time
from collections import Counter

import numpy as np

MAGIC = b"\x00YOLOv1\x01"  # the start of every frame: 8 bytes no pickle, text or length prefix begins with
HEADER_LENGTH = struct.Struct("<I")
MAX_HEADER = 1 << 20  # bytes of a header; the worker's are a few KiB (texts and warnings are capped below)
MAX_TEXT = 4000  # characters of one message (an exception, a warning) a frame carries
MAX_WARNING_KINDS = 50  # kinds of warning one frame lists; further kinds are dropped
STATUSES = ("ok", "error", "raised", "beat")
DTYPES = {"float64": np.dtype("<f8"), "float32": np.dtype("<f4")}
READ_CHUNK = 1 << 20

WARNING = (str, str, str, int)  # category, message, where (file:line), how many times
HEADER = {"call": int, "status": str, "result": object, "arrays": [(str, str, [int])], "warnings": [WARNING]}
REQUEST_LENGTH = struct.Struct("<Q")  # the length of the pickle that follows


class ChannelError(Exception):
    """What came is not a frame of the worker's, or not the one asked for; ``str()`` says how."""


class Silence(Exception):
    """Nothing came before the deadline."""


class Closed(Exception):
    """The pipe's other end is closed: the worker's process is gone."""


def conforms(value, schema) -> bool:
    """Whether a decoded JSON ``value`` has the shape ``schema`` gives.

    ``schema``: a type (``float`` admits an int, ``int`` no bool, ``object`` anything), None
    (null), a dict (exactly these keys), a one-item list (a list of such items), or a tuple (a
    list of exactly these items).
    """
    if schema is None:
        return value is None
    if schema is object:
        return True
    if schema is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if isinstance(schema, type):
        return isinstance(value, schema) and not (isinstance(value, bool) and schema is not bool)
    if isinstance(schema, dict):
        return (
            isinstance(value, dict)
            and value.keys() == schema.keys()
            and all(conforms(value[key], item) for key, item in schema.items())
        )
    if isinstance(schema, list):
        return isinstance(value, list) and all(conforms(item, schema[0]) for item in value)
    return (
        isinstance(value, list)
        and len(value) == len(schema)
        and all(conforms(item, part) for item, part in zip(value, schema))
    )


def clipped(text: str) -> str:
    """``text``, cut to MAX_TEXT characters."""
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"


_NUMBER = re.compile(r"0x[0-9a-fA-F]+|\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")


def warning_kind(category: str, message: str, where: str) -> tuple[str, str, str]:
    """What makes warnings the same: category, place, and the message with its numbers masked
    (one warning raised at one line with different tensor sizes is one kind)."""
    return category, _NUMBER.sub("#", message), where


def tally(counts: Counter, examples: dict, category: str, message: str, where: str, n: int = 1) -> None:
    """Count ``n`` warnings under the example of their kind: ``examples`` maps a kind to the
    first (category, message, where) seen of it, ``counts`` that example to how many."""
    example = examples.setdefault(warning_kind(category, message, where), (category, message, where))
    counts[example] += n


# --- the worker's side --------------------------------------------------------------------------


def encode(call: int, status: str, result=None, arrays: dict | None = None, warnings=()) -> bytes:
    """One frame. ``arrays``: name -> array (float64 or float32, any shape); ``warnings``:
    (category, message, where, count), at most MAX_WARNING_KINDS of them."""
    arrays = {name: np.asarray(a, DTYPES[np.asarray(a).dtype.name], order="C") for name, a in (arrays or {}).items()}
    header = {
        "call": call,
        "status": status,
        "result": result,
        "arrays": [[name, a.dtype.name, list(a.shape)] for name, a in arrays.items()],
        "warnings": [list(w) for w in warnings][:MAX_WARNING_KINDS],
    }
    text = json.dumps(header).encode()
    return b"".join([MAGIC, HEADER_LENGTH.pack(len(text)), text, *(a.tobytes() for a in arrays.values())])


def write_all(fd: int, data: bytes) -> None:
    """All of ``data`` to a blocking descriptor."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def read_request(stream):
    """One request from ``stream``, or None at its end."""
    header = stream.read(REQUEST_LENGTH.size)
    if len(header) < REQUEST_LENGTH.size:
        return None
    (size,) = REQUEST_LENGTH.unpack(header)
    body = stream.read(size)
    if len(body) < size:
        return None
    return pickle.loads(body)


# --- the checker's side -------------------------------------------------------------------------


def encode_request(message) -> bytes:
    body = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return REQUEST_LENGTH.pack(len(body)) + body


def _wait(fd: int, events: int, deadline: float) -> bool:
    """Whether ``fd`` is ready for ``events`` (or closed) before ``deadline`` (time.monotonic())."""
    poller = select.poll()
    poller.register(fd, events)
    while True:
        remaining = max(0.0, deadline - time.monotonic())
        if poller.poll(remaining * 1000):  # once even after the deadline: what came in time counts
            return True
        if remaining == 0:
            return False


def send(fd: int, data: bytes, deadline: float) -> None:
    """All of ``data`` to a non-blocking descriptor before ``deadline``; Silence if the reader
    does not take it in time, Closed if it is gone."""
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(fd, view) :]
        except BlockingIOError:
            if not _wait(fd, select.POLLOUT, deadline):
                raise Silence from None
        except (BrokenPipeError, ConnectionResetError):
            raise Closed from None


def _receive(fd: int, size: int, deadline: float, received: list[int]) -> bytearray:
    """Exactly ``size`` bytes from a non-blocking descriptor; ``received[0]`` counts the frame's bytes."""
    buffer = bytearray(size)
    view = memoryview(buffer)
    got = 0
    while got < size:
        try:
            n = os.readv(fd, [view[got : got + READ_CHUNK]])
        except BlockingIOError:
            if _wait(fd, select.POLLIN, deadline):
                continue
            if received[0]:
                raise ChannelError(f"a frame cut short: {received[0]} bytes, then nothing") from None
            raise Silence from None
        if n == 0:
            raise Closed
        got += n
        received[0] += n
    return buffer


def read_frame(fd: int, deadline: float, call: int, allowed: dict) -> tuple[dict, dict]:
    """The frame that answers request ``call``, read from ``fd`` before ``deadline``:
    (header, {name: array}).

    ``allowed``: name -> (dtype name, shape) of each array the request may be answered with;
    an array must match its entry exactly. Raises ChannelError when what comes is not that
    frame, Silence when nothing comes in time, Closed at the pipe's end.
    """
    received = [0]
    start = _receive(fd, len(MAGIC) + HEADER_LENGTH.size, deadline, received)
    if bytes(start[: len(MAGIC)]) != MAGIC:
        raise ChannelError(f"bytes that do not begin a frame ({bytes(start)[:8]!r} …)")
    (length,) = HEADER_LENGTH.unpack_from(start, len(MAGIC))
    if length > MAX_HEADER:
        raise ChannelError(f"a header of {length} bytes, above the limit of {MAX_HEADER}")
    try:
        header = json.loads(bytes(_receive(fd, length, deadline, received)).decode())
    except (ValueError, RecursionError) as err:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise ChannelError(f"a header that is not JSON ({type(err).__name__})") from None
    if not conforms(header, HEADER) or header["status"] not in STATUSES:
        raise ChannelError("a header without the keys and types of a reply")
    if header["call"] != call:
        raise ChannelError(f"an answer to request {header['call']}, not to request {call}")
    names = [name for name, _, _ in header["arrays"]]
    for name, dtype, shape in header["arrays"]:
        if names.count(name) > 1 or allowed.get(name) != (dtype, tuple(shape)):
            raise ChannelError(f"an array {name!r} of {dtype} {shape}, which was not asked for")
    sizes = [DTYPES[dtype].itemsize * int(np.prod(shape, dtype=np.int64)) for _, dtype, shape in header["arrays"]]
    data = _receive(fd, sum(sizes), deadline, received)  # all at once: bounded by what was asked for
    arrays, start = {}, 0
    for (name, dtype, shape), size in zip(header["arrays"], sizes):
        arrays[name] = np.frombuffer(data, DTYPES[dtype], size // DTYPES[dtype].itemsize, start).reshape(shape)
        start += size
    return header, arrays

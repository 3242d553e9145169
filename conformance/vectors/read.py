"""Reading a folder of test vectors (written by :mod:`.write`) as untrusted input.

Whoever wrote the folder may have meant harm, so each read is bounded before it is made, and
every refusal is a :class:`VectorError` naming the file and what is wrong:

- the folder is opened once, and each file in it through it, one path component at a time,
  never through a symbolic link (``O_NOFOLLOW``): an entry ``sub/x.npz`` whose ``sub`` links
  to a folder elsewhere is refused, as are '..', absolute paths, FIFOs and devices;
- a vector file holds at most :data:`MAX_FILE_BYTES`; ``index.json`` at most
  :data:`MAX_INDEX_BYTES`, nested at most :data:`MAX_INDEX_DEPTH` deep, listing at most
  :data:`MAX_VECTORS` vectors;
- an ``.npz`` is read member by member: each array's ``.npy`` header first, and a dtype that is
  not a plain number, a shape other than the entry's grid gives, or more than
  :data:`MAX_FILE_BYTES` in all is refused before its data is read (a header may declare any
  size: the file's own size bounds nothing once it is unpacked);
- a vector's inputs and expected values must be finite (the oracle's are).
"""

from __future__ import annotations

import errno
import io
import json
import math
import os
import re
import stat
import zipfile
import zlib
from pathlib import Path, PurePosixPath

import numpy as np

from yolov1_loss.conformance.vectors.write import FORMAT, MAX_FILE_BYTES, VERSION, Vector, VectorError, array_names
from yolov1_loss.reference import OUTPUT_NAMES, LossSpec

# `yolov1-loss vectors` writes 12 vectors per dialect (60 for the five presets), about 700 bytes
# of index each; an index with more than MAX_VECTORS, or larger than MAX_INDEX_BYTES, is not one
# of its folders (and would take seconds to parse).
MAX_VECTORS = 1000
MAX_INDEX_BYTES = 2 * 2**20
# An index is 4 deep (the index, its list of vectors, an entry, the entry's knobs); a deeper one
# is not an index, and parsing it is refused before it can exhaust the parser's recursion.
MAX_INDEX_DEPTH = 8
ENTRY_FIELDS = ("name", "file", "S", "B", "C", "knobs")


class Folder:
    """A vector folder, opened once; its files are read through it (see the module's docstring).
    Use as a context manager, or close()."""

    def __init__(self, directory):
        self.path = Path(directory)
        try:
            self._fd = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY)
        except OSError as err:
            raise VectorError(
                f"{self.path}: {'no such folder' if err.errno == errno.ENOENT else err.strerror}"
            ) from None

    def __enter__(self) -> Folder:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        os.close(self._fd)

    def read(self, name, limit: int = MAX_FILE_BYTES, what: str = "a vector file") -> bytes:
        """The bytes of the regular file ``name`` (relative, '/'-separated) inside the folder, at
        most ``limit`` of them (``what`` it is, for the refusal), opened without following a link
        at any component."""
        parts = self._parts(name)
        fds = []
        try:
            where = self._fd
            for k, part in enumerate(parts):
                last = k == len(parts) - 1
                flags = os.O_RDONLY | os.O_NOFOLLOW | (os.O_NONBLOCK if last else os.O_DIRECTORY)
                try:
                    where = os.open(part, flags, dir_fd=where)
                except OSError as err:
                    raise self._refusal(name, "/".join(parts[: k + 1]), err) from None
                fds.append(where)
            return self._read_regular(where, name, limit, what)
        finally:
            for fd in fds:
                os.close(fd)

    def _parts(self, name) -> tuple[str, ...]:
        if not isinstance(name, str) or not name:
            raise VectorError(f"{self.path / 'index.json'}: an entry's file is {name!r}, not a file name")
        relative = PurePosixPath(name)
        if relative.is_absolute() or any(part in ("..", ".") for part in name.split("/")):
            raise VectorError(f"{self.path / 'index.json'}: the file {name!r} lies outside {self.path}")
        return relative.parts

    def _refusal(self, name: str, prefix: str, err: OSError) -> VectorError:
        path = self.path / prefix
        if err.errno == errno.ELOOP or (err.errno == errno.ENOTDIR and os.path.islink(path)):
            return VectorError(f"{path}: a symbolic link; vector files must be plain files inside {self.path}")
        return VectorError(f"{path}: {err.strerror}")

    def _read_regular(self, fd: int, name: str, limit: int, what: str) -> bytes:
        path = self.path / name
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise VectorError(f"{path}: not a regular file")
        with os.fdopen(os.dup(fd), "rb") as file:
            data = file.read(limit + 1) if info.st_size <= limit else b""
        if info.st_size > limit or len(data) > limit:  # (or it grew while read)
            raise VectorError(f"{path}: {max(info.st_size, len(data))} bytes, more than the {limit} {what} may have")
        return data


def read_index(folder: Folder) -> list[dict]:
    """The entries of the folder's index.json, checked; VectorError when it is not a vector index."""
    path = folder.path / "index.json"
    try:
        text = folder.read("index.json", MAX_INDEX_BYTES, "an index").decode()
    except UnicodeDecodeError as err:
        raise VectorError(f"{path}: not valid JSON ({err})") from None
    if nesting_depth(text, MAX_INDEX_DEPTH) > MAX_INDEX_DEPTH:
        raise VectorError(f"{path}: nested more than {MAX_INDEX_DEPTH} deep; a vector index is 4 deep")
    try:
        index = json.loads(text)
    except ValueError as err:  # (JSONDecodeError, or an integer of more digits than Python converts)
        raise VectorError(f"{path}: not valid JSON ({err})") from None
    if not isinstance(index, dict) or index.get("format") != FORMAT or index.get("version") != VERSION:
        raise VectorError(f"{path}: not a version-{VERSION} '{FORMAT}' index")
    entries = index.get("vectors")
    if not isinstance(entries, list):
        raise VectorError(f"{path}: 'vectors' is not a list")
    if len(entries) > MAX_VECTORS:
        raise VectorError(f"{path}: lists {len(entries)} vectors, more than the {MAX_VECTORS} an index may")
    for k, entry in enumerate(entries):
        missing = set(ENTRY_FIELDS) - set(entry if isinstance(entry, dict) else ())
        if missing:
            raise VectorError(f"{path}: entry {k} lacks {', '.join(sorted(missing))}")
    return entries


_JSON_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]')


def nesting_depth(text: str, limit: int) -> int:
    """How deep the JSON ``text`` nests its lists and objects (strings skipped), counted up to
    ``limit`` + 1 (a linear scan: no recursion)."""
    depth = deepest = 0
    for token in _JSON_TOKEN.finditer(text):
        char = token.group()[0]
        if char in "[{":
            depth += 1
            deepest = max(deepest, depth)
            if deepest > limit:
                break
        elif char in "]}":
            depth -= 1
    return deepest


def entry_spec(folder: Folder, entry: dict) -> LossSpec:
    """The LossSpec an index entry names; VectorError when it is not a valid one."""
    try:
        return LossSpec(entry["S"], entry["B"], entry["C"], **entry["knobs"])
    except (TypeError, ValueError) as err:
        raise VectorError(
            f"{folder.path / 'index.json'}: entry {entry['name']!r} is not a valid spec ({err})"
        ) from None


def read_vector(folder: Folder, entry: dict, spec: LossSpec | None = None) -> Vector:
    """The vector an index entry names, its arrays checked against its spec (``spec``: the
    entry's, where the caller has it already from :func:`entry_spec`)."""
    if spec is None:
        spec = entry_spec(folder, entry)
    path = folder.path / str(entry["file"])
    data = folder.read(entry["file"])
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            headers = {name: _npy_header(archive, name, path) for name in array_names()}
            _check_declared(headers, spec, path)
            arrays = {name: _npy_array(archive, name) for name in array_names()}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as err:
        if isinstance(err, VectorError):
            raise
        raise VectorError(f"{path}: not a readable .npz file ({err})") from None
    _check_finite(arrays, path)
    values = {field: arrays[field] for field in OUTPUT_NAMES}
    grads = {field: arrays[f"grad_{field}"] for field in OUTPUT_NAMES}
    margin = float(arrays["kink_margin"])
    return Vector(entry["name"], spec, entry.get("case", "?"), arrays["pred"], arrays["target"], values, grads, margin)


def _npy_header(archive: zipfile.ZipFile, name: str, path: Path) -> tuple[tuple[int, ...], np.dtype]:
    """(shape, dtype) from the .npy header of member ``name``, without reading its data."""
    try:
        member = archive.open(f"{name}.npy")
    except KeyError:
        raise VectorError(f"{path}: lacks the array '{name}'") from None
    with member:
        version = np.lib.format.read_magic(member)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(member)
        elif version == (2, 0):
            shape, _, dtype = np.lib.format.read_array_header_2_0(member)
        else:
            raise VectorError(f"{path}: the array '{name}' is in .npy format {version}, not 1.0 or 2.0")
    if dtype.kind not in "fiu" or dtype.fields is not None or dtype.subdtype is not None:
        raise VectorError(f"{path}: the array '{name}' holds {dtype}, not plain numbers")
    return shape, dtype


def _check_declared(headers: dict, spec: LossSpec, path: Path) -> None:
    """The declared shapes fit ``spec`` (any number of images N, as pred declares it) and declare
    at most MAX_FILE_BYTES in all."""
    pred_shape = headers["pred"][0]
    images = pred_shape[0] if len(pred_shape) == 4 else -1
    cells = (images, spec.S, spec.S)
    expected = {"pred": (*cells, spec.pred_channels), "target": (*cells, spec.target_channels), "kink_margin": ()}
    expected.update({f"grad_{field}": expected["pred"] for field in OUTPUT_NAMES})
    for name, (shape, _) in headers.items():
        allowed = [expected[name]] if name in expected else [(), (images,)]  # a value: () or (N,) per image
        if images < 0 or shape not in allowed:
            raise VectorError(
                f"{path}: the array '{name}' is declared {shape}, which does not fit pred {pred_shape} "
                f"at S={spec.S}, B={spec.B}, C={spec.C}"
            )
    declared = sum(math.prod(shape) * dtype.itemsize for shape, dtype in headers.values())
    if declared > MAX_FILE_BYTES:
        raise VectorError(
            f"{path}: its arrays declare {declared} bytes, more than the {MAX_FILE_BYTES} a vector may hold"
        )


def _npy_array(archive: zipfile.ZipFile, name: str) -> np.ndarray:
    """Member ``name``'s array as float64 (its header checked already: the bytes are in memory)."""
    with archive.open(f"{name}.npy") as member:
        return np.asarray(np.lib.format.read_array(member, allow_pickle=False), dtype=np.float64)


def _check_finite(arrays: dict, path: Path) -> None:
    """The inputs and the expected values are finite, the kink margin a number >= 0 (infinite where
    no kink is near). (Gradients may be infinite at a kink: replay checks them where it compares.)"""
    for name in ("pred", "target", *OUTPUT_NAMES):
        bad = ~np.isfinite(arrays[name])
        if bad.any():
            raise corrupt(path, name, arrays[name], bad, "(a vector's inputs and expected values are finite)")
    if not arrays["kink_margin"] >= 0:
        raise VectorError(f"{path}: a corrupt vector: its kink_margin is {float(arrays['kink_margin'])}")


def corrupt(path: Path, name: str, values: np.ndarray, bad: np.ndarray, why: str) -> VectorError:
    """The refusal of a vector whose array ``name`` holds ``values`` that ``bad`` marks: 'PATH: a
    corrupt vector: its NAME[i, …] is v WHY', at the first element marked."""
    where = tuple(int(i) for i in np.argwhere(bad)[0]) if bad.ndim else ()
    return VectorError(f"{path}: a corrupt vector: its {name}{list(where) if where else ''} is {values[where]} {why}")

"""Language-neutral test vectors: inputs, the oracle's components and gradients, and the knobs.

A vector set is a folder with ``index.json`` and one ``.npz`` per vector, holding only numeric
arrays (load with ``numpy.load(path, allow_pickle=False)``; any language with an npz/npy reader
can replay them). Inputs are in the canonical layout, float64:

    pred (N, S, S, C + 5B), target (N, S, S, C + 5),
    coord, obj, noobj, cls, total: the oracle's values, shape () or (N,) under reduction='none',
    grad_coord, grad_obj, grad_noobj, grad_cls, grad_total: d value / d pred, shaped like pred,
    kink_margin: (), the distance to the nearest kink (reference.kinks); gradients of other
        implementations are comparable only where it is positive, conventions decide at 0.

``index.json`` lists every vector with its file, preset, hard case, S, B, C and every knob.

The folder is written without following a link: each file is written under a new name of its
own and renamed into place (a link, symbolic or hard, in its place is replaced, never written
through), and a folder that holds a symbolic link is refused. Reading is :mod:`.read`.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
from pathlib import Path
from typing import NamedTuple

import numpy as np

from yolov1_loss.conformance.grid_limits import image_bytes, too_large
from yolov1_loss.conformance.inputs.example import CELL_CASES, Recipe, build
from yolov1_loss.reference import OUTPUT_NAMES, LossSpec, loss_and_grad
from yolov1_loss.reference.kinks import kink_margin

FORMAT = "yolov1-loss test vectors"
VERSION = 1


class Vector(NamedTuple):
    name: str
    spec: LossSpec
    case: str
    pred: np.ndarray
    target: np.ndarray
    values: dict  # component name -> float or (N,) array
    grads: dict  # component name -> array shaped like pred
    kink_margin: float


def vector_recipes(spec: LossSpec) -> list[tuple[str, Recipe]]:
    """(case name, recipe) pairs: each hard case in mixed grids, then full, empty and large grids."""
    recipes = [(case, Recipe(spec, images=2, cases=(case,), seed=seed)) for seed, case in enumerate(CELL_CASES)]
    recipes += [
        ("all_objects", Recipe(spec, images=1, occupancy="full", cases=CELL_CASES, seed=100)),
        ("no_objects", Recipe(spec, images=2, occupancy="empty", seed=101)),
        ("large_magnitude", Recipe(spec, images=1, magnitude=1024.0, seed=102)),
    ]
    return recipes


class VectorError(ValueError):
    """A vector folder that cannot be written or read: the message names the file and what is wrong."""


# What a vector file may hold, on disk and unpacked: a vector at S = 7 takes a few kB, and no
# grid whose vector takes more is written (the reader refuses the same).
MAX_FILE_BYTES = 64 * 2**20


def array_names() -> tuple[str, ...]:
    """The arrays of a vector file, as its .npz names them (without '.npy')."""
    return ("pred", "target", "kink_margin", *OUTPUT_NAMES, *(f"grad_{field}" for field in OUTPUT_NAMES))


def vector_bytes(spec: LossSpec) -> int:
    """The most a vector of ``spec`` holds (its largest recipe's images): pred and its five
    gradients, target, and a value per image of each output."""
    images = max(recipe.images for _, recipe in vector_recipes(spec))
    return images * image_bytes(spec) + 8 * (images * len(OUTPUT_NAMES) + 1)


def holds_vectors(directory) -> bool:
    """Whether ``directory`` already holds a vector index (a link of that name counts)."""
    return os.path.lexists(Path(directory) / "index.json")


def write_vectors(out_dir, specs: dict[str, LossSpec], force: bool = False) -> Path:
    """Write one vector per recipe for each named spec; returns the path of index.json.

    Refuses (VectorError), before computing anything: a path that is not a folder or cannot be
    written; a folder that holds a symbolic link; a folder that holds vectors already, unless
    ``force``; a spec whose vector would exceed MAX_FILE_BYTES.
    """
    for spec in specs.values():
        problem = too_large("a vector", vector_bytes, spec, MAX_FILE_BYTES, "a vector file may hold")
        if problem:
            raise VectorError(problem)
    out = prepare_folder(out_dir, force)
    mode = 0o666 & ~_umask()  # (as open() would make a file: mkstemp makes it 0o600)
    entries = []
    for dialect, spec in specs.items():
        for case, recipe in vector_recipes(spec):
            example = build(recipe)
            parts, grads = loss_and_grad(example.pred, example.target, spec)
            name = f"{dialect}-{case}"
            arrays = {"pred": example.pred, "target": example.target}
            arrays.update({field: np.asarray(getattr(parts, field)) for field in OUTPUT_NAMES})
            arrays.update({f"grad_{field}": getattr(grads, field) for field in OUTPUT_NAMES})
            arrays["kink_margin"] = np.asarray(kink_margin(example.pred, example.target, spec))
            buffer = io.BytesIO()
            np.savez(buffer, **arrays)
            write_new(out, f"{name}.npz", buffer.getvalue(), mode)
            entries.append(
                {
                    "name": name,
                    "file": f"{name}.npz",
                    "dialect": dialect,
                    "case": case,
                    "S": spec.S,
                    "B": spec.B,
                    "C": spec.C,
                    "images": int(example.images),
                    "knobs": spec.knobs(),
                }
            )
    index = {"format": FORMAT, "version": VERSION, "layout": "classes-first", "vectors": entries}
    write_new(out, "index.json", json.dumps(index, indent=1).encode(), mode)
    return out / "index.json"


def prepare_folder(out_dir, force: bool) -> Path:
    """``out_dir``, made if missing, checked: a folder, writable, holding no symbolic link, and
    no vectors unless ``force``; else VectorError."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise VectorError(f"{out}: not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
        links = sorted(entry.name for entry in os.scandir(out) if entry.is_symlink())
    except OSError as err:
        raise VectorError(f"{out}: cannot be made or read ({err.strerror})") from None
    if links:
        raise VectorError(
            f"{out}: holds a symbolic link ({links[0]}{f' and {len(links) - 1} more' if len(links) > 1 else ''}); "
            "vectors are written only into a folder without links"
        )
    if holds_vectors(out) and not force:
        raise VectorError(f"{out} holds test vectors already; choose another folder, or --force to overwrite them")
    try:  # whether the folder takes files: one made and removed
        fd, probe = tempfile.mkstemp(dir=out, prefix=".write-test-")
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise VectorError(f"{out}: cannot be written ({err.strerror})") from None
    return out


def write_new(out: Path, name: str, data: bytes, mode: int) -> None:
    """Write ``out / name`` with permissions ``mode``: as a new file of its own (created
    exclusively, no link followed), then renamed over whatever had that name (a link is
    replaced, never written through)."""
    try:
        fd, temporary = tempfile.mkstemp(dir=out, prefix=f".{name}.")
        try:
            with os.fdopen(fd, "wb") as file:
                file.write(data)
            os.chmod(temporary, mode)
            os.replace(temporary, out / name)
        except BaseException:
            os.unlink(temporary)
            raise
    except OSError as err:
        raise VectorError(f"{out / name}: cannot be written ({err.strerror})") from None


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask

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
"""

from __future__ import annotations

import json
import stat
import zipfile
from pathlib import Path
from typing import NamedTuple

import numpy as np

from yolov1_loss.conformance.inputs.example import CELL_CASES, Recipe, build
from yolov1_loss.conformance.user_loss.implementation import OUTPUT_NAMES
from yolov1_loss.reference import LossSpec, loss_and_grad
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
    """A vector folder that cannot be read: the message names the file and what is wrong."""


MAX_FILE_BYTES = 64 * 2**20  # a vector at S = 7 takes a few kB; nothing legitimate comes near this


def holds_vectors(directory) -> bool:
    """Whether ``directory`` already holds a vector index."""
    return (Path(directory) / "index.json").exists()


def write_vectors(out_dir, specs: dict[str, LossSpec], force: bool = False) -> Path:
    """Write one vector per recipe for each named spec; returns the path of index.json.

    Refuses (VectorError) to write over a folder that holds vectors already, unless ``force``.
    """
    out = Path(out_dir)
    if holds_vectors(out) and not force:
        raise VectorError(f"{out} holds test vectors already; choose another folder, or --force to overwrite them")
    out.mkdir(parents=True, exist_ok=True)
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
            np.savez(out / f"{name}.npz", **arrays)
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
    index = out / "index.json"
    index.write_text(
        json.dumps({"format": FORMAT, "version": VERSION, "layout": "classes-first", "vectors": entries}, indent=1)
    )
    return index


def _regular_file_inside(directory: Path, name) -> Path:
    """``directory / name`` if it is a regular file inside ``directory`` (no absolute path, no
    '..', no symbolic link, no FIFO or device) of at most MAX_FILE_BYTES; else VectorError."""
    if not isinstance(name, str) or not name:
        raise VectorError(f"{directory / 'index.json'}: an entry's file is {name!r}, not a file name")
    relative = Path(name)
    if relative.is_absolute() or ".." in relative.parts:
        raise VectorError(f"{directory / 'index.json'}: the file {name!r} lies outside {directory}")
    path = directory / relative
    try:
        info = path.lstat()
    except OSError as err:
        raise VectorError(f"{path}: {err.strerror}") from None
    if stat.S_ISLNK(info.st_mode):
        raise VectorError(f"{path}: a symbolic link; vector files must be plain files inside {directory}")
    if not stat.S_ISREG(info.st_mode):
        raise VectorError(f"{path}: not a regular file")
    if info.st_size > MAX_FILE_BYTES:
        raise VectorError(f"{path}: {info.st_size} bytes, more than the {MAX_FILE_BYTES} a vector file may have")
    return path


def read_index(directory) -> list[dict]:
    """The entries of ``directory``'s index.json, checked; VectorError when it is not a vector index."""
    directory = Path(directory)
    if not directory.is_dir():
        raise VectorError(f"{directory}: no such folder")
    path = _regular_file_inside(directory, "index.json")
    try:
        index = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise VectorError(f"{path}: not valid JSON ({err})") from None
    if not isinstance(index, dict) or index.get("format") != FORMAT or index.get("version") != VERSION:
        raise VectorError(f"{path}: not a version-{VERSION} '{FORMAT}' index")
    entries = index.get("vectors")
    if not isinstance(entries, list):
        raise VectorError(f"{path}: 'vectors' is not a list")
    for k, entry in enumerate(entries):
        missing = {"name", "file", "S", "B", "C", "knobs"} - set(entry if isinstance(entry, dict) else ())
        if missing:
            raise VectorError(f"{path}: entry {k} lacks {', '.join(sorted(missing))}")
    return entries


def entry_spec(directory, entry: dict) -> LossSpec:
    try:
        return LossSpec(entry["S"], entry["B"], entry["C"], **entry["knobs"])
    except (TypeError, ValueError) as err:
        raise VectorError(
            f"{Path(directory) / 'index.json'}: entry {entry['name']!r} is not a valid spec ({err})"
        ) from None


def read_vector(directory, entry: dict) -> Vector:
    """The vector an index entry names, its arrays checked against its spec."""
    directory = Path(directory)
    spec = entry_spec(directory, entry)
    path = _regular_file_inside(directory, entry["file"])
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {
                key: np.asarray(data[key], dtype=np.float64)
                for key in ("pred", "target", "kink_margin", *OUTPUT_NAMES, *(f"grad_{f}" for f in OUTPUT_NAMES))
            }
    except KeyError as err:
        raise VectorError(f"{path}: lacks the array {err}") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        raise VectorError(f"{path}: not a readable .npz file ({err})") from None
    pred, target = arrays["pred"], arrays["target"]
    if (
        pred.ndim != 4
        or pred.shape[1:] != (spec.S, spec.S, spec.pred_channels)
        or target.shape != (*pred.shape[:3], spec.target_channels)
    ):
        raise VectorError(
            f"{path}: arrays of shapes {pred.shape} and {target.shape} do not fit S={spec.S}, B={spec.B}, C={spec.C}"
        )
    values = {field: arrays[field] for field in OUTPUT_NAMES}
    grads = {field: arrays[f"grad_{field}"] for field in OUTPUT_NAMES}
    if any(g.shape != pred.shape for g in grads.values()):
        raise VectorError(f"{path}: a gradient is not shaped like pred {pred.shape}")
    return Vector(
        entry["name"], spec, entry.get("case", "?"), pred, target, values, grads, float(arrays["kink_margin"])
    )


def read_vectors(directory) -> list[Vector]:
    """Every vector of a folder written by :func:`write_vectors`, checked against its index."""
    return [read_vector(directory, entry) for entry in read_index(directory)]

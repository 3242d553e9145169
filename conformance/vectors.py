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
from pathlib import Path
from typing import NamedTuple

import numpy as np

from yolov1_loss.conformance.example import CELL_CASES, Recipe, build
from yolov1_loss.conformance.implementation import OUTPUT_NAMES
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


def write_vectors(out_dir, specs: dict[str, LossSpec]) -> Path:
    """Write one vector per recipe for each named spec; returns the path of index.json."""
    out = Path(out_dir)
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
                {"name": name, "file": f"{name}.npz", "dialect": dialect, "case": case,
                 "S": spec.S, "B": spec.B, "C": spec.C, "images": int(example.images), "knobs": spec.knobs()}
            )
    index = out / "index.json"
    index.write_text(json.dumps({"format": FORMAT, "version": VERSION, "layout": "classes-first", "vectors": entries}, indent=1))
    return index


def read_vectors(directory) -> list[Vector]:
    """Every vector of a folder written by :func:`write_vectors`, checked against its index."""
    directory = Path(directory)
    index_path = directory / "index.json"
    if not index_path.is_file():
        raise ValueError(f"{directory}: no index.json; not a folder of test vectors")
    index = json.loads(index_path.read_text())
    if index.get("format") != FORMAT or index.get("version") != VERSION:
        raise ValueError(f"{index_path}: not a version-{VERSION} '{FORMAT}' index")
    vectors = []
    for entry in index["vectors"]:
        spec = LossSpec(entry["S"], entry["B"], entry["C"], **entry["knobs"])
        with np.load(directory / entry["file"], allow_pickle=False) as data:
            values = {field: data[field] for field in OUTPUT_NAMES}
            grads = {field: data[f"grad_{field}"] for field in OUTPUT_NAMES}
            vectors.append(
                Vector(entry["name"], spec, entry["case"], data["pred"], data["target"], values, grads, float(data["kink_margin"]))
            )
    return vectors

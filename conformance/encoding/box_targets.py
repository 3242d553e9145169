"""A loss that takes box lists (``check --targets boxes|padded``): the check's grid handed over as
the boxes the loss takes, so that every stage of the check (identification, properties, hints,
reports) applies unchanged.

The grid's object cells become one box each, ``[class, cx, cy, w, h]`` per row (the class column
first or last; centre and size, or corners; fractions of the image, or pixels), in the order of the
cells (row by row), with cx = (column + x) / S; a list of per-image (M_i, 5) arrays, or with
``padded`` one (N, M, 5) array whose missing rows hold ``fill``. For a loss whose encoder is the
oracle's, the loss of what it is handed is the oracle's loss of the grid:

- a class target that is not one-hot (the identification's probes) is said by the box's highest
  class, and the cell's predicted class scores move by (one-hot − q), so that every q − p is kept
  (the loss's gradient with respect to the moved scores is its gradient with respect to the
  scores: the move is a constant);
- a grid no box gives exactly is left out of the properties (:data:`HELD_OUT`): an offset nearer
  a cell's edge than MARGIN, or beyond it (the hard cases' offsets in image units, large
  magnitudes), where the loss's re-encoding cx·S − column would land in another cell or round
  away from x; and the hard cases built on exact coincidences of edges (touching, nested, near
  darknet's cap), which that rounding would break.

The boxes' own hard cases (two centres in a cell, centres at 0 and 1, edges) cannot come from a
grid: :mod:`.box_property` hands those over as they are (``given``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from yolov1_loss.conformance.inputs.input_classes import InputClass
from yolov1_loss.reference.encode import BOX_FORMATS, DUPLICATES, from_fractions

KINDS = ("boxes", "padded")
CLASS_COLUMNS = ("first", "last")
MARGIN = 1e-3  # an offset nearer a cell's edge is held out (float32 rounds cx·S − column by ~S·6e-8)
EXACT_CASES = ("touching", "nested", "near_cap")  # conformance.inputs.example's cases built on exact edges


def _given_exactly(example) -> bool:
    """Whether a box list says ``example``'s grid (see the module)."""
    recipe = example.recipe
    if recipe is not None and (recipe.magnitude != 1 or set(recipe.cases) & set(EXACT_CASES)):
        return False
    C = example.spec.C
    offsets = example.target[example.has_object][:, C + 1 : C + 3]
    return bool(np.all((offsets >= MARGIN) & (offsets <= 1 - MARGIN)))


HELD_OUT = InputClass(
    "not_boxes",
    "a grid no box list gives exactly (an offset at or beyond its cell's edge, large magnitudes, the hard cases of exactly coinciding edges)",
    True,
    lambda example: not _given_exactly(example),
    lambda spec: None,
)


@dataclass(frozen=True)
class BoxTargets:
    """How a loss takes its targets as boxes (see the module)."""

    kind: str = "boxes"
    box_format: str = "cxcywh"
    class_column: str = "first"
    image_size: tuple | None = None
    fill: float = -1.0
    # Which box the loss's encoder must keep of several centres in one cell: one of
    # reference.encode.DUPLICATES, or 'any' (the box_encoding property names the one it keeps).
    duplicates: str = "any"
    # Boxes to hand over as they are, per image (M_i, 5) rows in this format, instead of the grid's.
    given: tuple | None = None
    # What the last call handed over, to tell what the loss wrote into its inputs (keep_inputs).
    _handed: dict = field(default_factory=dict, compare=False, repr=False)
    held_out = HELD_OUT  # (a class attribute: the input class a check leaves out of the properties)

    def __post_init__(self):
        for name, allowed in (("kind", KINDS), ("box_format", BOX_FORMATS), ("class_column", CLASS_COLUMNS)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"targets {name} must be one of {allowed}, got {getattr(self, name)!r}")
        if self.duplicates not in ("any", *DUPLICATES):
            raise ValueError(f"duplicates must be 'any' or one of {DUPLICATES}, got {self.duplicates!r}")

    def options(self) -> list[str]:
        """The command-line options that say this, e.g. ['--targets boxes', '--box-format xyxy']."""
        words = [f"--targets {self.kind}"]
        if self.box_format != "cxcywh":
            words.append(f"--box-format {self.box_format}")
        if self.class_column != "first":
            words.append(f"--class-column {self.class_column}")
        if self.image_size is not None:
            words.append(f"--image-size {self.image_size[0]:g},{self.image_size[1]:g}")
        if self.kind == "padded" and self.fill != -1.0:
            words.append(f"--fill {self.fill:g}")
        if self.duplicates != "any":
            words.append(f"--duplicates {self.duplicates}")
        return words

    def code(self) -> str:
        """Python that rebuilds these options (``given`` left out), for a reproduction to paste."""
        fields = ("kind", "box_format", "class_column", "image_size", "fill", "duplicates")
        arguments = ", ".join(f"{name}={getattr(self, name)!r}" for name in fields)
        return f"yolov1_loss.conformance.encoding.box_targets.BoxTargets({arguments})"

    def attach(self, impl):
        """``impl`` (an Implementation) taking these box targets, its reproduction saying so."""
        repro = f"{self.code()}.attach({impl.repro})" if impl.repro else ""
        return dataclasses.replace(impl, targets=self, repro=repro)

    def rows(self, boxes: np.ndarray, labels: np.ndarray) -> np.ndarray:
        """(M, 4) (cx, cy, w, h) fractions and (M,) labels → (M, 5) rows in this format."""
        written = from_fractions(boxes, self.box_format, self.image_size)
        labels = np.asarray(labels, dtype=np.float64).reshape(-1, 1)
        return np.concatenate([labels, written] if self.class_column == "first" else [written, labels], axis=1)

    def batch(self, images: list[np.ndarray]):
        """Per-image (M_i, 5) rows → what the loss takes: the list, or one (N, M, 5) array padded with ``fill``."""
        if self.kind == "boxes":
            return images
        out = np.full((len(images), max([len(rows) for rows in images] + [0]), 5), self.fill)
        for n, rows in enumerate(images):
            out[n, : len(rows)] = rows
        return out

    def to_loss(self, impl, pred: np.ndarray, target: np.ndarray, spec):
        """Canonical (pred, grid) → (pred' in the loss's layout, its box targets) (see the module)."""
        moved = np.array(pred, dtype=np.float64)
        if self.given is not None:
            images = [np.asarray(rows, dtype=np.float64) for rows in self.given]
        else:
            images = [self._image(moved[n], target[n], spec) for n in range(len(target))]
        from yolov1_loss.conformance.user_loss.implementation import pred_to_layout  # (it imports this module)

        handed = pred_to_layout(impl, moved, spec)
        self._handed.update(pred=pred, target=target, handed=handed, images=images)
        return handed, self.batch(images)

    def _image(self, pred: np.ndarray, target: np.ndarray, spec) -> np.ndarray:
        """One image's rows; moves ``pred`` (S, S, C + 5B) in place where the boxes cannot say the grid."""
        S, C = spec.S, spec.C
        rows, cols = np.nonzero(target[..., C] == 1)
        q = target[rows, cols, :C]
        labels = np.argmax(q, axis=-1) if C else np.zeros(len(rows), dtype=int)
        pred[rows, cols, :C] += np.eye(C)[labels] - q
        centres = (np.stack([cols, rows], axis=-1) + target[rows, cols, C + 1 : C + 3]) / S
        return self.rows(np.concatenate([centres, target[rows, cols, C + 3 : C + 5]], axis=-1), labels)

    def from_loss(self, impl, pred_after, target_after, spec):
        """The canonical (pred, grid) as the loss left what it was handed: the originals, moved by
        whatever the loss wrote into its inputs (a box row's change shows in its cell's o, x, y, w, h)."""
        h = self._handed
        dtype = np.dtype(impl.dtype)
        from yolov1_loss.conformance.user_loss.implementation import pred_from_layout  # (it imports this module)

        wrote = np.asarray(pred_after, np.float64) - h["handed"].astype(dtype)
        pred = h["pred"] + pred_from_layout(impl, wrote, spec)
        target = np.array(h["target"], dtype=np.float64)
        after = list(target_after) if self.kind == "boxes" else list(np.asarray(target_after))
        C = spec.C
        for n, (rows_after, rows) in enumerate(zip(after, h["images"])):
            change = np.asarray(rows_after, np.float64)[: len(rows)] - rows.astype(dtype)
            if self.class_column == "last":
                change = change[:, [4, 0, 1, 2, 3]]
            cells = np.argwhere(h["target"][n, ..., C] == 1)
            for (i, j), delta in zip(cells, change):
                target[n, i, j, C : C + 5] += delta
        return pred, target

"""The grid target from boxes on torch tensors, batched (docs/spec.md, "Targets from boxes"): the
oracle's :func:`yolov1_loss.reference.encode` on the boxes' device, with no Python loop over the
objects and no host-device synchronisation (unless ``validate``).
"""

from __future__ import annotations

import torch

from yolov1_loss.reference.encode import BOX_FORMATS, DUPLICATES


def _fractions(boxes: torch.Tensor, box_format: str, image_size) -> torch.Tensor:
    """(..., 4) boxes → (..., 4) (cx, cy, w, h) fractions of the image."""
    if box_format not in BOX_FORMATS:
        raise ValueError(f"box_format must be one of {BOX_FORMATS}, got {box_format!r}")
    if box_format == "xyxy":
        low, high = boxes[..., :2], boxes[..., 2:]
        boxes = torch.cat([(low + high) / 2, high - low], dim=-1)
    if image_size is not None:
        W, H = image_size
        boxes = boxes / boxes.new_tensor([W, H, W, H])
    return boxes


def _cell(centre: torch.Tensor, S: int) -> torch.Tensor:
    """⌊centre·S⌋, a centre at 1.0 in the last cell."""
    return torch.clamp(torch.floor(centre * S), 0, S - 1).long()


def _kept(cells: torch.Tensor, valid: torch.Tensor, area: torch.Tensor, duplicates: str, n_cells: int) -> torch.Tensor:
    """(N, M) bool: each box that its cell keeps. ``cells``: (N, M) flat cell indices over the batch."""
    N, M = cells.shape
    index = torch.arange(M, device=cells.device).expand(N, M)
    cells, index = cells.reshape(-1), index.reshape(-1)
    valid = valid.reshape(-1)
    if duplicates == "larger":  # the largest area, then the first of equal areas
        best = torch.full((n_cells,), -1.0, dtype=area.dtype, device=cells.device)
        best = best.scatter_reduce(0, cells, torch.where(valid, area.reshape(-1), -1.0), "amax")
        valid = valid & (area.reshape(-1) == best[cells])
    last = duplicates == "last"
    sentinel = -1 if last else M
    winner = torch.full((n_cells,), sentinel, dtype=torch.long, device=cells.device)
    winner = winner.scatter_reduce(0, cells, torch.where(valid, index, sentinel), "amax" if last else "amin")
    return (valid & (winner[cells] == index)).reshape(N, M)


def encode(
    boxes: torch.Tensor,
    labels: torch.Tensor,
    S: int,
    C: int,
    *,
    box_format: str = "cxcywh",
    image_size=None,
    duplicates: str = "first",
    validate: bool = False,
) -> torch.Tensor:
    """Boxes → canonical grid targets, on the boxes' device, in their (floating) dtype.

    ``boxes``: (N, M, 4) in ``box_format``, fractions of the image or pixels of ``image_size`` =
    (W, H); ``labels``: (N, M) class indices, a negative label marking padding (no box); or one
    image's (M, 4) and (M,). Returns (N, S, S, C + 5), or (S, S, C + 5) for one image.
    ``duplicates``: which box a cell keeps ('first', 'last', 'larger'). ``validate``: refuse the
    inputs the oracle refuses, with its messages (this reads the boxes back to the host).
    """
    if duplicates not in DUPLICATES:
        raise ValueError(f"duplicates must be one of {DUPLICATES}, got {duplicates!r}")
    one_image = boxes.dim() == 2
    if one_image:
        boxes, labels = boxes[None], labels[None]
    if validate:
        _validate(boxes, labels, C, box_format, image_size)
    N, M = labels.shape
    fractions = _fractions(boxes, box_format, image_size)
    cx, cy, w, h = fractions.unbind(-1)
    rows, cols = _cell(cy, S), _cell(cx, S)
    images = torch.arange(N, device=boxes.device)[:, None]
    cells = (images * S + rows) * S + cols  # (N, M) over the whole batch
    valid = labels >= 0
    kept = _kept(cells, valid, w * h, duplicates, N * S * S)
    values = torch.stack([torch.ones_like(cx), cx * S - cols, cy * S - rows, w, h], dim=-1)
    classes = torch.nn.functional.one_hot(labels.clamp(min=0).long(), C).to(values.dtype)
    rows_out = torch.where(kept, cells, N * S * S)  # boxes not kept go to a spare row, dropped
    grid = torch.zeros(N * S * S + 1, C + 5, dtype=values.dtype, device=boxes.device)
    grid.index_put_((rows_out.reshape(-1),), torch.cat([classes, values], dim=-1).reshape(-1, C + 5))
    grid = grid[:-1].reshape(N, S, S, C + 5)
    return grid[0] if one_image else grid


def _validate(boxes, labels, C, box_format, image_size) -> None:
    from yolov1_loss.reference.encode import check_boxes, to_fractions

    for n, (image_boxes, image_labels) in enumerate(zip(boxes.detach().cpu().double(), labels.cpu())):
        present = image_labels >= 0
        given = image_boxes[present].numpy()
        check_boxes(to_fractions(given, box_format, image_size), image_labels[present].double().numpy(), C, n, given)

"""How large a grid (S, B, C) a job can take: the bytes of the arrays it allocates against a limit
(the machine's memory, or the size of a vector file), and the largest S, B or C that fits, for a
one-line refusal made before the job starts.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from yolov1_loss.reference import OUTPUT_NAMES, LossSpec

DEFAULT_GRID = {"S": 7, "B": 2, "C": 20}  # the grid a job assumes unless told (LossSpec()'s)

Need = Callable[[LossSpec], int]  # the bytes a job needs on a grid

# The images of a check's probes and of its largest example: identification's probes (their
# number does not depend on S or C; B = 1 has one family fewer, so B = 2 counts) and the
# properties' MAX_IMAGES. Counting them means building every probe, on each start of check,
# bench and the plugin, so the count is kept here; tests/check/test_arguments.py counts them.
CHECK_IMAGES = 90


def too_large(job: str, need: Need, spec: LossSpec, limit: int, limit_words: str) -> str | None:
    """None when ``need(spec)`` is at most ``limit``; else one line that says how much ``job``
    needs and the largest value that fits of the option furthest beyond its default (S, B or C),
    the other two as they are: '... (at B=2, C=20, S can be at most 143)'."""
    needed = need(spec)
    if needed <= limit:
        return None
    option = max(DEFAULT_GRID, key=lambda name: getattr(spec, name) / DEFAULT_GRID[name])
    largest = _largest(lambda value: need(spec.replace(**{option: value})) <= limit)
    others = ", ".join(f"{name}={getattr(spec, name)}" for name in DEFAULT_GRID if name != option)
    bound = f"{option} can be at most {largest}" if largest else f"no {option} fits"
    return (
        f"{job} at S={spec.S}, B={spec.B}, C={spec.C} needs about {readable(needed)}, more than {limit_words} "
        f"({readable(limit)}): at {others}, {bound}"
    )


def _largest(fits: Callable[[int], bool]) -> int:
    """The largest n >= 1 for which ``fits`` holds (it holds up to some n, then never), or 0."""
    if not fits(1):
        return 0
    low, high = 1, 2
    while fits(high):
        low, high = high, 2 * high
    while high - low > 1:  # fits(low), not fits(high)
        middle = (low + high) // 2
        low, high = (middle, high) if fits(middle) else (low, middle)
    return low


def readable(n: int) -> str:
    """A byte count as people read it: '512 bytes', '3.1 MB', '24 GB', '1.2 TB'."""
    for unit, size in (("TB", 10**12), ("GB", 10**9), ("MB", 10**6), ("kB", 10**3)):
        if n >= size:
            return f"{n / size:.2g} {unit}" if n < 10 * size else f"{n / size:.0f} {unit}"
    return f"{n} bytes"


def machine_memory() -> int:
    """The bytes of memory this process may use: the machine's, or its control group's limit
    where that is lower."""
    total = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
    except OSError:
        return total
    return min(total, int(limit)) if limit.isdigit() else total


def image_bytes(spec: LossSpec) -> int:
    """The bytes of one image on ``spec``'s grid with its pred, target and the five gradients
    the oracle gives (in float64)."""
    cells = spec.S * spec.S
    return 8 * cells * ((1 + len(OUTPUT_NAMES)) * spec.pred_channels + spec.target_channels)


def check_bytes(spec: LossSpec) -> int:
    """What a check allocates on ``spec``'s grid, about: the probes identification holds for the
    whole check and the largest example the properties draw, each image with its pred, target
    and the five gradients the oracle gives (in float64)."""
    return CHECK_IMAGES * image_bytes(spec)

"""Hints for the usual mistakes: a loss checked in the wrong layout, or written as loss(target, pred).

When no dialect reproduces a loss's values (or it fails on every probe), :func:`hint` tries the
obvious alternatives (every other layout, the arguments swapped) and names the first under which
the loss runs and a dialect fits plausibly, with the check's command (its other options kept)
called that way. A hint is only given
when the alternative really runs: it gives a value wherever the dialect does, the fit leaves no
term out (no λ of 0) and matches within tolerance (``Identification.plausible``).
"""

from __future__ import annotations

import dataclasses

from yolov1_loss.conformance.dialects.words import describe
from yolov1_loss.conformance.user_loss.implementation import ARGUMENTS, Implementation
from yolov1_loss.reference import LAYOUTS


def alternatives(impl: Implementation):
    """(the options that select it, the implementation called that way), for every other layout and argument order."""
    for arguments in ARGUMENTS:
        for layout in LAYOUTS:
            if (layout, arguments) == (impl.layout, impl.arguments):
                continue
            flags = []
            if layout != impl.layout:
                flags.append(f"--layout {layout}")
            if arguments != impl.arguments:
                flags.append(f"--args {arguments}")
            yield " ".join(flags), dataclasses.replace(impl, layout=layout, arguments=arguments)


def hint(impl: Implementation, S: int, B: int, C: int, identify_values, command_for, progress=None) -> str | None:
    """The first alternative under which a dialect fits the loss's values plausibly, as advice; or None.

    ``identify_values(impl)`` identifies an implementation from its values alone (raising
    ValueError where it fails on every probe). ``command_for(variant)``: the check's command with
    the layout and argument order of ``variant`` (an implementation of :func:`alternatives`).
    ``progress(k, total, flags)``: before the k-th alternative of ``total``."""
    tried = list(alternatives(impl))
    for k, (flags, variant) in enumerate(tried, 1):
        if progress is not None:
            progress(k, len(tried), flags)
        try:
            identified = identify_values(variant)
        except ValueError:
            continue
        if identified.plausible:
            match = describe(identified.spec, identified.undetermined)
            return f"called with {flags}, the loss runs and its values match {match}: try {command_for(variant)}"
    return None

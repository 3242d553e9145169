"""Hints for the usual mistakes: a loss checked in the wrong layout, written as loss(target, pred), or
(``--targets boxes|padded``) taking its boxes in another format or with the class column elsewhere.

When no dialect reproduces a loss's values (or it fails on every probe), :func:`hint` tries the
obvious alternatives (every other layout, the arguments swapped; for box targets, every other box
format and class column, one option at a time) and names the first under which
the loss runs and a dialect fits plausibly, with the check's command (its other options kept)
called that way, and what is then probably wrong ("its layout is probably boxes-first", "it
probably takes its boxes as xyxy"). A hint
is only given when the alternative really runs: it gives a value wherever the dialect does, the
fit leaves no term out (no λ of 0) and matches within tolerance (``Identification.plausible``).
Where there is one, it is the answer: the report says it right after the verdict, and blames
nothing computed under the layout checked.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

from yolov1_loss.conformance.dialects.words import describe
from yolov1_loss.conformance.encoding.box_targets import CLASS_COLUMNS
from yolov1_loss.conformance.user_loss.implementation import ARGUMENTS, Implementation
from yolov1_loss.reference import LAYOUTS
from yolov1_loss.reference.encode import BOX_FORMATS


class Hint(NamedTuple):
    """The loss fits a dialect when called otherwise: the likely cause of its differences."""

    flags: str  # the options that call it that way: '--layout boxes-first', '--args target,pred'
    match: str  # the dialect its values then match, in words: "paper with wh_mode='sqrt'"
    command: str  # the check's command with those options
    layout: str | None  # the layout it then has, where that is not the one checked
    arguments: str | None  # the argument order it then has, where that is not the one checked
    boxes: str | None = None  # how it then takes its boxes, where that is not as checked: 'as xyxy'

    def cause(self) -> str:
        """What is probably wrong, in words: 'its layout is probably boxes-first'."""
        said = [f"its layout is probably {self.layout}"] if self.layout is not None else []
        if self.arguments is not None:
            order = ", ".join(self.arguments.split(","))
            said.append(f"{'and it takes' if said else 'it probably takes'} its arguments as ({order})")
        if self.boxes is not None:
            said.append(f"{'and it takes' if said else 'it probably takes'} its boxes {self.boxes}")
        return " ".join(said)

    def lines(self) -> list[str]:
        """The report's lines, right after its verdict: what fits, what is probably wrong, the command."""
        return [
            f"hint: called with {self.flags}, the loss runs and its values match {self.match}: {self.cause()}",
            f"  try: {self.command}",
        ]

    def to_dict(self) -> dict:
        return {"advice": self.lines()[0].removeprefix("hint: "), **self._asdict()}


def _boxes_differ(targets, checked) -> str | None:
    """How box targets ``targets`` differ from ``checked`` (BoxTargets), in words: 'as xyxy with
    the class last'; None where they do not."""
    said = [f"as {targets.box_format}"] if targets.box_format != checked.box_format else []
    if targets.class_column != checked.class_column:
        said.append(f"with the class {targets.class_column}")
    return " ".join(said) or None


def box_alternatives(impl: Implementation):
    """(the options that select it, the implementation called that way), for every other box format
    and class column of a loss that takes box targets (none for one that takes the grid)."""
    if impl.targets is None:
        return
    for box_format in BOX_FORMATS:
        for class_column in CLASS_COLUMNS:
            targets = dataclasses.replace(impl.targets, box_format=box_format, class_column=class_column)
            if _boxes_differ(targets, impl.targets) is None:
                continue
            flags = [f"--box-format {box_format}"] if box_format != impl.targets.box_format else []
            if class_column != impl.targets.class_column:
                flags.append(f"--class-column {class_column}")
            yield " ".join(flags), dataclasses.replace(impl, targets=targets)


def alternatives(impl: Implementation):
    """(the options that select it, the implementation called that way), for every other box format
    and class column (:func:`box_alternatives`), then every other layout and argument order."""
    yield from box_alternatives(impl)
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


def hint(impl: Implementation, S: int, B: int, C: int, identify_values, command_for, progress=None) -> Hint | None:
    """The first alternative under which a dialect fits the loss's values plausibly; or None.

    ``identify_values(impl)`` identifies an implementation from its values alone (raising
    ValueError where it fails on every probe). ``command_for(variant)``: the check's command with
    the layout, argument order and box targets of ``variant`` (an implementation of :func:`alternatives`).
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
            return Hint(
                flags,
                describe(identified.spec, identified.undetermined),
                command_for(variant),
                variant.layout if variant.layout != impl.layout else None,
                variant.arguments if variant.arguments != impl.arguments else None,
                None if impl.targets is None else _boxes_differ(variant.targets, impl.targets),
            )
    return None

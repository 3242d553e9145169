"""Hints for the usual mistakes: a loss checked in the wrong layout, or written as loss(target, pred).

When no dialect reproduces a loss's values (or it fails on every probe), :func:`hint` tries the
obvious alternatives (every other layout, the arguments swapped) and names the first under which
the loss runs and a dialect fits plausibly, with the check's command (its other options kept)
called that way, and what is then probably wrong ("its layout is probably boxes-first"). A hint
is only given when the alternative really runs: it gives a value wherever the dialect does, the
fit leaves no term out (no λ of 0) and matches within tolerance (``Identification.plausible``).
Where there is one, it is the answer: the report says it right after the verdict, and blames
nothing computed under the layout checked.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

from yolov1_loss.conformance.dialects.words import describe
from yolov1_loss.conformance.user_loss.implementation import ARGUMENTS, Implementation
from yolov1_loss.reference import LAYOUTS


class Hint(NamedTuple):
    """The loss fits a dialect when called otherwise: the likely cause of its differences."""

    flags: str  # the options that call it that way: '--layout boxes-first', '--args target,pred'
    match: str  # the dialect its values then match, in words: "paper with wh_mode='sqrt'"
    command: str  # the check's command with those options
    layout: str | None  # the layout it then has, where that is not the one checked
    arguments: str | None  # the argument order it then has, where that is not the one checked

    def cause(self) -> str:
        """What is probably wrong, in words: 'its layout is probably boxes-first'."""
        said = [f"its layout is probably {self.layout}"] if self.layout is not None else []
        if self.arguments is not None:
            order = ", ".join(self.arguments.split(","))
            said.append(f"{'and it takes' if said else 'it probably takes'} its arguments as ({order})")
        return " ".join(said)

    def lines(self) -> list[str]:
        """The report's lines, right after its verdict: what fits, what is probably wrong, the command."""
        return [
            f"hint: called with {self.flags}, the loss runs and its values match {self.match}: {self.cause()}",
            f"  try: {self.command}",
        ]

    def to_dict(self) -> dict:
        return {"advice": self.lines()[0].removeprefix("hint: "), **self._asdict()}


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


def hint(impl: Implementation, S: int, B: int, C: int, identify_values, command_for, progress=None) -> Hint | None:
    """The first alternative under which a dialect fits the loss's values plausibly; or None.

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
            return Hint(
                flags,
                describe(identified.spec, identified.undetermined),
                command_for(variant),
                variant.layout if variant.layout != impl.layout else None,
                variant.arguments if variant.arguments != impl.arguments else None,
            )
    return None

"""The verdict on what a loss computes: a known dialect, the one named, or neither.

A check's exit 0 means the loss computes, values and gradients, the dialect named with
``--dialect``/``--set`` or, with none named, a *known* dialect: an entry of the catalogue
(:mod:`conformance.dialects.catalogue`) without a bug. :func:`judge` reads an identification
(:mod:`conformance.dialects.fitting`) that way and says why in words: the entry the loss computes
the same as; or the nearest known dialect, one line per knob in which the loss differs from it, and
the command that accepts what it computes, for a user who meant it. A fit with a term left out (a λ
of 0 that nothing pinned) or with probes the loss failed on where the oracle gives a value is no
dialect. ``accept_any`` keeps the lenient answer: any dialect the values match conforms.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from yolov1_loss.conformance.dialects import catalogue
from yolov1_loss.conformance.dialects.words import describe, differences, known_base, pin_command
from yolov1_loss.reference.spec import WEIGHTS

# How the command that holds a loss to its dialect is introduced: where it conforms, and where
# it does not (the user may have meant what it computes).
HOLD = "to hold the loss to this dialect in CI"
ACCEPT = "if this is the dialect you mean, accept it with"


@dataclass(frozen=True)
class DialectVerdict:
    """Whether what a loss computes conforms, and why, in words."""

    conforms: bool
    reason: str  # after 'DIFFERS' on the verdict line ('from every known dialect', ...); '' when it conforms
    headline: str  # after 'dialect: '
    details: tuple[str, ...] = ()  # the lines under it: how it differs, the entry's bug, ...
    pin: str | None = None  # the command that holds the loss to what it computes
    pin_words: str = HOLD
    entry: catalogue.Entry | None = None  # the known dialect it computes the same as
    base: catalogue.Entry | None = None  # the known dialect the details compare it with
    differences: tuple[str, ...] = ()  # one line per knob in which it differs from ``base``

    def lines(self) -> list[str]:
        """The report's dialect lines."""
        out = [f"dialect: {self.headline}", *(f"  {line}" for line in self.details)]
        if self.pin:
            out.append(f"  {self.pin_words}: {self.pin}")
        return out

    def to_dict(self) -> dict:
        return {
            "conforms": self.conforms,
            "reason": self.reason or None,
            "computes_the_same_as": None if self.entry is None else self.entry.name,
            "bug": None if self.entry is None else self.entry.bug,
            "nearest": None if self.base is None else self.base.name,
            "differences": list(self.differences),
            "pin": self.pin,
        }


def unmatched(named: bool) -> str:
    """What a loss whose values match no dialect it may compute differs from, after 'DIFFERS':
    the dialect named (``named``), or every known dialect."""
    return "from the dialect named" if named else "from every known dialect"


def with_reason(head: str, reason: str) -> str:
    """``head`` ('DIFFERS', "the loss's dialect differs") and a verdict's ``reason``: after a space
    ('DIFFERS from every known dialect'), or right after it where the reason starts with ':'
    ('DIFFERS: it fails on …'); ``head`` alone where there is none."""
    if not reason:
        return head
    return head + (reason if reason.startswith(":") else f" {reason}")


def dialect_names() -> tuple[str, ...]:
    """The names ``--dialect`` takes besides 'auto': the catalogue's dialects the knobs express."""
    return tuple(entry.name for entry in catalogue.entries() if entry.expressible)


def _about(entry: catalogue.Entry) -> str:
    """'paper: the paper's loss: … (Redmon et al., …)'."""
    return f"{entry.name}: {entry.known_for} ({entry.source})"


def _failed(identified) -> str | None:
    """Why the loss is not a dialect on its own inputs: the probes it failed on, or None."""
    if identified.failed_probes is None:
        return None
    return f"it fails on ordinary input where the oracle gives a value: {identified.failed_probes}"


def judge(identified, command: str, dialect: str = "auto", overrides: dict | None = None, accept_any: bool = False):
    """The verdict on an identification whose values match a dialect (``identified.matches``).

    ``command``: ``yolov1-loss check TARGET`` and its loss options, for the command that pins the
    dialect; ``dialect``: a catalogue entry's name, or 'auto'; ``overrides``: the --set knobs.
    """
    overrides = dict(overrides or {})
    failed = _failed(identified)
    if len(identified.absent) == len(WEIGHTS) and any(overrides.get(name) != 0 for name in WEIGHTS):
        return DialectVerdict(
            False,
            unmatched(dialect != "auto"),
            "none: the loss is 0 on every probe, it computes no term of the YOLOv1 loss",
        )
    if dialect != "auto":
        verdict = _named(identified, command, catalogue.by_name(dialect), overrides)
    else:
        verdict = _known(identified, command, overrides, accept_any)
    if failed is None:
        return verdict
    # Said on the verdict line where nothing else is wrong with the dialect, else under it.
    reason, details = (
        (verdict.reason, (failed, *verdict.details)) if verdict.reason else (f": {failed}", verdict.details)
    )
    return dataclasses.replace(verdict, conforms=False, reason=reason, details=details)


def _set_words(overrides: dict) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in overrides.items())


def _named(identified, command: str, entry: catalogue.Entry, overrides: dict) -> DialectVerdict:
    """Held to the entry named (with ``overrides`` on top)."""
    spec, ignore = identified.spec, identified.undetermined
    named = entry.spec(spec.S, spec.B, spec.C, **overrides)
    label = entry.name + (f" with {_set_words(overrides)}" if overrides else "")
    bug = (f"its bug: {entry.bug}",) if entry.bug else ()
    if catalogue.computes(spec, named, ignore):
        return DialectVerdict(True, "", f"{label}, as named", bug, entry=entry, base=entry)
    lines = tuple(differences(spec, named, ignore, base_name=label))
    base = known_base(spec, ignore)  # (what the values match, in words and in the command)
    details = (f"the values match another dialect: {describe(spec, ignore, base=base)}; it differs in:",
               *(f"  {line}" for line in lines), *bug)  # fmt: skip
    pin = pin_command(command, spec, ignore, base=base)
    return DialectVerdict(False, unmatched(True), f"{label}, as named", details, pin, ACCEPT, None, entry, lines)


def _known(identified, command: str, overrides: dict, accept_any: bool) -> DialectVerdict:
    """No dialect named: conforms when the loss computes a known dialect (with ``overrides`` on
    top) without a bug, or, under ``accept_any``, any dialect with every term."""
    spec, ignore = identified.spec, identified.undetermined
    # One value per image is any known dialect's loss before it is reduced (the user reduces it).
    ignore_reduction = (*ignore, "reduction") if spec.reduction == "none" else ignore
    entry = catalogue.computed(spec, ignore_reduction, overrides)
    if entry is not None:
        per_image = " (one value per image)" if spec.reduction == "none" else ""
        # Knobs set on top of the entry may contradict what it is known for: their meanings instead.
        changed = differences(entry.spec(spec.S, spec.B, spec.C, **overrides), entry, ignore_reduction)
        if changed:
            headline = f"computes {entry.name} with {_set_words(overrides)} set{per_image}, as --set asks"
            details = (*changed, f"{entry.name} in full: yolov1-loss dialects {entry.name}")
        else:
            headline = f"computes the same as {entry.name}{per_image}: {entry.known_for} ({entry.source})"
            details = (f"in full: yolov1-loss dialects {entry.name}",)
        pin = pin_command(command, spec, ignore, base=entry)
        if entry.bug is None:
            return DialectVerdict(True, "", headline, details, pin, HOLD, entry, entry)
        reason = f"from every known dialect but {entry.name}, a known bug"
        return DialectVerdict(False, reason, headline, (f"its bug: {entry.bug}", *details), pin, ACCEPT, entry, entry)
    base = catalogue.nearest(spec, ignore)
    lines = tuple(differences(spec, base, ignore))
    details = (f"the nearest known dialect is {_about(base)}; it differs in:", *(f"  {line}" for line in lines))
    pin = pin_command(command, spec, ignore, base=base)
    headline = describe(spec, ignore, base=base)
    if accept_any and not identified.absent:
        headline += " (no known dialect computes it; accepted under --accept-any-dialect)"
        return DialectVerdict(True, "", headline, details, pin, HOLD, None, base, lines)
    return DialectVerdict(False, unmatched(False), headline, details, pin, ACCEPT, None, base, lines)

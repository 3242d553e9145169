"""The check of a user's loss: is it right, which dialect is it, and where does it part from the oracle?

:class:`CheckOptions` say how to load and call the loss; :func:`isolated` loads it in a child
process (:mod:`conformance.user_loss.isolation`) and wraps it as an :class:`Implementation` whose every call
runs there. :func:`run_check` identifies its dialect (or takes the one named), tries it on each
class of input (:mod:`conformance.inputs.input_classes`), runs every applicable property under Hypothesis
on the inputs it does not fail on, and returns a :class:`CheckReport`; :mod:`conformance.vectors.replay`
holds it to stored test vectors instead.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from hypothesis import settings as Settings

from yolov1_loss.conformance.dialects import catalogue
from yolov1_loss.conformance.dialects.blame import closest_by_gradient, locate, part_shown
from yolov1_loss.conformance.dialects.fitting import identify, prepare, probe_sets
from yolov1_loss.conformance.dialects.hints import Hint, hint
from yolov1_loss.conformance.dialects.verdict import dialect_names, judge, with_reason
from yolov1_loss.conformance.inputs.example import Recipe, build
from yolov1_loss.conformance.inputs.input_classes import INPUT_CLASSES, InputClass, classes_of
from yolov1_loss.conformance.reports.check_report import CheckReport, InputFinding
from yolov1_loss.conformance.suite import runner
from yolov1_loss.conformance.suite.failure import ImplementationRaised
from yolov1_loss.conformance.suite.profiles import suite_settings
from yolov1_loss.conformance.suite.properties import PROPERTIES
from yolov1_loss.conformance.user_loss.frameworks import COMPILERS
from yolov1_loss.conformance.user_loss.implementation import (
    ARGUMENTS,
    DTYPES,
    FRAMEWORKS,
    Implementation,
    ImplementationError,
    default_arguments,
    framework_named,
)
from yolov1_loss.conformance.user_loss.isolation import DEFAULT_TIMEOUT, LossRaised, Worker, WorkerDied
from yolov1_loss.conformance.user_loss.loading import LoadError, repro_of, user_implementation
from yolov1_loss.reference import LAYOUTS, LossSpec, loss_and_grad


def parse_overrides(pairs: list[str]) -> dict:
    """``["lambda_coord=3", "noobj_scope=cell"]`` → a dict of knob values, numbers as floats."""
    defaults = LossSpec().knobs()
    numeric = {name for name, value in defaults.items() if isinstance(value, float)}
    knobs = set(defaults)
    out = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or name not in knobs:
            raise ValueError(f"--set {pair!r}: expected KNOB=VALUE with KNOB one of {', '.join(sorted(knobs))}")
        try:
            out[name] = float(value) if name in numeric else value
        except ValueError:
            raise ValueError(f"--set {pair!r}: {name} takes a number") from None
    return out


@dataclass(frozen=True)
class CheckOptions:
    """How to load and call a user's loss, and what to hold it to: the options of ``check``, of
    ``vectors``/``bench`` where they take a loss, and of the pytest plugin, validated."""

    target: str
    layout: str = "classes-first"
    framework: str = "torch"
    dtype: str = "float32"
    device: str = "cpu"
    output: str | None = None
    grad: str | None = None
    dialect: str = "auto"
    overrides: tuple = ()  # (knob, value) pairs
    arguments: str | None = None  # "pred,target" or "target,pred"; None: the framework's (default_arguments)
    S: int = 7
    B: int = 2
    C: int = 20
    timeout: float = DEFAULT_TIMEOUT
    import_timeout: float | None = None  # seconds for importing the loss (None: timeout)
    # A loss that takes box lists: a conformance.encoding.box_targets.BoxTargets (None: the grid).
    targets: object = None

    def __post_init__(self):
        object.__setattr__(self, "framework", framework_named(self.framework))  # keras: tensorflow
        if self.arguments is None:
            object.__setattr__(self, "arguments", default_arguments(self.framework))

    def command(self, prefix: str = "yolov1-loss check") -> str:
        """``yolov1-loss check TARGET`` with the options that load and call the loss as these do
        (those that differ from the defaults), for a report to quote; ``prefix``: the words before
        TARGET ('yolov1-loss bench --impl': bench takes these options too)."""
        default = CheckOptions(self.target, arguments=default_arguments(self.framework))
        flags = {"layout": "--layout", "framework": "--framework", "dtype": "--dtype", "device": "--device",
                 "output": "--output", "grad": "--grad", "arguments": "--args", "S": "--S", "B": "--B", "C": "--C"}  # fmt: skip
        words = [prefix, self.target]
        stated = {"dtype"} if self.framework in COMPILERS else set()  # (JAX and TF users may not know which)
        words += [
            f"{flag} {getattr(self, name)}"
            for name, flag in flags.items()
            if getattr(self, name) != getattr(default, name) or name in stated
        ]
        return " ".join(words + (self.targets.options() if self.targets is not None else []))

    def call_options(self) -> dict:
        """How the loss is loaded and called: the keywords of ``loading.user_implementation``."""
        return dict(layout=self.layout, framework=self.framework, dtype=self.dtype, device=self.device,
                    output=self.output, grad=self.grad, arguments=self.arguments)  # fmt: skip

    @classmethod
    def from_strings(cls, target: str, *, overrides=(), **options) -> CheckOptions:
        """Options as a command line gives them (``overrides`` as KNOB=VALUE strings); raises
        ValueError naming the option that is wrong."""
        made = cls(target, overrides=tuple(parse_overrides(list(overrides)).items()), **options)
        choices = (
            ("layout", LAYOUTS),
            ("framework", FRAMEWORKS),
            ("dtype", DTYPES),
            ("dialect", ("auto", *dialect_names())),
            ("arguments", ARGUMENTS),
        )
        for name, allowed in choices:
            if getattr(made, name) not in allowed:
                raise ValueError(f"{name} {getattr(made, name)!r} is not one of {', '.join(allowed)}")
        if made.framework in COMPILERS and made.device != "cpu":
            raise ValueError(
                f"device {made.device!r}: --device places torch tensors; {made.framework} puts its own on its "
                "default device (a GPU where it has one)"
            )
        from yolov1_loss.conformance.grid_limits import check_bytes, machine_memory, too_large

        timeouts = {"timeout": made.timeout}
        if made.import_timeout is not None:  # (None: the import has timeout's)
            timeouts["import_timeout"] = made.import_timeout
        for name, seconds in timeouts.items():
            if not (isinstance(seconds, (int, float)) and seconds > 0 and math.isfinite(seconds)):
                raise ValueError(f"{name} must be a positive, finite number of seconds, got {seconds!r}")
        grid = LossSpec(made.S, made.B, made.C)
        problem = too_large("a check", check_bytes, grid, machine_memory(), "this machine's memory")
        if problem:
            raise ValueError(problem)
        if made.dialect != "auto":
            catalogue.by_name(made.dialect).spec(made.S, made.B, made.C, **dict(made.overrides))
        else:
            grid.replace(**dict(made.overrides))  # (each value as LossSpec takes it: no negative weight)
        return made


def _runs_elsewhere(pred, target, spec):
    raise RuntimeError("this loss runs in its worker process (Implementation.worker)")


def isolated(options: CheckOptions) -> Implementation:
    """The loss of ``options``, loaded in a child process that runs its every call.

    While the child loads it, the oracle's side of the identification is prepared here. Raises
    LoadError when it cannot be loaded (the message quotes why), WorkerDied when its process ends
    or hangs while loading. Close it with ``impl.worker.close()``.
    """
    try:
        worker = Worker(options, options.timeout, meanwhile=lambda: prepare(options.S, options.B, options.C))
    except LossRaised as err:
        raise LoadError(str(err)) from None
    o = options
    impl = Implementation(
        arguments=o.arguments,
        name=o.target,
        loss=_runs_elsewhere,
        framework=o.framework,
        dtype=o.dtype,
        layout=o.layout,
        grad=_runs_elsewhere if o.grad is not None else None,  # (only whether there is one matters here)
        device=o.device,
        repro=repro_of(o.target, o.call_options(), None),
        worker=worker,
    )
    return impl if o.targets is None else o.targets.attach(impl)


def in_process(options: CheckOptions) -> Implementation:
    """The loss of ``options``, loaded and called in this process (no isolation; LoadError when it
    cannot be loaded)."""
    impl = user_implementation(options.target, **options.call_options())
    return impl if options.targets is None else options.targets.attach(impl)


def _values_fn(impl: Implementation, S: int, B: int, C: int) -> Callable:
    """The implementation's total on canonical arrays, for identification: a scalar or one value
    per image, as the loss gives it (the shape it gave last is tried first)."""
    shapes = ["sum", "none"]

    def values(pred, target):
        for reduction in list(shapes):
            try:
                got = impl.evaluate(pred, target, LossSpec(S=S, B=B, C=C, reduction=reduction))
            except ImplementationError as err:
                if err.stage != "output" or reduction == shapes[-1]:
                    raise
                continue
            if reduction != shapes[0]:
                shapes.reverse()
            return got.values["total"]

    return values


def _grad_fn(impl: Implementation, S: int, B: int, C: int) -> Callable | None:
    """d total / d pred on canonical arrays, for identification; None without gradients."""
    if not impl.has_gradient:
        return None
    values = _values_fn(impl, S, B, C)

    def grad(pred, target):
        n_values = np.size(values(pred, target))  # a per-image loss gets one upstream weight per image
        reduction = "none" if n_values == len(pred) and n_values != 1 else "sum"
        spec = LossSpec(S=S, B=B, C=C, reduction=reduction)
        return impl.evaluate(pred, target, spec, grads="total").grads["total"]

    return grad


def _identify_values(S: int, B: int, C: int):
    """Identification from values alone, on the general probes only (hints try many variants)."""
    return lambda impl: identify(_values_fn(impl, S, B, C), S, B, C, per_term=False)


def settings_for(max_examples: int, seed: int | None) -> Settings:
    """The suite's ci settings with ``max_examples``; derandomized unless a seed is given."""
    return Settings(suite_settings(), max_examples=max_examples, derandomize=seed is None)


def resolve_dialect(impl: Implementation, options: CheckOptions, progress: Callable[[str], None] | None = None):
    """(the spec to hold ``impl`` to, the identification of its values), on ``options``' grid.

    The dialect is identified in any case (so a report can say what the loss looks like); under
    ``options.dialect='auto'`` the identified one is used (where no dialect reproduces the values,
    the closest: the one whose gradients the loss's are, :func:`conformance.dialects.blame.closest_by_gradient`,
    else the closest by values), else the named known dialect (a catalogue entry); ``options.overrides``
    go on top. ``progress(line)``: the loss's calls, numbered (:func:`calls`). Raises ValueError when
    the loss fails on every probe.
    """
    S, B, C, dialect, overrides = options.S, options.B, options.C, options.dialect, dict(options.overrides)
    identified = identify(
        _values_fn(impl, S, B, C), S, B, C, _grad_fn(impl, S, B, C), progress=calls(progress, "identifying the dialect")
    )
    if dialect != "auto":
        return catalogue.by_name(dialect).spec(S, B, C, **overrides), identified
    spec = identified.spec
    if not identified.matches:
        held = dataclasses.replace(impl, fixed_spec=spec)
        positive_sizes = probe_sets(S, B, C)[0]
        spec = (
            closest_by_gradient(held, positive_sizes, calls(progress, "finding the dialect of its gradients")) or spec
        )
    return spec.replace(**overrides), identified


class Steps:
    """A stage's numbered steps as progress lines, each with an estimate of the time left once a
    step has been timed; at most one line every ``every`` seconds (the first always)."""

    def __init__(
        self, progress: Callable[[str], None], every: float = 0.0, clock: Callable[[], float] = time.monotonic
    ):
        self.progress, self.every, self.clock = progress, every, clock
        self.started: float | None = None
        self.shown: float | None = None

    def __call__(self, k: int, total: int, line: str) -> None:
        """Step ``k`` (from 1) of ``total`` starts; ``line`` says what it is."""
        now = self.clock()
        if self.started is None or k == 1:
            self.started = now
        if self.shown is not None and now - self.shown < self.every:
            return
        self.shown = now
        left = f", about {seconds_words((now - self.started) / (k - 1) * (total - k + 1))} left" if k > 1 else ""
        self.progress(line + left)


def calls(progress: Callable[[str], None] | None, what: str) -> Callable[[int, int], None] | None:
    """A stage's ``progress(k, total)`` over the loss's calls as numbered lines: 'identifying the
    dialect: call 5 of 36 of the loss, about 12 s left' (at most one a second); None without
    ``progress``."""
    if progress is None:
        return None
    steps = Steps(progress, every=1.0)
    return lambda k, n: steps(k, n, f"{what}: call {k} of {n} of the loss")


def seconds_words(t: float) -> str:
    """A duration as a person says it: '8 s', '2 min 5 s'."""
    t = round(t)
    return f"{t} s" if t < 60 else f"{t // 60} min {t % 60} s"


def _fails_on(impl: Implementation, input_class: InputClass) -> str | None:
    """What ``impl`` does wrong on one example of ``input_class`` (raises, a value of the wrong
    shape, NaN or infinity where the oracle is finite), or None."""
    spec = impl.fixed_spec
    ex = build(input_class.recipe(spec)).rounded(impl.dtype)
    grads = "total" if impl.has_gradient else "none"
    try:
        got = impl.evaluate(ex.pred, ex.target, spec, grads=grads)
    except ImplementationError as err:
        return f"the loss raised in {err.stage}: {err.detail}"
    parts, expected = loss_and_grad(ex.pred, ex.target, spec)
    total, oracle_total = got.values["total"], np.asarray(parts.total)
    if not np.all(np.isfinite(total) | ~np.isfinite(oracle_total)):
        return f"the loss gives total {total} where the oracle gives {oracle_total}"
    if "total" in got.grads:
        bad = ~np.isfinite(got.grads["total"]) & np.isfinite(expected.total)
        if bad.any():
            n, i, j, k = map(int, np.argwhere(bad)[0])
            return f"its gradient is {got.grads['total'][n, i, j, k]} at image {n}, cell ({i}, {j}), channel {k}, where the oracle's is finite"
    return None


def _backward_error(impl: Implementation):
    """A failure report when backward raises on an ordinary batch (then on every input, as an
    in-place write does), else None."""
    if not impl.has_gradient:
        return None
    ex = build(Recipe(impl.fixed_spec, images=2, seed=0)).rounded(impl.dtype)
    try:
        impl.evaluate(ex.pred, ex.target, ex.spec, grads="total")
    except ImplementationError as err:
        if err.stage.startswith("backward") or err.stage == "gradient":
            first = next(name for name, prop in PROPERTIES.items() if prop.needs_gradient)
            return ImplementationRaised(
                first, f"{err.stage}: {err.detail}", stage=err.stage, implementation=impl, example=ex
            )
    return None


def _eager_only(impl: Implementation) -> list[InputFinding]:
    """A JAX or TensorFlow loss that raises compiled (jax.jit, tf.function: as its users run it)
    on an ordinary batch, though not eagerly: that finding, as a list; else []."""
    if impl.framework not in COMPILERS:
        return []
    ex = build(Recipe(impl.fixed_spec, images=2, seed=0)).rounded(impl.dtype)
    try:
        got = impl.evaluate(ex.pred, ex.target, ex.spec, grads="total" if impl.has_gradient else "none")
    except ImplementationError:  # (raising eagerly too: a finding of the input classes, or an error)
        return []
    if got.eager_only is None:
        return []
    return [InputFinding("an ordinary batch", False, f"{got.eager_only}; the properties judge its eager results")]


def _failing_classes(impl: Implementation, progress=lambda line: None) -> list[tuple[InputClass, str]]:
    """The input classes on whose example ``impl`` fails (:func:`_fails_on`), each with what it
    does wrong, in INPUT_CLASSES' order."""
    found = []
    for input_class in INPUT_CLASSES:
        progress(f"trying {input_class.words}")
        problem = _fails_on(impl, input_class)
        if problem:
            found.append((input_class, problem))
    return found


def _held_out(impl: Implementation) -> list[InputClass]:
    """The input classes left out of the properties before any is tried: for a loss that takes box
    lists, the grids no box list gives exactly."""
    return [] if impl.targets is None else [impl.targets.held_out]


def _left_out(excluded: list[InputClass]) -> Callable | None:
    if not excluded:
        return None
    return lambda example: any(c.contains(example) for c in excluded)


def run_check(
    impl: Implementation,
    options: CheckOptions,
    max_examples: int = 30,
    seed: int | None = None,
    progress: Callable[[str], None] = lambda line: None,
    strict: bool = False,
    accept_any: bool = False,
    draw: bool = False,
) -> CheckReport:
    """Identify ``impl``'s dialect (or take the one ``options`` name), then run every applicable property.

    It conforms when what it computes is the dialect named (``options.dialect``, a catalogue
    entry, with ``options.overrides``) or, under 'auto', a known dialect
    (:func:`conformance.dialects.verdict.judge`; ``accept_any``: any dialect with every term), and
    every property holds. The loss's failures on a class of input are findings about that class,
    which is then left out of the properties; the loss's process dying (``impl.worker``) ends the
    check with an error. ``options`` also give the report's command (:meth:`CheckOptions.command`).
    ``draw``: keep what the HTML page draws (``report.pictures``), computed while the loss runs.
    """
    report = CheckReport(impl.name, "error", strict=strict)
    _said_of_options(report, options)
    report.setup = dict(
        layout=impl.layout,
        framework=impl.framework,
        dtype=impl.dtype,
        device=impl.device,
        S=options.S,
        B=options.B,
        C=options.C,
        max_examples=max_examples,
        seed=seed,
    )
    report.gradient_checks = {name for name, prop in PROPERTIES.items() if prop.needs_gradient}
    try:
        _run(report, impl, options, settings_for(max_examples, seed), seed, progress)
        hold_to_dialect(report, accept_any)
        if draw:
            from yolov1_loss.conformance.reports.html.evidence import pictures

            progress("drawing the report's pictures")
            report.pictures = pictures(report, impl)
    except WorkerDied as err:
        report.error = str(err)
        report.verdict = "error"
    finally:
        if impl.worker is not None:
            report.warnings = {
                f"{category}: {message} (at {where})": count
                for (category, message, where), count in impl.worker.warnings.items()
            }
    return report


def _said_of_options(report: CheckReport, options: CheckOptions) -> None:
    """What the report says of ``options``: the command, the dialect named and the --set knobs."""
    report.command, report.overrides = options.command(), dict(options.overrides)
    report.named_dialect = None if options.dialect == "auto" else options.dialect


def _run(report: CheckReport, impl, options: CheckOptions, settings, seed, progress) -> None:
    try:
        report.spec, report.identified = resolve_dialect(impl, options, progress)
    except ValueError as err:
        report.error = str(err)
        report.hints = _hints(impl, options, progress, "under which it runs")
        return
    # (Wrong box options may also fit a dialect with a λ of 0, or one it fails on ordinary probes.)
    if not report.identified.matches or (impl.targets is not None and not report.identified.plausible):
        report.hints = _hints(impl, options, progress, "under which a dialect fits")
    spec = report.spec
    impl = dataclasses.replace(impl, fixed_spec=spec, repro=impl.repro.replace("spec=None", f"spec={spec!r}"))

    backward = _backward_error(impl)
    if backward is not None:  # judged on its values; one report for every gradient property
        impl = dataclasses.replace(impl, gradients=False)
    report.inputs += _eager_only(impl)
    excluded = _held_out(impl)
    for input_class, problem in _failing_classes(impl, progress):
        report.inputs.append(InputFinding(input_class.words, input_class.degenerate, problem))
        excluded.append(input_class)

    names = list(PROPERTIES)
    steps = Steps(progress)
    for k, name in enumerate(names, 1):
        steps(k, len(names), f"[{k}/{len(names)}] {name}")
        reason = PROPERTIES[name].applies(impl)
        if backward is not None and PROPERTIES[name].needs_gradient:
            if not report.failures or report.failures[0] is not backward:
                report.properties[name] = "failed"
                report.failures.insert(0, backward)
            else:
                report.properties[name] = f"not applicable: backward raises on every input (see {backward.property})"
            continue
        if reason:
            report.properties[name] = f"not applicable: {reason}"
            continue
        failure = _property_failure(report, impl, name, excluded, settings, seed)
        report.properties[name] = "passed" if failure is None else "failed"
        if failure is not None:
            report.failures.append(failure)
    if impl.targets is not None:  # the loss's own encoding, on boxes no grid holds
        from yolov1_loss.conformance.encoding.box_property import NAME, box_encoding_failure

        progress(f"{NAME}: the loss on boxes no grid holds")
        failure = box_encoding_failure(impl, spec)
        report.properties[NAME] = "passed" if failure is None else "failed"
        report.failures += [failure] if failure is not None else []
    report.left_out = [c.words for c in excluded]
    _blame(report, impl)
    findings = [f for f in report.inputs if report.strict or not f.degenerate]
    report.verdict = "conforms" if not report.failures and not findings else "differs"


def hold_to_dialect(report: CheckReport, accept_any: bool = False) -> None:
    """Join the verdict on what the loss computes (:func:`conformance.dialects.verdict.judge`, on
    ``report.identified``) to the report's: where the properties (or the vectors) pass, the loss
    still differs unless it computes the dialect named, or a known one (``accept_any``: any with
    every term)."""
    ident = report.identified
    report.accept_any = accept_any
    if ident is None or not ident.matches:
        report.dialect = None
    else:
        dialect = report.named_dialect or "auto"
        report.dialect = judge(ident, report.command, dialect, report.overrides, accept_any)
    if report.verdict == "conforms" and (report.dialect is None or not report.dialect.conforms):
        report.verdict = "differs"


def replay_check(impl: Implementation, options: CheckOptions, directory, progress, accept_any: bool = False):
    """Hold ``impl`` to the stored test vectors in ``directory`` of its dialect (identified, or the
    one ``options`` name) instead of the properties: a CheckReport whose verdict joins the
    dialect's (:func:`hold_to_dialect`)."""
    from yolov1_loss.conformance.vectors.replay import replay

    spec, identified = resolve_dialect(impl, options, progress)
    progress(f"replaying {directory}")
    report = replay(impl, directory, spec, identified)
    _said_of_options(report, options)
    hold_to_dialect(report, accept_any)
    return report


def options_hint(
    impl: Implementation,
    options: CheckOptions,
    prefix: str = "yolov1-loss check",
    progress: Callable[[int, int, str], None] | None = None,
) -> Hint | None:
    """The hint for the usual mistakes (another layout, the arguments swapped, another box format or class column:
    :func:`conformance.dialects.hints.hint`), or None; its command is ``options``' (with ``prefix``,
    :meth:`CheckOptions.command`) with the layout, argument order and box targets that fit. ``progress(k, total,
    flags)``: before the k-th alternative of ``total``."""
    return hint(
        impl, options.S, options.B, options.C, _identify_values(options.S, options.B, options.C),
        lambda variant: dataclasses.replace(
            options, layout=variant.layout, arguments=variant.arguments, targets=variant.targets
        ).command(prefix),
        progress,
    )  # fmt: skip


def _hints(impl: Implementation, options: CheckOptions, progress, under: str) -> list[Hint]:
    """The check's hint (:func:`options_hint`), as a list, its search in ``progress``'s lines."""
    steps = Steps(progress, every=1.0)
    what = "layout, argument order or box options" if impl.targets is not None else "layout or argument order"
    looking = f"looking for a {what} {under}"
    found = options_hint(impl, options, progress=lambda k, n, flags: steps(k, n, f"{looking}: {k} of {n}, {flags}"))
    return [found] if found else []


def _property_failure(report, impl, name, excluded, settings, seed):
    """The property's failure on inputs outside ``excluded``. Where the loss raises on an example
    of an input class, that is a finding about the class, which is left out from then on."""
    while True:
        failure = runner.find_failure(name, impl, settings=settings, seed=seed, skip=_left_out(excluded))
        if failure is None:
            return None
        failure.located()  # the search for the cell calls the loss: now, while its process runs
        named = classes_of(failure.example) if failure.example is not None else []
        new = [c for c in named if c not in excluded]
        if isinstance(failure, ImplementationRaised) and new:
            report.inputs.append(InputFinding(new[0].words, new[0].degenerate, failure.message))
            excluded.append(new[0])
            continue
        if named:  # say what kind of input it failed on, in words
            failure.message = f"on {named[0].words}, {failure.message}"
        return failure


def _blame(report: CheckReport, impl: Implementation) -> None:
    """When no dialect reproduces the values, or a property fails though the loss is held to the
    dialect its values match: where the loss parts from the oracle, in its structure
    (:func:`conformance.dialects.blame.locate`), on the report, and named in each failure that
    could not tell the part itself, where it fits the failure's cell
    (:func:`conformance.dialects.blame.part_shown`). (Held to another dialect than its values
    match, the knobs that differ say where.) Not where a hint says the loss fits a dialect in
    another layout or argument order: that is the answer."""
    identified = report.identified
    if identified.matches and (not report.failures or identified.spec != report.spec):
        return
    if report.hints:  # the likely cause: a blame under the layout checked would point elsewhere
        return
    report.blame = locate(impl, identified, closest=not identified.matches and report.named_dialect is None)
    for failure in report.failures:
        failure.blame(part_shown(report.blame, failure) if report.blame else None)


class CheckSession:
    """One user's loss, loaded once in its own process, with its dialect resolved once, for
    properties run one at a time (the pytest plugin's items share one)."""

    def __init__(self, options: CheckOptions, here: bool = False):
        """``here``: run the loss in this process (no isolation), as ``--in-process`` does."""
        self.options = options
        self._impl = in_process(options) if here else isolated(options)
        self._resolved = None
        self._excluded = None

    def resolved(self):
        """(the implementation held to its dialect, the identification)."""
        if self._resolved is None:
            spec, identified = resolve_dialect(self._impl, self.options)
            self._resolved = dataclasses.replace(self._impl, fixed_spec=spec), identified
        return self._resolved

    def dialect_problem(self) -> str | None:
        """Why what the loss computes does not conform (:func:`conformance.dialects.verdict.judge`:
        the dialect named, or a known one under 'auto'), in words; or None."""
        _, identified = self.resolved()
        if not identified.matches:
            return "; ".join([*identified.notes, *(term.line() for term in identified.terms if not term.matches)])
        o = self.options
        verdict = judge(identified, o.command(), o.dialect, dict(o.overrides))
        if verdict.conforms:
            return None
        return "\n".join([with_reason("the loss's dialect differs", verdict.reason), *verdict.lines()])

    def not_applicable(self, name: str) -> str | None:
        return PROPERTIES[name].applies(self.resolved()[0]) if name in PROPERTIES else None

    def find_failure(self, name: str):
        impl = self.resolved()[0]
        if impl.targets is not None:  # box lists: grids no box list gives are left out; box_encoding
            from yolov1_loss.conformance.encoding.box_property import NAME, box_encoding_failure

            if name == NAME:
                return box_encoding_failure(impl, impl.fixed_spec)
        failure = runner.find_failure(name, impl, skip=_left_out(self.excluded()))
        if failure is not None:
            failure.located()  # while the loss's process runs
        return failure

    def excluded(self) -> list[InputClass]:
        """The input classes the properties leave out, found once per session: the grids no box
        list gives, and the degenerate classes the loss fails on, as :func:`run_check` leaves them
        out (:func:`_failing_classes`). A non-degenerate class it fails on stays in: the properties
        fail there, as the check's verdict does."""
        if self._excluded is None:
            impl = self.resolved()[0]
            self._excluded = _held_out(impl) + [c for c, _ in _failing_classes(impl) if c.degenerate]
        return self._excluded

    def report(self, properties: dict, failures: list, draw: bool = False) -> CheckReport:
        """The report of the properties run in this session (name -> status, and their failures),
        held to the dialect as :func:`run_check`'s is; ``draw``: with what the HTML page draws."""
        impl, identified = self.resolved()
        report = CheckReport(impl.name, "differs" if failures else "conforms")
        _said_of_options(report, self.options)
        report.spec, report.identified = impl.fixed_spec, identified
        report.properties, report.failures = dict(properties), list(failures)
        hold_to_dialect(report)
        if draw:
            from yolov1_loss.conformance.reports.html.evidence import pictures

            report.pictures = pictures(report, impl)
        return report

    def close(self) -> None:
        if self._impl.worker is not None:
            self._impl.worker.close()

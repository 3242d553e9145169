"""A pytest plugin: the conformance suite inside a user's own test session.

    pytest --yolov1-impl=mypkg/losses.py:YoloLoss [--yolov1-dialect article] [--yolov1-layout boxes-first]

adds one test item per property (``test_conforms[values_match_oracle]`` …) and one for the
dialect (``test_dialect``), collected under the file that defines the loss, so that their IDs
(``mypkg/losses.py::test_conforms[chain_rule]``) can be passed back to pytest, selected with
``-k``, deselected, and marked expected to fail with ``--yolov1-xfail NAME``.

Registered through the ``pytest11`` entry point, so it is loaded in every pytest session of
the environment: until ``--yolov1-impl`` is given it imports nothing of the project (nor NumPy,
Hypothesis or torch) and registers no Hypothesis profile, so a project with modules of its own
named ``reference`` or ``conformance``, or profiles of its own, is untouched. Given it, the
suite's profiles (``--hypothesis-profile yolov1-dev``, see ``conformance.suite.profiles``) are
registered before Hypothesis reads that option.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pytest

SIZES = {"S": 7, "B": 2, "C": 20}


def pytest_addoption(parser) -> None:
    group = parser.getgroup("yolov1-loss", "YOLOv1 loss conformance (yolov1-loss)")
    group.addoption(
        "--yolov1-impl", metavar="IMPL", help="the loss to check: package.module:attr or path/to/file.py:attr"
    )
    group.addoption("--yolov1-dialect", default="auto", help="hold it to a preset (default: identify it)")
    group.addoption(
        "--yolov1-set",
        action="append",
        default=[],
        metavar="KNOB=VALUE",
        help="a knob on top of the dialect (repeatable)",
    )
    group.addoption("--yolov1-layout", default="classes-first", help="the loss's input layout (default classes-first)")
    group.addoption(
        "--yolov1-framework", default="torch", help="torch, numpy, jax, tensorflow or keras (default torch)"
    )
    group.addoption(
        "--yolov1-args",
        help="the order the loss takes its inputs in: pred,target (default) or target,pred (default for tensorflow)",
    )
    group.addoption(
        "--yolov1-grad", metavar="ATTR", help="numpy: a callable in the same module giving d total / d pred"
    )
    group.addoption("--yolov1-dtype", default="float32", help="float32 or float64 (default float32)")
    group.addoption("--yolov1-output", help="which item of a tuple or mapping is the total")
    group.addoption("--yolov1-device", default="cpu")
    for size, default in SIZES.items():
        group.addoption(f"--yolov1-{size}", type=int, default=default)
    group.addoption(
        "--yolov1-in-process",
        action="store_true",
        help="run the loss in this process, not a worker of its own (for a debugger; no isolation)",
    )
    group.addoption(
        "--yolov1-html",
        metavar="PATH",
        help="write the report of the properties run as one self-contained HTML page (as check --html; with -n 0)",
    )
    add_target_options(group)
    group.addoption(
        "--yolov1-xfail",
        action="append",
        default=[],
        metavar="NAME",
        help="mark a property (or 'dialect') as expected to fail",
    )


def add_target_options(group) -> None:
    """A loss that takes box lists: ``check --targets`` and its options, as --yolov1-targets etc."""
    group.addoption("--yolov1-targets", default="grid", help="grid (default), boxes or padded, as check --targets")
    group.addoption("--yolov1-box-format", default="cxcywh", help="cxcywh (default) or xyxy")
    group.addoption("--yolov1-class-column", default="first", help="first (default) or last")
    group.addoption("--yolov1-image-size", metavar="W,H", help="boxes in pixels of a W×H image")
    group.addoption("--yolov1-fill", type=float, default=-1.0, help="padded: the value of missing rows (default -1)")
    group.addoption("--yolov1-duplicates", default="any", help="any (default), first, last or larger")


def box_targets(config):
    """The BoxTargets of the --yolov1-targets options, or None for a loss that takes the grid."""
    from yolov1_loss.check_encoder import box_targets as from_arguments

    names = ("targets", "box_format", "class_column", "image_size", "fill", "duplicates")
    return from_arguments(argparse.Namespace(**{name: config.getoption(f"yolov1_{name}") for name in names}))


@pytest.hookimpl(tryfirst=True)  # before Hypothesis's plugin loads --hypothesis-profile
def pytest_configure(config) -> None:
    target = config.getoption("yolov1_impl")
    if not target:
        return
    from yolov1_loss.conformance.check import CheckOptions
    from yolov1_loss.conformance.suite import profiles  # noqa: F401 (registers the suite's yolov1-* profiles)

    option = config.getoption
    try:
        options = CheckOptions.from_strings(
            target,
            layout=option("yolov1_layout"),
            framework=option("yolov1_framework"),
            arguments=option("yolov1_args"),
            dtype=option("yolov1_dtype"),
            device=option("yolov1_device"),
            output=option("yolov1_output"),
            grad=option("yolov1_grad"),
            dialect=option("yolov1_dialect"),
            overrides=option("yolov1_set"),
            **{size: option(f"yolov1_{size}") for size in SIZES},
            targets=box_targets(config),
        )
        anchor = defining_file(target, config.rootpath)
        html = html_path(config)
    except ValueError as err:
        raise pytest.UsageError(f"yolov1-loss: {err}") from None
    suite = _Suite(options, anchor, option("yolov1_in_process"), html)
    config.pluginmanager.register(suite, "yolov1-loss-suite")
    if not any(anchor == Path(arg).resolve() or Path(arg).resolve() in anchor.parents for arg in _paths(config.args)):
        config.args.append(str(anchor))


def html_path(config) -> str | None:
    """The --yolov1-html page's path, found writable before the run (as ``check --html``'s is),
    or None; ValueError (one line) where it cannot be written, or where pytest-xdist's workers
    would each write a page of their own items (the last one's would stand for the run)."""
    from yolov1_loss.check import check_output_file

    path = config.getoption("yolov1_html")
    if path is None:
        return None
    if getattr(config.option, "numprocesses", None) or hasattr(config, "workerinput"):
        raise ValueError(
            f"--yolov1-html {path}: each pytest-xdist worker runs only some of the items; run with -n 0 for the page"
        )
    check_output_file("--yolov1-html", path)
    return path


def _paths(args):
    return [arg.split("::")[0] for arg in args]


def defining_file(target: str, rootdir: Path) -> Path:
    """The file that defines the loss named by ``target``, found without importing it."""
    module = target.rpartition(":")[0]
    if module.endswith(".py") or "/" in module or "\\" in module:
        path = Path(module).resolve()
        if not path.is_file():
            raise ValueError(f"--yolov1-impl {target!r}: no such file {module}")
        return path
    parts = module.split(".")
    for entry in [str(rootdir), *sys.path]:
        base = Path(entry or ".").resolve().joinpath(*parts)
        for candidate in (base.with_suffix(".py"), base / "__init__.py"):
            if candidate.is_file():
                return candidate
    raise ValueError(f"--yolov1-impl {target!r}: no file for module {module} on sys.path")


class _Suite:
    """Collects the conformance items under the loss's file, and holds the check's session."""

    def __init__(self, options, anchor: Path, in_process: bool, html: str | None = None):
        self.options = options
        self.anchor = anchor
        self.in_process = in_process
        self.html = html  # --yolov1-html: the page to write when the session ends
        self.properties: dict = {}  # name -> passed / failed / not applicable: why, as the items ran
        self.failures: list = []
        self._session = None

    def session(self):
        if self._session is None:
            from yolov1_loss.conformance.check import CheckSession

            self._session = CheckSession(self.options, here=self.in_process)
        return self._session

    def pytest_collect_file(self, file_path: Path, parent):
        if file_path.resolve() == self.anchor:
            return ConformanceFile.from_parent(parent, path=file_path, suite=self)
        return None

    def pytest_unconfigure(self, config):
        if self._session is not None:
            try:
                if self.html:
                    self.write_html()
            finally:
                self._session.close()

    def write_html(self) -> None:
        """The page of the properties run (``--yolov1-html``), drawn while the loss's process runs."""
        from yolov1_loss.conformance.reports.check_report import CheckReport
        from yolov1_loss.conformance.reports.html.page import write_html
        from yolov1_loss.conformance.user_loss.isolation import WorkerDied

        try:
            report = self._session.report(self.properties, self.failures, draw=True)
        except WorkerDied as err:
            report = CheckReport(self.options.target, "error", error=str(err))
        write_html(report, self.html)


class ConformanceFile(pytest.File):
    """The loss's file, as the parent of the conformance items."""

    def __init__(self, *, suite: _Suite, **kwargs):
        super().__init__(**kwargs)
        self.suite = suite

    def collect(self):
        from yolov1_loss.conformance.suite.properties import PROPERTIES

        xfail = set(self.config.getoption("yolov1_xfail"))
        yield DialectItem.from_parent(self, name="test_dialect", xfail="dialect" in xfail)
        box_encoding = ["box_encoding"] if self.suite.options.targets is not None else []  # (conformance.encoding)
        for name in [*PROPERTIES, *box_encoding]:
            yield PropertyItem.from_parent(self, name=f"test_conforms[{name}]", prop=name, xfail=name in xfail)


class _Item(pytest.Item):
    def __init__(self, *, xfail: bool, **kwargs):
        super().__init__(**kwargs)
        if xfail:
            self.add_marker(pytest.mark.xfail(strict=True))

    def reportinfo(self):
        return self.path, None, self.name

    def repr_failure(self, excinfo, style=None):
        from yolov1_loss.conformance.suite.failure import ConformanceFailure
        from yolov1_loss.conformance.user_loss.isolation import WorkerDied
        from yolov1_loss.conformance.user_loss.loading import LoadError

        if isinstance(excinfo.value, (ConformanceFailure, DialectMismatch, WorkerDied, LoadError)):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style)


class DialectMismatch(AssertionError):
    """test_dialect's failure: the loss's values do not match the dialect asked for."""


class DialectItem(_Item):
    """Under --yolov1-dialect auto, some dialect reproduces the loss's values; under a named one,
    that dialect does."""

    def runtest(self):
        problem = self.parent.suite.session().dialect_problem()
        if problem:
            raise DialectMismatch(problem)


class PropertyItem(_Item):
    def __init__(self, *, prop: str, **kwargs):
        super().__init__(**kwargs)
        self.prop = prop

    def runtest(self):
        session = self.parent.suite.session()
        suite = self.parent.suite
        reason = session.not_applicable(self.prop)
        if reason:
            suite.properties[self.prop] = f"not applicable: {reason}"
            pytest.skip(reason)
        failure = session.find_failure(self.prop)
        suite.properties[self.prop] = "passed" if failure is None else "failed"
        if failure is not None:
            suite.failures.append(failure)
            raise failure

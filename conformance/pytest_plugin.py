"""A pytest plugin: the conformance suite inside a user's own test session.

    pytest --yolov1-impl=mypkg.losses:YoloLoss [--yolov1-dialect article] [--yolov1-layout boxes-first]

adds one test item per property (``test_conforms[values_match_oracle]`` …) and one for the
dialect (``test_dialect``), which can be selected with ``-k``, deselected, and marked expected
to fail with ``--yolov1-xfail NAME``. Without ``--yolov1-impl`` the plugin does nothing.
Registered through the ``pytest11`` entry point, so installing the package is enough.
"""

from __future__ import annotations

from pathlib import Path

from reference import LAYOUTS, PRESETS

SUITE = Path(__file__).with_name("pytest_suite.py")


def pytest_addoption(parser) -> None:
    group = parser.getgroup("yolov1-loss", "YOLOv1 loss conformance (yolov1-loss)")
    group.addoption("--yolov1-impl", metavar="IMPL", help="the loss to check: package.module:attr or path/to/file.py:attr")
    group.addoption("--yolov1-dialect", default="auto", choices=["auto", *PRESETS], help="hold it to a preset (default: identify it)")
    group.addoption("--yolov1-set", action="append", default=[], metavar="KNOB=VALUE", help="a knob on top of the dialect (repeatable)")
    group.addoption("--yolov1-layout", default="classes-first", choices=LAYOUTS)
    group.addoption("--yolov1-framework", default="torch", choices=["torch", "numpy"])
    group.addoption("--yolov1-grad", metavar="ATTR", help="numpy: a callable in the same module giving d total / d pred")
    group.addoption("--yolov1-dtype", default="float32", choices=["float32", "float64"])
    group.addoption("--yolov1-output", help="which item of a tuple or mapping is the total")
    group.addoption("--yolov1-device", default="cpu")
    for size, default in (("S", 7), ("B", 2), ("C", 20)):
        group.addoption(f"--yolov1-{size}", type=int, default=default)
    group.addoption("--yolov1-xfail", action="append", default=[], metavar="NAME", help="mark a property (or 'dialect') as expected to fail")


def pytest_configure(config) -> None:
    if config.getoption("yolov1_impl"):
        config.args.append(str(SUITE))  # collected beside whatever else was asked for

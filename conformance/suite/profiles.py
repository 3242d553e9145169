"""Hypothesis settings profiles for the suite: ``yolov1-dev``, ``yolov1-ci`` and ``yolov1-thorough``.

Importing this module registers them, under names of their own (a project that defines a ``dev``
profile, or expects an error for one it does not define, is untouched). Only the project's own
suite (``-p yolov1_loss.conformance.suite.profiles`` in pyproject.toml) and a session that uses the
pytest plugin (``--yolov1-impl``) import it before Hypothesis reads ``--hypothesis-profile``; an
unrelated session never does. The suite's tests run under :func:`suite_settings`: the profile
named on the command line, or ``yolov1-ci`` when none of these is.

- ``yolov1-ci``: derandomized (the same examples on every run, so CI cannot flake), no deadline
  (the first torch call of a process is slow), no example database, one bug reported per test.
- ``yolov1-dev``: a quick look while editing: few examples, random, the local example database.
- ``yolov1-thorough``: ten times ``yolov1-ci``'s examples, random, to look further before a release.
"""

from __future__ import annotations

from hypothesis import HealthCheck, settings

CI_EXAMPLES = 30

_COMMON = {
    "deadline": None,
    "report_multiple_bugs": False,
    # Examples are built from a seed, so generation is cheap, but one evaluation of a
    # torch loss on a 9×9 grid of 4 images can pass Hypothesis's "too slow" threshold.
    "suppress_health_check": [HealthCheck.too_slow],
}

CI = "yolov1-ci"
PROFILES = {
    "yolov1-dev": dict(max_examples=10),
    CI: dict(max_examples=CI_EXAMPLES, derandomize=True, database=None, print_blob=False),
    "yolov1-thorough": dict(max_examples=10 * CI_EXAMPLES),
}
for _name, _options in PROFILES.items():
    settings.register_profile(_name, **_options, **_COMMON)


def suite_settings() -> settings:
    """The loaded profile if it is one of the suite's (chosen with --hypothesis-profile), else ``yolov1-ci``."""
    if settings.get_current_profile_name() in PROFILES:
        return settings.default
    return settings.get_profile(CI)

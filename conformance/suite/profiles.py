"""Hypothesis settings profiles for the suite: ``dev``, ``ci`` and ``thorough``.

Importing this module registers them. Pytest loads it early (``-p yolov1_loss.conformance.suite.profiles`` in
pyproject.toml), so ``--hypothesis-profile dev|ci|thorough`` works from any directory. The
suite's tests run under :func:`suite_settings`: the profile named on the command line, or
``ci`` when none is.

- ``ci``: derandomized (the same examples on every run, so CI cannot flake), no deadline (the
  first torch call of a process is slow), no example database, one bug reported per test.
- ``dev``: a quick look while editing: few examples, random, the local example database.
- ``thorough``: ten times ``ci``'s examples, random, to look further before a release.
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

settings.register_profile("ci", max_examples=CI_EXAMPLES, derandomize=True, database=None, print_blob=False, **_COMMON)
settings.register_profile("dev", max_examples=10, **_COMMON)
settings.register_profile("thorough", max_examples=10 * CI_EXAMPLES, **_COMMON)

PROFILES = ("dev", "ci", "thorough")


def suite_settings() -> settings:
    """The loaded profile if it is one of the suite's (chosen with --hypothesis-profile), else ``ci``."""
    if settings.get_current_profile_name() in PROFILES:
        return settings.default
    return settings.get_profile("ci")

"""pyproject.toml's lower bounds are versions the project was run with, as its comments list them."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"
BOUND = re.compile(r"^\s*([A-Za-z0-9_.-]+)\s*>=\s*([0-9][0-9.]*)\s*(;.*)?$")


def lower_bounds() -> dict[str, str]:
    """{distribution name: its lower bound}, Python's included, from every requirement list."""
    project = tomllib.loads(PYPROJECT.read_text())
    requirements = [*project["build-system"]["requires"], *project["project"]["dependencies"]]
    for extra in project["project"]["optional-dependencies"].values():
        requirements += extra
    bounds = {"python": project["project"]["requires-python"].removeprefix(">=")}
    for requirement in requirements:
        match = BOUND.match(requirement)
        assert match, f"{requirement!r} has no lower bound"
        bounds[match[1].lower()] = match[2]
    return bounds


def versions_run() -> str:
    """The comments of pyproject.toml, as one line of lower-case words."""
    comments = [line.strip().lstrip("#") for line in PYPROJECT.read_text().splitlines() if line.strip().startswith("#")]
    return " ".join(" ".join(comments).split()).lower()


def test_every_lower_bound_is_a_version_a_listed_run_used():
    listed = versions_run()
    for name, bound in lower_bounds().items():
        # the version itself, or its release series (Python 3.11 of 3.11.7)
        assert re.search(rf"(^|\s){re.escape(name)} {re.escape(bound)}([.+][0-9a-z.]*)?[\s,;)]", listed), (
            f"{name}>={bound}: no run of {name} {bound} is listed in pyproject.toml's comments"
        )

"""pyproject.toml's lower bounds are versions the project was run with, as its comments list them;
the README's set-up says what its main command leaves out."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"
README = PYPROJECT.with_name("README.md")
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


# What a feature the README shows needs beyond the package's requirements, and how to get it.
LEFT_OUT = {
    "bench --plot": ("matplotlib", "pip install -e '.[plot]'"),
    "pytest --yolov1-impl": ("pytest", "pip install pytest"),
    "check --framework jax": ("jax", "pip install -e '.[jax]'"),
    "check --framework tensorflow": ("tensorflow-cpu", "pip install -e '.[tensorflow]'"),
}


def test_the_readme_set_up_names_what_its_main_command_leaves_out():
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    required = {BOUND.match(requirement)[1].lower() for requirement in project["dependencies"]}
    text = README.read_text()
    set_up = text.split("## Set up and run", 1)[1].split("\n## ", 1)[0]
    for feature, (package, install) in LEFT_OUT.items():
        assert feature.split()[-1] in text, f"the README no longer shows {feature}"
        assert package not in required
        assert package in set_up and install in set_up, f"the set-up does not say that {feature} needs {package}"
    assert any(r.startswith("matplotlib") for r in project["optional-dependencies"]["plot"])

"""The pytest plugin: the conformance properties as test items in a user's own session, and a
plugin that, loaded in every session of the environment, leaves other projects alone.

Nested sessions run through pytester, in this process; the loss runs in the session's process
too (``--yolov1-in-process``) except where its own process is the point."""

from __future__ import annotations

import sys
import textwrap

import pytest
import torch

from yolov1_loss.cli import main
from yolov1_loss.conformance.suite.properties import PROPERTIES
from yolov1_loss.reference import LossSpec
from yolov1_loss.torch_impl import yolov1_loss


@pytest.fixture(scope="module", autouse=True)
def numba_loaded_before_nested_sessions():
    """Run the CPU kernel once before any nested session: numba imports the last of its modules
    on its first compile (or cache load), pytester forgets the modules first imported inside a
    nested session, and numba cannot import them twice in one process."""
    spec = LossSpec(S=1, B=1, C=1)
    yolov1_loss(torch.zeros(1, spec.pred_channels), torch.zeros(1, spec.target_channels), spec, path="fused")


CONFORMING = """
    from yolov1_loss.torch_impl import YoloV1Loss
    loss = YoloV1Loss(preset="motokimura")
"""


def user_loss(pytester, source: str, name: str = "losses"):
    return pytester.makepyfile(**{name: textwrap.dedent(source)})


def test_a_conforming_loss_passes_every_property_under_real_test_ids(pytester):
    user_loss(pytester, CONFORMING)
    result = pytester.runpytest("--yolov1-impl=losses.py:loss", "--hypothesis-profile", "yolov1-dev", "-v")
    # One item per property and one for the dialect, under the loss's own file; the one that
    # needs a loss honouring any spec is skipped with its reason.
    result.assert_outcomes(passed=len(PROPERTIES), skipped=1)
    result.stdout.fnmatch_lines(
        ["losses.py::test_dialect PASSED*", "losses.py::test_conforms?values_match_oracle? PASSED*"]
    )


def test_a_suite_profile_is_registered_before_hypothesis_reads_the_option(pytester):
    # A fresh interpreter: in this one the profiles were registered long ago.
    user_loss(pytester, CONFORMING)
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--yolov1-impl=losses.py:loss", "--hypothesis-profile", "yolov1-dev", "--collect-only"
    )
    assert result.ret == 0, result.stdout.str() + result.stderr.str()  # (else "Profile 'yolov1-dev' is not registered")
    result.stdout.fnmatch_lines([f"*{len(PROPERTIES) + 1} tests collected*"])


def test_an_item_id_can_be_passed_back_to_pytest(pytester):
    user_loss(pytester, CONFORMING)
    result = pytester.runpytest(
        "--yolov1-in-process", "--yolov1-impl=losses.py:loss", "losses.py::test_conforms[values_match_oracle]", "-v"
    )
    result.assert_outcomes(passed=1)


def test_a_module_target_is_collected_under_its_file(pytester):
    pytester.mkpydir("mypkg")
    (pytester.path / "mypkg" / "losses.py").write_text(textwrap.dedent(CONFORMING))
    pytester.syspathinsert()
    result = pytester.runpytest("--yolov1-in-process", "--yolov1-impl=mypkg.losses:loss", "-k", "dialect", "-v")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["mypkg/losses.py::test_dialect PASSED*"])


def test_a_wrong_loss_fails_with_the_report_not_a_dump(pytester):
    user_loss(
        pytester,
        """
        from yolov1_loss.conformance.mutants import MUTANTS
        from yolov1_loss.reference import LossSpec
        _loss = MUTANTS["class_loss_on_empty_cells"].loss_class(LossSpec.preset("article"))

        def loss(pred, target):
            return _loss(pred, target)
    """,
    )
    result = pytester.runpytest(
        "--yolov1-in-process",
        "--yolov1-impl=losses.py:loss",
        "--yolov1-dialect",
        "article",
        "-k",
        "values_match_oracle",
    )
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert "FAILED losses.py::test_conforms[values_match_oracle]" in out
    assert "component: cls" in out
    assert len(out.splitlines()) < 80, out  # the project's report, not Hypothesis's arrays


def test_a_loss_that_exits_fails_the_items_instead_of_ending_the_session(pytester):
    user_loss(
        pytester,
        """
        import os
        def loss(pred, target):
            os._exit(0)
    """,
    )
    result = pytester.runpytest("--yolov1-impl=losses.py:loss", "-k", "dialect or values_match_oracle")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(["*the loss's process exited with status 0 during forward*"])


def test_test_dialect_fails_when_the_loss_is_not_the_named_dialect(pytester):
    user_loss(pytester, CONFORMING)  # motokimura
    result = pytester.runpytest(
        "--yolov1-in-process", "--yolov1-impl=losses.py:loss", "--yolov1-dialect", "paper", "-k", "dialect"
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*the values match another dialect: motokimura;*"])


def test_items_can_be_selected_and_marked_expected_to_fail(pytester):
    user_loss(
        pytester,
        """
        from yolov1_loss.torch_impl import YoloV1Loss
        loss = YoloV1Loss(preset="paper")
    """,
    )
    result = pytester.runpytest(
        "--yolov1-in-process",
        "--yolov1-impl=losses.py:loss",
        "--yolov1-dialect",
        "article",
        "--yolov1-xfail",
        "values_match_oracle",
        "--yolov1-xfail",
        "dialect",
        "-k",
        "values_match_oracle or dialect",
    )
    result.assert_outcomes(xfailed=2)


def test_a_bad_option_is_a_usage_error(pytester):
    user_loss(pytester, CONFORMING)
    result = pytester.runpytest("--yolov1-in-process", "--yolov1-impl=losses.py:loss", "--yolov1-layout", "sideways")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*layout 'sideways' is not one of classes-first*"])


def test_without_the_option_the_plugin_adds_nothing(pytester):
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED


PROJECT = {
    "reference.py": "ANSWER = 42\n",
    "conformance/__init__.py": "",
    "conformance/rules.py": "def ok():\n    return True\n",
    "benchmarks/__init__.py": "",
    "benchmarks/speed.py": "FAST = True\n",
    # first, before anything imports them: the plugin, loaded but not used, has imported nothing
    "tests/test_a_nothing_loaded.py": textwrap.dedent("""
        import sys

        def test_the_unused_plugin_imported_nothing():
            assert not [name for name in ("numpy", "hypothesis", "torch", "yolov1_loss.reference") if name in sys.modules]
    """),
    "tests/test_b_no_profiles.py": textwrap.dedent("""
        import pytest

        # ("ci" is left out: Hypothesis registers one of its own)
        @pytest.mark.parametrize("name", ["dev", "thorough", "yolov1-dev", "yolov1-ci", "yolov1-thorough"])
        def test_the_unused_plugin_registered_no_profile(name):
            from hypothesis import settings  # (here: collecting this file must not import it)
            from hypothesis.errors import InvalidArgument

            with pytest.raises(InvalidArgument):
                settings.get_profile(name)
    """),
    "tests/test_own.py": textwrap.dedent("""
        import reference
        from benchmarks.speed import FAST
        from conformance.rules import ok

        def test_own_modules():
            assert reference.ANSWER == 42 and FAST and ok()
    """),
    "own_loss.py": textwrap.dedent("""
        import reference  # the user's own module of that name
        from yolov1_loss.torch_impl import YoloV1Loss
        assert reference.ANSWER == 42
        loss = YoloV1Loss(preset="paper")
    """),
}


def make_project(pytester):
    for name, text in PROJECT.items():
        path = pytester.path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_a_project_with_its_own_reference_conformance_and_benchmarks_is_untouched(pytester):
    # A fresh interpreter, as the user's own `python -m pytest` is: the plugin is loaded there
    # from its entry point, before the project's modules are imported.
    make_project(pytester)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "tests")
    result.assert_outcomes(passed=7)


def test_check_loads_a_loss_that_imports_the_users_own_reference(pytester, monkeypatch, capsys):
    make_project(pytester)
    monkeypatch.delitem(sys.modules, "reference", raising=False)
    assert main(["check", "own_loss.py:loss", "--max-examples", "3"]) == 0
    assert "verdict: CONFORMS" in capsys.readouterr().out


RAISES_ON_AN_EMPTY_BATCH = """
    from yolov1_loss.torch_impl import YoloV1Loss
    _loss = YoloV1Loss(preset="motokimura")

    def loss(pred, target):
        if pred.shape[0] == 0:
            raise ValueError("no images")
        return _loss(pred, target)
"""


def test_the_items_leave_out_a_degenerate_class_the_loss_fails_on_as_check_does(pytester):
    # check records the empty batch as a finding and leaves it out of the properties; the
    # items did not, and failed on it.
    user_loss(pytester, RAISES_ON_AN_EMPTY_BATCH)
    result = pytester.runpytest(
        "--yolov1-in-process", "--yolov1-impl=losses.py:loss", "-k", "values_match_oracle or chain_rule"
    )
    result.assert_outcomes(passed=2)


@pytest.mark.parametrize(
    ("page", "says"),
    [
        ("nowhere/page.html", "*--yolov1-html nowhere/page.html: no folder nowhere*"),
        (".", "*--yolov1-html .: a folder; give the path of a file*"),
    ],
)
def test_an_html_path_that_cannot_be_written_is_a_usage_error_before_the_run(pytester, page, says):
    user_loss(pytester, CONFORMING)
    result = pytester.runpytest("--yolov1-in-process", "--yolov1-impl=losses.py:loss", "--yolov1-html", page)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([says])
    assert "passed" not in result.stdout.str()


def test_an_html_page_under_xdist_workers_is_a_usage_error_naming_n_0(pytester):
    # Each worker would write a page of its own items, the last one's standing for the run.
    user_loss(pytester, CONFORMING)
    result = pytester.runpytest(
        "-p", "xdist", "-n", "2", "--yolov1-in-process", "--yolov1-impl=losses.py:loss", "--yolov1-html", "page.html"
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--yolov1-html page.html: each pytest-xdist worker*run with -n 0*"])
    assert not (pytester.path / "page.html").exists()

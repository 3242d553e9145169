"""The catalogue of known dialects (conformance/dialects/catalogue.json) and ``yolov1-loss dialects``.

The facts below are the shared loss spec's (its sections 3 and 8), written here by hand, never
read from the catalogue: an entry that drifts from its source's facts fails here."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import resources

import pytest

from yolov1_loss.conformance.dialects import catalogue
from yolov1_loss.reference import PRESETS, LossSpec
from yolov1_loss.reference.layouts import LAYOUTS

from .helpers import run

# Section 8's implementations: word knobs, the weights as they act (coord, obj, the empty cells'
# no-object term, the object cells' other predictors' no-object term, cls; each λ · loss_scale),
# the reduction, the layout and the S, B, C the code was written for.
PAPER_WEIGHTS = (5.0, 1.0, 0.5, 0.5, 1.0)
SECTION_8 = {
    "darknet": dict(
        knobs=dict(noobj_scope="predictor", iou_frame="image", wh_mode="sqrt_output", conf_target="iou"),
        responsible="max_iou_else_min_rmse",
        weights=tuple(w * 0.5 for w in PAPER_WEIGHTS),  # darknet applies the gradient of ½·loss (section 3)
        reduction="sum",
        layout="darknet",
        grid=dict(S=7, B=3, C=20),
    ),
    "ml_collection": dict(
        knobs=dict(noobj_scope="cell", iou_frame="raw", wh_mode="signed_sqrt", signed_sqrt_eps="inside"),
        conf_target="one",
        weights=(5.0, 1.0, 0.5, 0.0, 1.0),
        reduction="sum",
        layout="classes-first",
        grid=dict(S=7, B=2, C=20),
    ),
    "ml_collection_658a37d": dict(
        knobs=dict(noobj_scope="cell", iou_frame="raw", wh_mode="signed_sqrt", signed_sqrt_eps="inside"),
        conf_target="iou",
        iou_grad="through",
        weights=(5.0, 1.0, 0.5, 0.0, 1.0),
        reduction="sum",
        layout="classes-first",
        grid=dict(S=7, B=2, C=20),
    ),
    "article_notebook": dict(
        knobs=dict(noobj_scope="cell", iou_frame="raw", wh_mode="signed_sqrt", signed_sqrt_eps="outside"),
        conf_target="iou",
        iou_grad="through",
        weights=(5.0, 1.0, 0.5, 0.0, 1.0),
        reduction="sum",
        layout="classes-first",
        grid=dict(S=7, B=2, C=20),
    ),
    "motokimura": dict(
        knobs=dict(noobj_scope="cell", iou_frame="image", wh_mode="sqrt"),
        conf_target="iou",
        iou_grad="detached",
        weights=(5.0, 1.0, 0.5, 0.0, 1.0),
        reduction="mean",
        layout="boxes-first",
        grid=dict(S=7, B=2, C=20),
    ),
    "xiongzihua": dict(
        knobs=dict(iou_frame="image", wh_mode="sqrt"),
        conf_target="iou",
        iou_grad="detached",
        weights=(5.0, 2.0, 0.5, 1.0, 1.0),  # the object cells' other predictors pay weight 1
        reduction="mean",
        layout="boxes-first",
        grid=dict(S=14, B=2, C=20),
    ),
    "tanjeffreyz": dict(
        knobs=dict(noobj_scope="predictor", iou_frame="raw", wh_mode="signed_sqrt"),
        conf_target="one",
        weights=tuple(w / 64 for w in PAPER_WEIGHTS),  # a sum divided by a fixed 64
        reduction="sum",
        # section 8 says boxes as (c, x, y, w, h); the source (bbox_attr) puts the confidence last
        layout="classes-first-conf-last",
        grid=dict(S=7, B=2, C=20),
    ),
    "hizhangp": dict(
        knobs=dict(noobj_scope="predictor", iou_frame="image", wh_mode="sqrt_output"),
        conf_target="iou",
        iou_grad="through",
        weights=(5.0, 1.0, 1.0, 1.0, 2.0),
        reduction="mean",
        layout=None,  # labels (o, x, y, w, h, classes) in pixels: none of the project's layouts
        grid=dict(S=7, B=2, C=20),
    ),
}


def weights_as_they_act(spec: LossSpec) -> tuple[float, ...]:
    s = spec.loss_scale
    return tuple(
        s * w
        for w in (
            spec.lambda_coord,
            spec.lambda_obj,
            spec.lambda_noobj,
            spec.lambda_noobj * spec.noobj_object_factor,
            spec.lambda_class,
        )
    )


def test_the_catalogue_is_valid_json_and_every_entry_a_valid_spec_with_a_source():
    text = resources.files("yolov1_loss.conformance.dialects").joinpath("catalogue.json").read_text()
    raw = json.loads(text)["entries"]
    names = [r["name"] for r in raw]
    assert len(names) == len(set(names)) == len(catalogue.entries())
    for entry in catalogue.entries():
        assert entry.source and entry.known_for and entry.checked, entry.name
        assert entry.layout is None or entry.layout in LAYOUTS, entry.name
        assert set(entry.written_for) <= {"S", "B", "C"}, entry.name
        assert isinstance(entry.native_spec(), LossSpec)
        assert entry.spec(3, 1, 4).knobs() == entry.native_spec().knobs()  # a dialect on any grid


def test_every_preset_is_an_entry_with_the_presets_knobs():
    for name in PRESETS:
        entry = catalogue.by_name(name)
        assert entry.preset == name and entry.bug is None and entry.expressible
        assert entry.spec() == LossSpec.preset(name)


@pytest.mark.parametrize("name", list(SECTION_8))
def test_each_public_implementation_of_section_8_is_an_entry_with_its_facts(name):
    facts = SECTION_8[name]
    entry = catalogue.by_name(name)
    spec = entry.native_spec()
    for knob, value in facts["knobs"].items():
        assert getattr(spec, knob) == value, knob
    assert spec.conf_target == facts.get("conf_target", "iou")
    if spec.conf_target == "iou":
        assert spec.iou_grad == facts.get("iou_grad", "detached")
    assert spec.responsible == facts.get("responsible", "max_iou")
    assert weights_as_they_act(spec) == pytest.approx(facts["weights"], rel=1e-12)
    assert spec.reduction == facts["reduction"]
    assert entry.layout == facts["layout"]
    assert entry.written_for == facts["grid"]
    assert entry.source.count(",") >= 1 and "commit" in entry.source  # project, file, commit


def test_only_the_article_notebook_computes_a_bug_and_it_is_its_backward():
    assert [e.name for e in catalogue.entries() if e.bug] == ["article_notebook"]
    notebook = catalogue.by_name("article_notebook")
    assert "backward()" in notebook.bug and "in place" in notebook.bug
    assert notebook.spec() == LossSpec.preset("article")


def test_an_entry_the_knobs_cannot_express_is_never_computed_nor_nearest():
    hizhangp = catalogue.by_name("hizhangp")
    assert not hizhangp.expressible and "responsible" in hizhangp.not_expressible
    assert [e.name for e in catalogue.entries() if not e.expressible] == ["hizhangp"]
    spec = hizhangp.spec()
    assert catalogue.computing(spec) == ()
    assert catalogue.known(spec) is None
    assert catalogue.nearest(spec).name != "hizhangp"


def test_entries_computing_the_same_values_are_reported_together_the_one_without_a_bug_first():
    # Allowed, since a source's bug may lie outside its values (the notebook's backward raises),
    # but a group holds at most one entry without a bug (else one dialect is catalogued twice),
    # and it comes first: that is the entry a loss computing those values conforms to.
    assert catalogue.same_values() == [("article", "article_notebook")]
    for group in catalogue.same_values():
        without_bug = [name for name in group if catalogue.by_name(name).bug is None]
        assert len(without_bug) <= 1 and (not without_bug or group[0] == without_bug[0])
    article = LossSpec.preset("article", S=5, B=3, C=4)
    assert [e.name for e in catalogue.computing(article)] == ["article", "article_notebook"]
    assert catalogue.known(article).name == "article"


def test_an_entry_is_computed_by_its_weights_as_they_act_and_missed_one_weight_away():
    as_scaled = LossSpec.preset("paper", iou_frame="raw", wh_mode="signed_sqrt", conf_target="one").replace(
        lambda_coord=5 / 64, lambda_obj=1 / 64, lambda_noobj=0.5 / 64, lambda_class=1 / 64
    )
    assert [e.name for e in catalogue.computing(as_scaled)] == ["tanjeffreyz"]
    xiongzihua = catalogue.by_name("xiongzihua").native_spec()
    assert catalogue.known(xiongzihua).name == "xiongzihua"
    one_away = xiongzihua.replace(reduction="sum")
    assert catalogue.computing(one_away) == ()
    assert catalogue.differing(one_away, xiongzihua) == ["reduction"]
    assert catalogue.nearest(one_away).name == "xiongzihua"


def test_knobs_nothing_told_apart_are_left_out_of_the_comparison_the_eps_too():
    # ml_collection adds 1e-6 to the IoU's union; a loss whose probes could not tell iou_eps
    # (nor, under clamped_sqrt, sqrt_clamp_eps) computes it whatever value the fit left there.
    ml_collection = catalogue.by_name("ml_collection").spec(S=4, B=2, C=3)
    eps_open = ml_collection.replace(iou_eps=0.0)
    assert catalogue.differing(eps_open, ml_collection) == ["iou_eps"]
    assert "iou_eps" not in catalogue.values_key(eps_open, ignore=("iou_eps",))
    assert catalogue.differing(eps_open, ml_collection, ignore=("iou_eps",)) == []
    assert catalogue.known(eps_open, ignore=("iou_eps",)).name == "ml_collection"
    clamped = LossSpec(wh_mode="clamped_sqrt", sqrt_clamp_eps=1e-4)
    assert catalogue.values_key(clamped)["sqrt_clamp_eps"] == 1e-4
    assert "sqrt_clamp_eps" not in catalogue.values_key(clamped, ignore=("sqrt_clamp_eps",))
    assert catalogue.differing(clamped, clamped.replace(sqrt_clamp_eps=1e-6), ignore=("sqrt_clamp_eps",)) == []
    # A knob that matters only under another's value is left out with that one.
    assert "sqrt_clamp_eps" not in catalogue.values_key(clamped, ignore=("wh_mode",))


@pytest.mark.parametrize(
    "raw, words",
    [
        ({"knobs": {"iou_frame": "pixels"}}, "iou_frame"),
        ({"knobs": {"S": 14}}, "written_for holds S, B, C"),
        ({"written_for": {"S": 7, "reduction": "mean"}}, "written_for holds S, B, C"),
        ({"layout": "rows-first"}, "layout 'rows-first'"),
        ({"colour": "blue"}, "unknown field(s) colour"),
    ],
)
def test_a_broken_catalogue_entry_fails_loudly_naming_the_entry(raw, words):
    base = {"name": "broken", "source": "somewhere, loss.py, commit 0", "known_for": "nothing"}
    with pytest.raises(ValueError, match="catalogue entry 'broken'") as info:
        catalogue._entry({**base, **raw})
    assert words in str(info.value)


def test_the_command_lists_every_entry_on_one_line_with_its_bug():
    done = run("dialects")
    assert done.returncode == 0 and done.stderr == ""
    lines = done.stdout.splitlines()
    assert "yolov1-loss dialects NAME" in lines[0]
    listed = {line.strip().split(":")[0]: line for line in lines[1:]}
    assert list(listed) == [e.name for e in catalogue.entries()]
    assert [name for name, line in listed.items() if "BUG:" in line] == ["article_notebook"]
    assert "backward() raises" in listed["article_notebook"]
    assert "divided by the batch size" in listed["motokimura"]
    assert "(not expressible by the knobs)" in listed["hizhangp"]


def test_the_command_shows_one_entry_in_full():
    done = run("dialects", "motokimura")
    assert done.returncode == 0 and done.stderr == ""
    out = done.stdout
    assert out.startswith("motokimura: boxes-first layout")
    assert "preset: motokimura (--dialect motokimura)" in out
    assert "how it differs from preset 'paper':" in out
    assert "reduction='mean': the loss is divided by the number of images" in out
    assert "noobj_scope='cell': only empty cells pay the no-object term" in out
    assert "source: motokimura/yolo_v1_pytorch, loss.py, commit 2b4fe93" in out
    assert "to hold a loss to it: yolov1-loss check LOSS --layout boxes-first --dialect motokimura" in out
    assert "BUG" not in out


def test_an_entry_beside_the_presets_is_shown_with_its_grid_its_bug_or_why_the_knobs_miss_it():
    xiongzihua = run("dialects", "xiongzihua").stdout
    assert "lambda_obj=2.0" in xiongzihua and "written for: S=14, B=2, C=20" in xiongzihua
    pin = next(line for line in xiongzihua.splitlines() if line.startswith("to hold a loss to it:"))
    # --dialect takes any entry: the entry itself pins it, with nothing to set.
    assert pin.endswith("--layout boxes-first --S 14 --dialect xiongzihua"), pin
    notebook = run("dialects", "article_notebook").stdout
    assert "BUG: backward() raises" in notebook and "--args target,pred" in notebook
    hizhangp = run("dialects", "hizhangp").stdout
    assert "not expressible by the knobs: every predictor whose IoU equals" in hizhangp
    assert "to hold a loss to it" not in hizhangp


def test_an_unknown_name_is_one_line_listing_the_names_and_exit_2():
    done = run("dialects", "yolov9")
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.count("\n") == 1
    assert "no known dialect 'yolov9'" in done.stderr
    assert all(entry.name in done.stderr for entry in catalogue.entries())


def test_the_command_does_not_import_torch():
    # A fresh interpreter (this one has torch loaded by other tests): the listing must start fast.
    probe = (
        "import sys; from yolov1_loss.cli import main; main(['dialects', 'darknet']); sys.exit('torch' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("darknet:")

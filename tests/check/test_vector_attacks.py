"""Vector folders are untrusted both ways: ``vectors --out`` never writes through a link, and
``check --vectors`` reads nothing outside the folder, allocates nothing a header merely declares,
refuses an index too deep or too long, stops at the first unreadable vector, and calls a vector
with non-finite expected values corrupt (exit 2 naming the file), not the loss wrong.

Vectors here are written at S=2, B=1, C=1 (a few kB each) and replayed against the oracle itself,
in this process: the reading is the point, not the loss."""

from __future__ import annotations

import io
import json
import os
import shlex
import time
import zipfile

import numpy as np
import pytest

from yolov1_loss.conformance.inputs.example import Example
from yolov1_loss.conformance.suite.tolerances import comparable_cells
from yolov1_loss.conformance.user_loss.implementation import oracle
from yolov1_loss.conformance.vectors.read import (
    MAX_INDEX_BYTES,
    MAX_INDEX_DEPTH,
    MAX_VECTORS,
    Folder,
    read_index,
    read_vector,
)
from yolov1_loss.conformance.vectors.replay import replay
from yolov1_loss.conformance.vectors.write import MAX_FILE_BYTES, VectorError, array_names, write_vectors
from yolov1_loss.reference import LossSpec

from .helpers import run

SPEC = LossSpec.preset("paper", S=2, B=1, C=1)


@pytest.fixture
def folder(tmp_path):
    """A folder of the paper's vectors at S=2, B=1, C=1."""
    write_vectors(tmp_path / "vectors", {"paper": SPEC})
    return tmp_path / "vectors"


def index_of(folder):
    return json.loads((folder / "index.json").read_text())


def rewrite_index(folder, index):
    (folder / "index.json").write_text(json.dumps(index))


def replayed(folder, spec=SPEC):
    report = replay(oracle(), folder, spec)
    return report, report.exit_code


# --- writing ----------------------------------------------------------------------------------


def test_a_folder_that_holds_a_symbolic_link_is_refused_and_nothing_outside_is_written(tmp_path, folder):
    outside = tmp_path / "precious.txt"
    outside.write_text("keep me")
    (folder / "paper-random.npz").unlink()
    (folder / "paper-random.npz").symlink_to(outside)
    with pytest.raises(VectorError, match=r"holds a symbolic link \(paper-random.npz\)"):
        write_vectors(folder, {"paper": SPEC}, force=True)
    assert outside.read_text() == "keep me"


def test_a_hard_link_in_the_folder_is_replaced_not_written_through(tmp_path, folder):
    outside = tmp_path / "precious.txt"
    outside.write_text("keep me")
    (folder / "paper-random.npz").unlink()
    os.link(outside, folder / "paper-random.npz")
    write_vectors(folder, {"paper": SPEC}, force=True)
    assert outside.read_text() == "keep me"
    assert read_vector(Folder(folder), index_of(folder)["vectors"][0]).name == "paper-random"


@pytest.mark.parametrize(
    "where, message",
    [("a_file", "a_file: not a folder"), ("a_file/sub", "cannot be made or read (Not a directory)")],
)
def test_out_onto_a_file_or_an_unwritable_path_is_one_line(tmp_path, where, message):
    (tmp_path / "a_file").write_text("")
    result = run("vectors", "--out", tmp_path / where, "--preset", "paper")
    assert result.returncode == 2
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_a_grid_whose_vectors_exceed_the_file_cap_is_refused_with_the_bound_before_any_work(tmp_path):
    started = time.perf_counter()
    result = run("vectors", "--out", tmp_path / "big", "--S", "100000")
    assert result.returncode == 2
    assert "a vector at S=100000, B=2, C=20 needs about" in result.stderr
    # the bound from the arrays a vector holds: 2 images, pred and 5 gradients of 30 channels,
    # a target of 25, 8 bytes each: 2·8·S²·(6·30 + 25) + 8·(2·5 + 1) <= 64 MiB gives S <= 143
    assert "at B=2, C=20, S can be at most 143" in result.stderr
    assert not (tmp_path / "big").exists() and time.perf_counter() - started < 5


# --- reading ----------------------------------------------------------------------------------


def test_an_entry_through_a_linked_subfolder_is_refused(tmp_path, folder):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (folder / "paper-random.npz").rename(elsewhere / "x.npz")
    (folder / "sub").symlink_to(elsewhere)
    index = index_of(folder)
    index["vectors"][0]["file"] = "sub/x.npz"
    rewrite_index(folder, index)
    report, status = replayed(folder)
    assert status == 2
    assert report.error == f"{folder / 'sub'}: a symbolic link; vector files must be plain files inside {folder}"


def test_an_entry_in_a_real_subfolder_is_read(folder):
    (folder / "sub").mkdir()
    (folder / "paper-random.npz").rename(folder / "sub" / "x.npz")
    index = index_of(folder)
    index["vectors"][0]["file"] = "sub/x.npz"
    rewrite_index(folder, index)
    report, status = replayed(folder)
    assert status == 0, report.error


def npz_declaring(shapes: dict) -> bytes:
    """An .npz whose members hold .npy headers declaring ``shapes`` (float64) and no data."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, shape in shapes.items():
            member = io.BytesIO()
            np.lib.format.write_array_header_1_0(member, {"descr": "<f8", "fortran_order": False, "shape": shape})
            archive.writestr(f"{name}.npy", member.getvalue())
    return buffer.getvalue()


def test_an_npz_declaring_27_gib_is_refused_from_its_headers(folder):
    images = 27 * 2**30 // (8 * 2 * 2 * SPEC.pred_channels)  # pred alone declares 27 GiB
    pred = (images, 2, 2, SPEC.pred_channels)
    shapes = {name: pred for name in array_names() if name == "pred" or name.startswith("grad_")}
    shapes.update({"target": (images, 2, 2, SPEC.target_channels), "kink_margin": ()})
    shapes.update({name: () for name in array_names() if name not in shapes})
    (folder / "paper-random.npz").write_bytes(npz_declaring(shapes))
    entry = index_of(folder)["vectors"][0]
    with pytest.raises(VectorError, match=rf"its arrays declare \d+ bytes, more than the {MAX_FILE_BYTES}"):
        read_vector(Folder(folder), entry)


def test_an_array_of_another_shape_or_dtype_is_refused_from_its_header(folder):
    entry = index_of(folder)["vectors"][0]
    with np.load(folder / entry["file"]) as data:
        arrays = dict(data)
    np.savez(folder / entry["file"], **{**arrays, "target": arrays["target"][..., :-1]})
    with pytest.raises(VectorError, match="the array 'target' is declared"):
        read_vector(Folder(folder), entry)
    np.savez(folder / entry["file"], **{**arrays, "pred": arrays["pred"].astype(np.complex128)})
    with pytest.raises(VectorError, match="the array 'pred' holds complex128, not plain numbers"):
        read_vector(Folder(folder), entry)


def test_an_index_nested_200000_deep_is_refused_without_parsing_it(folder):
    (folder / "index.json").write_text("[" * 200_000 + "]" * 200_000)
    with pytest.raises(VectorError, match=f"nested more than {MAX_INDEX_DEPTH} deep"):
        read_index(Folder(folder))


def test_brackets_inside_strings_do_not_count_as_nesting(folder):
    index = index_of(folder)
    index["vectors"][0]["name"] = '[[[[[[[[[[ {{{{{{{{{{ \\" [[[['
    rewrite_index(folder, index)
    assert read_index(Folder(folder))[0]["name"] == index["vectors"][0]["name"]


def test_an_index_of_100000_entries_is_refused_at_once(folder):
    index = index_of(folder)
    index["vectors"] = index["vectors"][:1] * 100_000
    rewrite_index(folder, index)
    started = time.perf_counter()
    report, status = replayed(folder)
    assert status == 2 and f"bytes, more than the {MAX_INDEX_BYTES} an index may have" in report.error
    assert time.perf_counter() - started < 5


def test_an_index_of_more_vectors_than_the_cap_is_refused(folder):
    index = index_of(folder)
    index["vectors"] = [{"name": "v", "file": "v.npz", "S": 2, "B": 1, "C": 1, "knobs": {}}] * (MAX_VECTORS + 1)
    rewrite_index(folder, index)
    with pytest.raises(VectorError, match=f"lists {MAX_VECTORS + 1} vectors, more than the {MAX_VECTORS}"):
        read_index(Folder(folder))


def test_the_replay_stops_at_the_first_missing_file(folder):
    index = index_of(folder)
    first = dict(index["vectors"][0], file="missing.npz")
    index["vectors"] = [first] + index["vectors"] * (MAX_VECTORS // len(index["vectors"]) - 1)
    rewrite_index(folder, index)
    started = time.perf_counter()
    report, status = replayed(folder)
    assert status == 2 and report.error == f"{folder / 'missing.npz'}: No such file or directory"
    assert not report.properties  # nothing replayed
    assert time.perf_counter() - started < 5


@pytest.mark.parametrize("value", [np.nan, np.inf])
@pytest.mark.parametrize("array", ["total", "cls", "pred"])
def test_a_vector_with_non_finite_expected_values_is_corrupt_not_the_losses_fault(folder, array, value):
    entry = index_of(folder)["vectors"][0]
    path = folder / entry["file"]
    with np.load(path) as data:
        arrays = dict(data)
    arrays[array] = np.asarray(arrays[array], dtype=np.float64).copy()
    arrays[array].reshape(-1)[0] = value
    np.savez(path, **arrays)
    report, status = replayed(folder)
    assert status == 2 and report.verdict == "error"
    assert report.error.startswith(f"{path}: a corrupt vector: its {array}")


def test_a_non_finite_gradient_away_from_kinks_is_corrupt(folder):
    # (under sqrt, at a zero size, the oracle's own gradient is infinite: at a kink, never compared)
    entry = index_of(folder)["vectors"][0]
    path = folder / entry["file"]
    with np.load(path) as data:
        arrays = dict(data)
    compared = comparable_cells(Example(SPEC, arrays["pred"], arrays["target"]), "float64", project=False)
    n, i, j = (int(k) for k in np.argwhere(compared)[0])
    arrays["grad_total"][n, i, j, 0] = np.nan
    np.savez(path, **arrays)
    report, status = replayed(folder)
    assert status == 2
    assert report.error.startswith(f"{path}: a corrupt vector: its grad_total[{n}, {i}, {j}, 0] is nan")


# --- no vectors of the loss's dialect ----------------------------------------------------------


def test_no_vectors_of_the_dialect_prints_the_command_that_writes_them(tmp_path, folder):
    spec = SPEC.replace(wh_mode="linear", lambda_coord=0.1 + 0.2)  # (a float that must come back exactly)
    report, status = replayed(folder, spec)
    assert status == 2
    command = report.error.split("to write them: ")[1]
    out = tmp_path / "vectors-paper"
    assert command == (
        f"yolov1-loss vectors --out {out} --preset paper --set wh_mode=linear "
        "--set lambda_coord=0.30000000000000004 --S 2 --B 1 --C 1"
    )
    assert run(*shlex.split(command)[1:]).returncode == 0
    report, status = replayed(out, spec)
    assert status == 0, report.error


def test_a_file_over_the_cap_is_refused_before_it_is_read(folder):
    entry = index_of(folder)["vectors"][0]
    with open(folder / entry["file"], "ab") as file:
        file.truncate(MAX_FILE_BYTES + 1)
    with pytest.raises(VectorError, match=f"more than the {MAX_FILE_BYTES} a vector file may have"):
        read_vector(Folder(folder), entry)

"""Loading a user's loss from IMPL and reading the total from what it returns."""

from __future__ import annotations

import pytest
import torch

from benchmarks.user_loss import as_total_loss, load, total_of

MODULE = '''
import torch

def squared(pred, target):
    return ((pred - target) ** 2).sum()

class Module(torch.nn.Module):
    def forward(self, pred, target):
        return {"loss": squared(pred, target)}

NOT_CALLABLE = 3
'''


@pytest.fixture
def user_file(tmp_path):
    path = tmp_path / "user_loss_module.py"
    path.write_text(MODULE)
    return path


def test_a_function_in_a_file(user_file):
    fn = load(f"{user_file}:squared")
    assert fn(torch.ones(2), torch.zeros(2)).item() == 2.0


def test_a_class_is_built_with_no_arguments(user_file):
    fn = load(f"{user_file}:Module")
    assert isinstance(fn, torch.nn.Module)
    assert as_total_loss(fn)(torch.ones(3), torch.zeros(3)).item() == 3.0


def test_a_module_path():
    assert load("benchmarks.naive:naive_loss").__name__ == "naive_loss"


@pytest.mark.parametrize(
    "impl, message",
    [
        ("no_colon", "expected package.module:attr"),
        ("missing_file.py:f", "no such file"),
        ("{file}:absent", "has no attribute 'absent'"),
        ("{file}:NOT_CALLABLE", "NOT_CALLABLE is not callable"),
    ],
)
def test_bad_impl_strings_are_refused_clearly(user_file, impl, message):
    with pytest.raises(ValueError, match=message):
        load(impl.format(file=user_file))


def test_the_total_is_the_value_the_last_item_or_the_total_or_loss_key():
    total = torch.tensor(5.0)
    assert total_of(total) is total
    assert total_of((1, 2, total)) is total
    assert total_of({"coord": 1, "total": total}) is total
    assert total_of({"loss": total}) is total
    with pytest.raises(ValueError, match="without a 'total' or 'loss' key"):
        total_of({"coord": total})

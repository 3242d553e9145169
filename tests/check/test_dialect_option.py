"""``--dialect`` of check and bench: every catalogue entry is a choice; one the knobs cannot
express is refused while the options are read, with one line saying why (exit status 2)."""

from __future__ import annotations

import pytest

from yolov1_loss.cli import build_parser, main
from yolov1_loss.conformance.dialects import catalogue

INEXPRESSIBLE = [entry for entry in catalogue.entries() if not entry.expressible]
COMMANDS = {"check": ["check", "no_such_module:loss"], "bench": ["bench", "--impl", "no_such_module:loss"]}


@pytest.mark.parametrize("command", list(COMMANDS))
@pytest.mark.parametrize("entry", INEXPRESSIBLE, ids=lambda entry: entry.name)
def test_an_entry_the_knobs_cannot_express_is_refused_in_one_line_saying_why(command, entry, capsys):
    with pytest.raises(SystemExit) as exited:
        main([*COMMANDS[command], "--dialect", entry.name])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err == (
        f"yolov1-loss {command}: {entry.name} cannot be held to: {entry.not_expressible}; "
        f"yolov1-loss dialects {entry.name} says more\n"
    )


def test_the_catalogue_holds_an_entry_the_knobs_cannot_express():
    assert INEXPRESSIBLE  # (else the test above tests nothing)


@pytest.mark.parametrize("command", list(COMMANDS))
def test_every_entry_the_knobs_express_is_taken(command):
    parser = build_parser()
    for entry in catalogue.entries():
        if entry.expressible:
            assert parser.parse_args([*COMMANDS[command], "--dialect", entry.name]).dialect == entry.name

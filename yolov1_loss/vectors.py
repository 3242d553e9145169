"""``yolov1-loss vectors``: write language-neutral test vectors (see conformance.vectors.write)."""

from __future__ import annotations

import sys

from yolov1_loss.check import add_set_option
from yolov1_loss.reference import PRESETS, LossSpec


def add_parser(commands) -> None:
    parser = commands.add_parser(
        "vectors",
        help="write test vectors (npz + index.json) for checking implementations in any language",
        description="Write the oracle's values and gradients on the hard cases, for every preset "
        "(or those named, with any knob set on top), as .npz files with a JSON index. Replay them with "
        "`yolov1-loss check IMPL --vectors DIR`, or load them with numpy.load(allow_pickle=False).",
    )
    parser.add_argument("--out", required=True, help="folder to write (created if missing)")
    parser.add_argument(
        "--preset", action="append", choices=list(PRESETS), help="a preset to cover (repeatable; default: all)"
    )
    add_set_option(parser, "a knob or weight on top of every preset written (repeatable), e.g. --set lambda_coord=3")
    parser.add_argument("--force", action="store_true", help="overwrite the vectors of a folder that holds some")
    parser.add_argument("--S", type=int, default=7)
    parser.add_argument("--B", type=int, default=2)
    parser.add_argument("--C", type=int, default=20)
    parser.set_defaults(run=run)


def run(args) -> int:
    from yolov1_loss.conformance.check import parse_overrides
    from yolov1_loss.conformance.vectors.write import write_vectors

    presets = args.preset or list(PRESETS)
    try:
        overrides = parse_overrides(args.overrides)
        specs = {name: LossSpec.preset(name, S=args.S, B=args.B, C=args.C, **overrides) for name in presets}
        index = write_vectors(args.out, specs, force=args.force)
    except ValueError as err:  # a wrong --set, or a folder that holds vectors already
        print(f"yolov1-loss vectors: {err}", file=sys.stderr)
        return 2
    changed = "".join(f", {pair}" for pair in args.overrides)
    print(
        f"wrote {index} and the vectors it lists ({len(presets)} preset(s){changed}, S={args.S}, B={args.B}, C={args.C})"
    )
    return 0

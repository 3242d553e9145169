"""``yolov1-loss check-encoder ENCODER``: does an encoder (boxes → grid target) make the oracle's grid?"""

from __future__ import annotations

import sys

from yolov1_loss.reference import LAYOUTS
from yolov1_loss.reference.encode import BOX_FORMATS, DUPLICATES


def image_size(text: str) -> tuple[float, float]:
    """'640,480' → (640.0, 480.0): an image's width and height in pixels."""
    try:
        W, H = (float(v) for v in text.split(","))
    except ValueError:
        raise ValueError(f"--image-size {text!r}: expected W,H in pixels, e.g. 640,480") from None
    if not (W > 0 and H > 0):
        raise ValueError(f"--image-size {text!r}: width and height must be positive")
    return W, H


def add_box_options(parser) -> None:
    """``--box-format`` and ``--image-size``: how boxes are written (check-encoder, check --targets)."""
    parser.add_argument(
        "--box-format",
        choices=BOX_FORMATS,
        default="cxcywh",
        help="centre and size, or corners (default cxcywh)",
    )
    parser.add_argument(
        "--image-size", metavar="W,H", help="boxes in pixels of a W×H image (default: fractions of the image)"
    )


def add_duplicates_option(parser, whose: str) -> None:
    """``--duplicates``: which of several centres in one cell ``whose`` ('the loss', 'the encoder') must keep."""
    parser.add_argument(
        "--duplicates",
        choices=["any", *DUPLICATES],
        default="any",
        help=f"which box of several centres in one cell {whose} must keep (default any: the report says which)",
    )


def add_target_options(parser) -> None:
    """``check``'s options for a loss that takes box lists: ``--targets`` and how the boxes are written."""
    parser.add_argument(
        "--targets",
        choices=["grid", "boxes", "padded"],
        default="grid",
        help="what the loss takes as its target: the grid (default), a list of per-image (M_i, 5) box "
        "tensors, or one (N, M, 5) tensor padded with --fill",
    )
    add_box_options(parser)
    parser.add_argument(
        "--class-column",
        choices=["first", "last"],
        default="first",
        help="where a box row holds its class (default first)",
    )
    parser.add_argument(
        "--fill", type=float, default=-1.0, help="--targets padded: the value of missing rows (default -1)"
    )
    add_duplicates_option(parser, "the loss")


def box_targets(args):
    """The BoxTargets of parsed ``check`` arguments, or None for --targets grid (ValueError names a wrong option)."""
    from yolov1_loss.conformance.encoding.box_targets import BoxTargets

    if args.targets == "grid":
        return None
    size = image_size(args.image_size) if args.image_size else None
    return BoxTargets(args.targets, args.box_format, args.class_column, size, args.fill, args.duplicates)


def add_parser(commands) -> None:
    parser = commands.add_parser(
        "check-encoder",
        help="check an encoder (boxes and labels → grid target) against the oracle's",
        description="Load an encoder (package.module:attr or path/to/file.py:attr) in a process of its own, call "
        "it as encoder(boxes, labels) on one image's (M, 4) boxes and (M,) class labels (lists of them with "
        "--batch), and hold the grid it returns to the oracle's (docs/spec.md, 'Targets from boxes'). Exit "
        "status: 0 conforms, 1 differs, 2 could not be checked.",
    )
    parser.add_argument("encoder", metavar="ENCODER", help="package.module:attr or path/to/file.py:attr")
    parser.add_argument(
        "--layout", choices=LAYOUTS, default="classes-first", help="the grid's layout (default classes-first)"
    )
    parser.add_argument("--S", type=int, default=7, help="grid side (default 7)")
    parser.add_argument("--B", type=int, default=2, help="predictors per cell, for --layout boxes-first (default 2)")
    parser.add_argument("--C", type=int, default=20, help="classes (default 20)")
    add_box_options(parser)
    add_duplicates_option(parser, "the encoder")
    parser.add_argument("--batch", action="store_true", help="the encoder takes lists of images and returns a batch")
    parser.add_argument(
        "--framework", choices=["torch", "numpy"], default="torch", help="tensors or arrays (default torch)"
    )
    parser.add_argument(
        "--dtype", choices=["float32", "float64"], default="float32", help="the boxes' dtype (default float32)"
    )
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds one call may take (default 60)")
    parser.add_argument("--in-process", action="store_true", help="run the encoder in this process, not a worker")
    parser.set_defaults(run=run)


def run(args) -> int:
    from yolov1_loss.conformance.encoding.calling import EncoderCall
    from yolov1_loss.conformance.encoding.encoder_check import EncoderOptions, check_encoder

    try:
        if min(args.S, args.B, args.C) < 1:
            raise ValueError(f"S, B and C must be at least 1, got {args.S}, {args.B}, {args.C}")
        call = EncoderCall(args.S, args.B, args.C, args.layout, args.framework, args.dtype, args.batch)
        size = image_size(args.image_size) if args.image_size else None
        options = EncoderOptions(args.encoder, call, args.box_format, size, args.duplicates, args.timeout)
    except ValueError as err:
        print(f"yolov1-loss check-encoder: {err}", file=sys.stderr)
        return 2
    report = check_encoder(options, here=args.in_process)
    print("\n".join(report.lines()))
    return report.exit_status

"""``yolov1-loss check IMPL``: is a YOLOv1 loss right, which dialect is it, and where does it differ?"""

from __future__ import annotations

import sys

from yolov1_loss.reference import LAYOUTS, PRESETS, LossSpec


def add_parser(commands) -> None:
    parser = commands.add_parser(
        "check",
        help="check a YOLOv1 loss against the oracle, and name its dialect",
        description="Load a loss (package.module:attr or path/to/file.py:attr; a function, an "
        "nn.Module instance, or a class built with no arguments), call it as loss(pred, target), "
        "identify its dialect and run the conformance properties. Exit status: 0 conforms, "
        "1 differs, 2 could not be run.",
    )
    parser.add_argument("impl", metavar="IMPL", help="package.module:attr or path/to/file.py:attr")
    parser.add_argument("--layout", choices=LAYOUTS, default="classes-first", help="the loss's input layout (default classes-first)")
    parser.add_argument("--S", type=int, default=7, help="grid side (default 7)")
    parser.add_argument("--B", type=int, default=2, help="predictors per cell (default 2)")
    parser.add_argument("--C", type=int, default=20, help="classes (default 20)")
    parser.add_argument("--dialect", choices=["auto", *PRESETS], default="auto", help="hold it to a preset, or identify it (default auto)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KNOB=VALUE",
                        help="a knob or weight on top of the dialect (repeatable), e.g. --set lambda_coord=3")
    parser.add_argument("--output", help="which item of a tuple (index) or mapping (key) is the total (default: last item, or 'total'/'loss')")
    parser.add_argument("--framework", choices=["torch", "numpy"], default="torch", help="tensors or arrays (default torch)")
    parser.add_argument("--grad", metavar="ATTR", help="numpy: a callable in the same module giving d total / d pred")
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32", help="input dtype (default float32)")
    parser.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda (default cpu)")
    parser.add_argument("--max-examples", type=int, default=30, help="Hypothesis examples per property (default 30)")
    parser.add_argument("--seed", type=int, help="random seed (default: derandomized, the same examples every run)")
    parser.add_argument("--vectors", metavar="DIR", help="replay stored test vectors (yolov1-loss vectors) instead of the properties")
    parser.add_argument("--json", metavar="PATH", help="write the full report as JSON")
    parser.set_defaults(run=run)


def _progress(line: str) -> None:
    """One progress line on stderr: rewritten in place on a terminal, else a line each."""
    if sys.stderr.isatty():
        sys.stderr.write(f"\r\033[K{line} …")
    else:
        sys.stderr.write(f"{line} …\n")
    sys.stderr.flush()


def run(args) -> int:
    from yolov1_loss.conformance.check import CheckReport, parse_overrides, run_check, user_implementation, write_json
    from yolov1_loss.conformance.loading import LoadError

    try:
        overrides = parse_overrides(args.overrides)
        if args.dialect != "auto":
            LossSpec.preset(args.dialect, S=args.S, B=args.B, C=args.C, **overrides)  # validates early
    except ValueError as err:
        print(f"yolov1-loss check: {err}", file=sys.stderr)
        return 2
    try:
        impl = user_implementation(args.impl, layout=args.layout, framework=args.framework, dtype=args.dtype,
                                   device=args.device, output=args.output, grad=args.grad)
    except LoadError as err:
        report = CheckReport(args.impl, "error", error=str(err))
    else:
        if args.vectors:
            report = _replay(impl, args, overrides)
        else:
            report = run_check(impl, args.S, args.B, args.C, args.dialect, overrides,
                               args.max_examples, args.seed, progress=_progress)
    if sys.stderr.isatty():
        sys.stderr.write("\r\033[K")
    print(report.summary())
    if args.json:
        write_json(report, args.json)
    return report.exit_code


def _replay(impl, args, overrides):
    from yolov1_loss.conformance.check import CheckReport, replay_vectors, resolve_dialect

    _progress("identifying the dialect")
    try:
        spec, identified = resolve_dialect(impl, args.S, args.B, args.C, args.dialect, overrides)
    except ValueError as err:
        return CheckReport(args.impl, "error", error=str(err))
    _progress(f"replaying {args.vectors}")
    return replay_vectors(impl, args.vectors, spec, identified)

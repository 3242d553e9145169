"""``yolov1-loss check IMPL``: is a YOLOv1 loss right, which dialect is it, and where does it differ?"""

from __future__ import annotations

import argparse
import os
import sys

from yolov1_loss import check_encoder
from yolov1_loss.reference import LAYOUTS


def add_set_option(parser, help: str) -> None:
    """``--set KNOB=VALUE`` (repeatable, into ``args.overrides``), as check, vectors and bench take it."""
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KNOB=VALUE", help=help)


def add_loss_options(parser, dialect_help: str) -> None:
    """The options that say how to load and call a user's loss, and what dialect to hold it to
    (``check``, and ``vectors`` and ``bench`` where they take a loss)."""
    add_call_options(parser)
    parser.add_argument("--S", type=int, default=7, help="grid side (default 7)")
    parser.add_argument("--B", type=int, default=2, help="predictors per cell (default 2)")
    parser.add_argument("--C", type=int, default=20, help="classes (default 20)")
    add_dialect_option(parser, dialect_help)
    add_set_option(parser, "a knob or weight on top of the dialect (repeatable), e.g. --set lambda_coord=3")
    add_framework_option(parser)
    parser.add_argument("--grad", metavar="ATTR", help="numpy: a callable in the same module giving d total / d pred")
    parser.add_argument(
        "--dtype", choices=["float32", "float64"], default="float32", help="input dtype (default float32)"
    )
    parser.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda (default cpu)")
    add_timeout_options(parser)


def add_framework_option(parser) -> None:
    """``--framework``: what the loss is written in (check, bench)."""
    from yolov1_loss.conformance.user_loss.implementation import FRAMEWORK_ALIASES, FRAMEWORKS

    parser.add_argument(
        "--framework",
        choices=[*FRAMEWORKS, *FRAMEWORK_ALIASES],
        default="torch",
        help="what the loss is written in (default torch); jax and tensorflow (keras: a Keras loss) are "
        "also run compiled, under jax.jit and tf.function",
    )


def add_dialect_option(parser, help: str) -> None:
    """``--dialect NAME``: 'auto' or a catalogue entry (check, bench). An entry the knobs cannot
    express (``yolov1-loss dialects`` lists it) is refused while the options are read: one line
    saying why, exit status 2."""
    from yolov1_loss.conformance.dialects import catalogue

    names = ["auto", *(entry.name for entry in catalogue.entries())]
    parser.add_argument("--dialect", choices=names, default="auto", action=_ExpressibleDialect, help=help)


class _ExpressibleDialect(argparse.Action):
    """Stores a dialect's name, or exits (status 2, one line) for an entry no loss can be held to."""

    def __call__(self, parser, namespace, name, option_string=None):
        problem = unexpressible(name)
        if problem:
            parser.exit(2, f"{parser.prog}: {problem}\n")
        setattr(namespace, self.dest, name)


def unexpressible(name: str) -> str | None:
    """Why a loss cannot be held to the dialect ``name`` (a catalogue entry the knobs cannot
    express), in one line; None for 'auto' and every other entry."""
    from yolov1_loss.conformance.dialects import catalogue

    if name == "auto":
        return None
    entry = catalogue.by_name(name)
    if entry.expressible:
        return None
    return f"{name} cannot be held to: {entry.not_expressible}; yolov1-loss dialects {name} says more"


def add_call_options(parser) -> None:
    """``--layout``, ``--output`` and ``--args``: how a torch loss is called (check, bench)."""
    parser.add_argument(
        "--layout", choices=LAYOUTS, default="classes-first", help="the loss's input layout (default classes-first)"
    )
    parser.add_argument(
        "--output",
        help="which item of a tuple (index) or mapping (key) is the total (default: the total, "
        "the last item, the first of (total, dict), or 'total'/'loss')",
    )
    parser.add_argument(
        "--args",
        dest="arguments",
        choices=["pred,target", "target,pred"],
        help="the order the loss takes its inputs in (default pred,target; target,pred for tensorflow "
        "and keras, as Keras calls loss(y_true, y_pred))",
    )


def add_timeout_options(parser) -> None:
    """``--timeout`` and ``--import-timeout``: how long the loss's process may take (check, bench)."""
    parser.add_argument(
        "--timeout",
        type=float,
        default=60.0,
        help="seconds one call of the loss may take before it counts as hung (default 60)",
    )
    parser.add_argument(
        "--import-timeout",
        type=float,
        metavar="SECONDS",
        help="seconds importing the loss may take (default: the value of --timeout)",
    )


def add_parser(commands) -> None:
    parser = commands.add_parser(
        "check",
        help="check a YOLOv1 loss against the oracle, and name its dialect",
        description="Load a loss (package.module:attr or path/to/file.py:attr; a function, an "
        "nn.Module instance, or a class built with no arguments) in a process of its own, call it as "
        "loss(pred, target), identify its dialect and run the conformance properties. Exit status: "
        "0 conforms (it computes the dialect named, or a known one: yolov1-loss dialects, values and "
        "gradients), 1 differs (another dialect, a property fails, or it fails on ordinary input), "
        "2 could not be judged (the loss could not be loaded, failed on every probe, or its process "
        "died or hung).",
    )
    parser.add_argument("impl", metavar="IMPL", help="package.module:attr or path/to/file.py:attr")
    add_loss_options(parser, "hold it to a known dialect (yolov1-loss dialects), or identify it (default auto)")
    check_encoder.add_target_options(parser)
    parser.add_argument("--max-examples", type=int, default=30, help="Hypothesis examples per property (default 30)")
    parser.add_argument("--seed", type=int, help="random seed (default: derandomized, the same examples every run)")
    parser.add_argument(
        "--in-process",
        action="store_true",
        help="run the loss in this process, not a worker of its own: it starts faster and a debugger's "
        "breakpoints in the loss work, but a loss that exits, crashes or hangs takes the check with it",
    )
    parser.add_argument(
        "--strict",
        action="store_true",
        help="failures on degenerate inputs (an empty batch, zero-size boxes) count as differences, not warnings",
    )
    parser.add_argument(
        "--accept-any-dialect",
        action="store_true",
        help="with no --dialect, conform to any dialect the values match with every term, not only a known one "
        "(the lenient answer: a loss computing a classic bug then conforms)",
    )
    parser.add_argument(
        "--vectors", metavar="DIR", help="replay stored test vectors (yolov1-loss vectors) instead of the properties"
    )
    parser.add_argument(
        "--json",
        metavar="PATH",
        help="write the full report as JSON ('-': to standard output, the summary then to standard error)",
    )
    parser.add_argument(
        "--html",
        metavar="PATH",
        help="write the report as one self-contained HTML page: the failing examples' grids, and heatmaps of "
        "where the loss parts from the oracle, term by term (not with --vectors)",
    )
    parser.set_defaults(run=run)


def _progress(line: str) -> None:
    """One progress line on stderr: rewritten in place on a terminal, else a line each."""
    if sys.stderr.isatty():
        sys.stderr.write(f"\r\033[K{line} …")
    else:
        sys.stderr.write(f"{line} …\n")
    sys.stderr.flush()


def loss_options(args):
    """The CheckOptions of parsed arguments (ValueError names a wrong one)."""
    from yolov1_loss.conformance.check import CheckOptions

    return CheckOptions.from_strings(
        args.impl,
        layout=args.layout,
        framework=args.framework,
        dtype=args.dtype,
        device=args.device,
        output=args.output,
        grad=args.grad,
        dialect=args.dialect,
        overrides=args.overrides,
        arguments=args.arguments,
        S=args.S,
        B=args.B,
        C=args.C,
        timeout=args.timeout,
        import_timeout=args.import_timeout,
        targets=check_encoder.box_targets(args) if hasattr(args, "targets") else None,
    )


def run(args) -> int:
    from yolov1_loss.conformance.check import in_process, isolated, replay_check, run_check
    from yolov1_loss.conformance.reports.check_report import CheckReport, write_json
    from yolov1_loss.conformance.user_loss.isolation import WorkerDied
    from yolov1_loss.conformance.user_loss.loading import LoadError

    try:
        options = loss_options(args)
        if args.max_examples < 1:
            raise ValueError(f"--max-examples must be at least 1, got {args.max_examples}")
        if args.json != "-":
            check_output_file("--json", args.json)
        check_output_file("--html", args.html)
        if args.html is not None and args.vectors is not None:
            raise ValueError(
                "--html draws the properties' examples; it does not go with --vectors, which replays stored ones"
            )
        if args.vectors is not None and not os.path.isdir(args.vectors):
            raise ValueError(f"--vectors {args.vectors}: no such folder")
    except ValueError as err:
        print(f"yolov1-loss check: {err}", file=sys.stderr)
        return 2
    impl = None
    try:
        _progress("loading the loss" if args.in_process else "loading the loss in its own process")
        impl = in_process(options) if args.in_process else isolated(options)
        if args.vectors:
            report = replay_check(impl, options, args.vectors, _progress, accept_any=args.accept_any_dialect)
        else:
            report = run_check(
                impl,
                options,
                args.max_examples,
                args.seed,
                progress=_progress,
                strict=args.strict,
                accept_any=args.accept_any_dialect,
                draw=args.html is not None,
            )
    except (LoadError, WorkerDied, ValueError) as err:
        report = CheckReport(args.impl, "error", error=str(err))
    finally:
        if impl is not None and impl.worker is not None:
            impl.worker.close()
    if sys.stderr.isatty():
        sys.stderr.write("\r\033[K")
    print(report.summary(), file=sys.stderr if args.json == "-" else sys.stdout)
    from yolov1_loss.conformance.reports.html.page import write_html

    for option, path, write in (("--json", args.json, write_json), ("--html", args.html, write_html)):
        if not path:
            continue
        try:  # checked before the run; the disk may still refuse (full, gone, a special file)
            write(report, path)
        except OSError as err:
            print(f"yolov1-loss check: {option} {path}: not written: {err.strerror or err}", file=sys.stderr)
            return 2
        if option == "--html":
            print(f"the report's page: {path}", file=sys.stderr)
    return report.exit_code


def check_output_file(option: str, path: str | None) -> None:
    """Raise ValueError (one line naming ``option``) unless ``path`` (None: not given) can be
    written as a file: not a folder, in a folder that exists, writable. Tried by opening it for
    appending, without blocking (a FIFO with no reader is refused), and removed again if it was
    made, so that a command finds out before its work, not after."""
    if path is None:
        return
    if os.path.isdir(path):
        raise ValueError(f"{option} {path}: a folder; give the path of a file")
    folder = os.path.dirname(path) or "."
    if not os.path.isdir(folder):
        raise ValueError(f"{option} {path}: no folder {folder}")
    existed = os.path.lexists(path)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NONBLOCK, 0o666))
    except OSError as err:
        raise ValueError(f"{option} {path}: cannot be written ({err.strerror})") from None
    if not existed:
        os.unlink(path)

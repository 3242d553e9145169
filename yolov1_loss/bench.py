"""``yolov1-loss bench``: the project's loss paths (and yours) timed side by side, after an oracle check.

The harness lives in the ``benchmarks`` package; it imports torch (and matplotlib for --plot),
so it is imported only when bench runs and the other subcommands start without it.
"""

from __future__ import annotations

import importlib.util
import sys

from yolov1_loss.check import (
    add_call_options,
    add_dialect_option,
    add_framework_option,
    add_set_option,
    add_timeout_options,
)
from yolov1_loss.reference import PRESETS, LossSpec


def add_parser(commands) -> None:
    parser = commands.add_parser(
        "bench",
        help="time the loss paths side by side (and your loss, with --impl), each checked against the oracle first",
        description="Time the NumPy oracle, a naive baseline written as the widely copied code is, the autograd "
        "path, torch.compile of both, and the fused path (and your loss) over a sweep of batch sizes. Each is "
        "checked against the oracle before it is timed. Prints median times and ratios to the fastest.",
    )
    parser.add_argument(
        "--impl",
        help="your loss, as package.module:attr or path/to/file.py:attr (a function, an nn.Module, or a class "
        "built with no arguments), called as attr(pred, target) (as --layout, --args and --output say) and "
        "returning the total, a tuple whose last item is the total, or a mapping with 'total' or 'loss'; it runs "
        "in a process of its own, as check runs it, and is timed there",
    )
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", dest="grid", action="store_const", const="quick", help="N in {1, 64} only")
    size.add_argument(
        "--full",
        dest="grid",
        action="store_const",
        const="full",
        help="N up to 4096 (and 65536 on CUDA), S in {7, 14}, B in {2, 3}, float32 and bfloat16, forward, "
        "backward and both (long: torch.compile compiles each shape)",
    )
    size.add_argument(
        "--targets",
        dest="grid",
        action="store_const",
        const="targets",
        help="measure the fused path's performance targets (ml_collection dialect, one CPU thread) instead",
    )
    size.add_argument(
        "--verify-gpu",
        metavar="DIR",
        help="the one-command GPU verification (CUDA only, about 8 minutes): the CUDA tests, the CUDA targets "
        "and a short sweep, written to DIR/gpu-verify.json and DIR/gpu-verify.png",
    )
    parser.add_argument(
        "--baseline",
        metavar="DIR",
        help="with --targets on the CPU: a checkout of the commit the fused path's CPU target was set on "
        "(git worktree add DIR ee4f096), timed beside today's fused path in the same run",
    )
    parser.set_defaults(grid="default")
    parser.add_argument(
        "--preset",
        default="ml_collection",
        choices=list(PRESETS),
        help="the dialect every contender must compute (default ml_collection, the naive baseline's)",
    )
    add_dialect_option(
        parser,
        "the dialect --impl computes: a known dialect (yolov1-loss dialects), or auto (default): identified, "
        "as check does",
    )
    add_set_option(parser, "a knob or weight on top of --impl's dialect (repeatable)")
    add_call_options(parser)
    add_framework_option(parser)
    add_timeout_options(parser)
    parser.add_argument("--threads", type=int, default=1, help="torch threads on the CPU (default 1)")
    parser.add_argument("--no-compile", action="store_true", help="leave out the torch.compile contenders")
    parser.add_argument("--json", metavar="PATH", help="write every result, with the machine, as JSON")
    parser.add_argument("--plot", metavar="PATH", help="write a PNG of images per second against batch size")
    parser.set_defaults(run=run)


def usage_error(args) -> str | None:
    """Why the options cannot run on this machine, or None."""
    if args.threads < 1:
        return f"--threads must be >= 1, got {args.threads}"
    if args.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            return "--device cuda, but torch sees no CUDA device"
    if args.baseline is not None and (args.grid != "targets" or args.device != "cpu"):
        return "--baseline goes with --targets on the CPU (it is the CPU target's yardstick)"
    if args.plot and importlib.util.find_spec("matplotlib") is None:
        return "--plot needs matplotlib: pip install 'yolov1-loss[plot]' (or matplotlib)"
    from yolov1_loss.check import check_output_file

    try:
        check_output_file("--json", args.json)
        check_output_file("--plot", args.plot)
    except ValueError as err:
        return str(err)
    return None


class NotIdentified(Exception):
    """``--impl``'s dialect could not be identified (it failed on every probe, or no dialect fits
    its values' shape): the first cause, and a hint (another --layout or --args under which it
    runs and a dialect fits, with the command) or None."""

    def __init__(self, cause: str, hint):
        super().__init__(cause)
        self.cause, self.hint = cause, hint


def user_contender(args):
    """The user's loss (--impl), loaded in a worker process of its own as check loads it, and held
    to its dialect: identified (as check identifies it), or the one named, with --set on top.
    (the contender, its dialect in words and how it was chosen); NotIdentified where the loss
    cannot be identified, and a hint on standard output where no dialect reproduces its values."""
    from yolov1_loss.benchmarks.contenders import isolated_contender
    from yolov1_loss.conformance.check import CheckOptions, isolated, resolve_dialect
    from yolov1_loss.conformance.dialects.words import describe

    options = CheckOptions.from_strings(
        args.impl,
        layout=args.layout,
        output=args.output,
        arguments=args.arguments,
        framework=args.framework,
        dialect=args.dialect,
        overrides=args.overrides,
        timeout=args.timeout,
        import_timeout=args.import_timeout,
    )
    impl = isolated(options)
    try:
        try:
            spec, identified = resolve_dialect(impl, options)
        except ValueError as err:
            raise NotIdentified(first_cause(err), layout_hint(impl, options)) from None
        if options.dialect == "auto" and not identified.matches:
            found = layout_hint(impl, options)
            if found:
                print("\n".join(found.lines()), flush=True)
    except BaseException:
        impl.worker.close()
        raise
    named = options.dialect != "auto"
    if named:
        how = "named by --dialect"
    elif identified.matches:
        how = "identified from its values"
    else:
        how = "the closest: no dialect reproduces its values"
    if options.overrides:
        how += " and --set" if named else ", with --set"
    contender = isolated_contender(args.impl, impl.worker, spec.knobs(), options.framework)
    return contender, f"{describe(spec)} ({how})"


def first_cause(err: ValueError) -> str:
    """The first of the causes identification's error gives (fitting.IdentificationFailed: '…: on
    8 of the 18 probes (…), it raised …'), and how many there are; another error's message whole."""
    from yolov1_loss.conformance.dialects.fitting import IdentificationFailed

    if not isinstance(err, IdentificationFailed):
        return str(err)
    more = f" (the first of {len(err.causes)} causes; yolov1-loss check lists them all)" if len(err.causes) > 1 else ""
    return f"{err.head}: {err.causes[0]}{more}"


def layout_hint(impl, options):
    """check's hint (a conformance.dialects.hints.Hint): another --layout or --args under which
    the loss runs and a dialect fits, with the bench command that calls it so; None where none does."""
    from yolov1_loss.conformance.check import options_hint

    print(f"  looking for a --layout or --args under which {options.target} runs", file=sys.stderr, flush=True)
    return options_hint(impl, options, "yolov1-loss bench --impl")  # (check's options here are all bench's too)


def run_targets(args) -> int:
    from yolov1_loss.benchmarks.baseline import baseline_contender
    from yolov1_loss.benchmarks.targets import baseline_targets, cpu_targets, cuda_targets

    if args.device == "cuda":
        outcomes = cuda_targets()
    else:
        try:
            baseline = None if args.baseline is None else baseline_contender(args.baseline)
        except ValueError as err:
            print(f"yolov1-loss bench: --baseline {err}", file=sys.stderr)
            return 2
        outcomes = cpu_targets() + baseline_targets(baseline)
    print(
        f"Targets on {args.device}: S=7 B=2 C=20, float32, forward+backward, ml_collection dialect, CPU pinned to 1 thread"
    )
    for outcome in outcomes:
        print("  " + outcome.line())
    return 0


def write_outputs(args, results) -> None:
    from yolov1_loss.benchmarks import report
    from yolov1_loss.benchmarks.machine import machine_info

    if args.json:
        settings = {"preset": args.preset, "threads": args.threads, "grid": args.grid, "device": args.device}
        with open(args.json, "w") as out:
            out.write(report.to_json(results, machine_info(), settings))
    if args.plot:
        report.plot(results, args.plot)


def header(args, project: list[str], user_dialect: str | None) -> str:
    """What the sweep times: the dialect each row computes (the project's contenders --preset's,
    the user's loss its own), and where."""
    from yolov1_loss.conformance.user_loss.frameworks import COMPILERS
    from yolov1_loss.conformance.user_loss.implementation import framework_named

    where = f"{args.threads} CPU thread{'s' * (args.threads > 1)}" if args.device == "cpu" else "CUDA"
    own_pool = framework_named(args.framework) in COMPILERS  # (--threads sets torch's alone)
    if user_dialect is None:
        return (
            f"Every row computes dialect {args.preset} (--preset) and is checked against the oracle before "
            f"it is timed. Timed on {where}."
        )
    return "\n".join(
        [
            f"Rows {', '.join(project)} compute dialect {args.preset} (--preset).",
            f"Row {args.impl} computes its own dialect, {user_dialect}.",
            "Each row is checked against the oracle in its own dialect before it is timed. Every dialect does "
            "the same work on the same tensors (the knobs change a few element-wise operations), so the times "
            f"of rows in different dialects compare. Timed on {where}"
            + (f" (row {args.impl}: {framework_named(args.framework)}'s own thread pool)." if own_pool else "."),
        ]
    )


def run_sweep(args, chosen, user_dialect: str | None = None) -> int:
    """Time ``chosen``, the user's loss (if any) last; ``user_dialect``: its dialect in words, for the header."""
    from yolov1_loss.benchmarks import report, sweep
    from yolov1_loss.benchmarks.timing import pinned_threads

    grid = sweep.for_device(
        {"quick": sweep.QUICK, "default": sweep.DEFAULT, "full": sweep.FULL}[args.grid], args.device
    )
    project = [c.name for c in chosen if c.worker is None]
    print(header(args, project, user_dialect), flush=True)
    with pinned_threads(args.threads):
        results = sweep.run_sweep(
            chosen,
            grid,
            LossSpec.preset(args.preset),
            args.device,
            progress=lambda line: print(f"  timing {line}", file=sys.stderr, flush=True),
        )
    print(report.table(results))
    write_outputs(args, results)
    return 1 if any(r.fault for r in results) else 0


def run(args) -> int:
    """Exit status: 0, 1 when a contender raised or differs from the oracle, 2 for unusable options
    and for a user's loss that cannot be loaded or identified, or whose process dies or hangs."""
    problem = usage_error(args)
    if problem:
        print(f"yolov1-loss bench: {problem}", file=sys.stderr)
        return 2
    if args.verify_gpu:
        if args.device != "cuda":
            print("yolov1-loss bench: --verify-gpu needs --device cuda", file=sys.stderr)
            return 2
        from pathlib import Path

        from yolov1_loss.benchmarks import gpu_verify

        return 0 if gpu_verify.passed(gpu_verify.run(Path(args.verify_gpu), args.device)) else 1
    if args.grid == "targets":
        return run_targets(args)
    from yolov1_loss.benchmarks.contenders import project_contenders
    from yolov1_loss.conformance.user_loss.isolation import WorkerDied
    from yolov1_loss.conformance.user_loss.loading import LoadError

    chosen = list(project_contenders(None if args.no_compile else "inductor"))
    user_dialect = None
    try:
        if args.impl:
            try:
                contender, user_dialect = user_contender(args)
            except LoadError as err:
                print(f"yolov1-loss bench: cannot load --impl {args.impl}: {err}", file=sys.stderr)
                return 2
            except NotIdentified as err:
                print(f"yolov1-loss bench: --impl {args.impl}: {err.cause}", file=sys.stderr)
                if err.hint:
                    print("\n".join(err.hint.lines()), file=sys.stderr)
                return 2
            except ValueError as err:  # a wrong --set
                print(f"yolov1-loss bench: --impl {args.impl}: {err}", file=sys.stderr)
                return 2
            chosen.append(contender)
        return run_sweep(args, chosen, user_dialect)
    except WorkerDied as err:  # the loss's process exited, crashed, hung or wrote to the channel
        print(f"yolov1-loss bench: --impl {args.impl}: {err.what}", file=sys.stderr)
        return 2
    finally:
        for contender in chosen:
            if contender.worker is not None:
                contender.worker.close()

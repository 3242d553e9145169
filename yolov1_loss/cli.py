"""``yolov1-loss``: the project's command line. Each subcommand lives in its own module."""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from yolov1_loss import __version__, bench, check, check_encoder, dialects, explain, vectors


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="yolov1-loss",
        description="Check, explain and benchmark implementations of the YOLOv1 detection loss.",
    )
    parser.add_argument("--version", action="version", version=f"yolov1-loss {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    explain.add_parser(commands)
    bench.add_parser(commands)
    vectors.add_parser(commands)
    check.add_parser(commands)
    check_encoder.add_parser(commands)
    dialects.add_parser(commands)
    return parser


class Terminated(BaseException):
    """SIGTERM arrived (a CI job's timeout, say): raised where the command is, so that its
    cleanup runs (a loss's worker process and all it started are ended) before the exit."""


def _terminated(signum, frame):
    raise Terminated


def main(argv: list[str] | None = None) -> int:
    """Run a command: its exit status; 130 after Ctrl-C, 143 after SIGTERM, each with one line."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    main_thread = threading.current_thread() is threading.main_thread()  # signal handlers are set there only
    before = signal.signal(signal.SIGTERM, _terminated) if main_thread else None
    try:
        return args.run(args)
    except KeyboardInterrupt:
        print(f"yolov1-loss {args.command}: interrupted", file=sys.stderr)
        return 130
    except Terminated:
        print(f"yolov1-loss {args.command}: terminated (SIGTERM)", file=sys.stderr)
        return 143
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, before)


if __name__ == "__main__":
    sys.exit(main())

"""``yolov1-loss``: the project's command line. Each subcommand lives in its own module."""

from __future__ import annotations

import argparse
import sys

from yolov1_loss import __version__, bench, check, dialects, explain, vectors


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
    dialects.add_parser(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())

"""The `exwb` command line (also `python -m harness`).

Each subcommand lives in `harness.commands.<name>` with `add_parser` and `run`. Bad input ends
in one line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from harness import __version__
from harness.commands import (
    bench,
    clock,
    cycle,
    decommission,
    forward,
    generate,
    import_,
    logs,
    preflight,
    run,
    serve,
    status,
    verify,
)
from harness.core.errors import UsageError

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2

COMMANDS = (
    generate,
    import_,
    preflight,
    serve,
    cycle,
    verify,
    status,
    logs,
    clock,
    forward,
    decommission,
    run,
    bench,
)


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line naming the command and pointing at --help."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="exwb",
        description="Simulate and check Exchange hybrid writeback on a fake AD and EXO.",
    )
    parser.add_argument("--version", action="version", version=f"exwb-harness {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for command in COMMANDS:
        command.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    try:
        return int(args.run(args))
    except UsageError as e:
        print(f"exwb {args.command}: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"exwb {args.command}: interrupted", file=sys.stderr)
        return 130

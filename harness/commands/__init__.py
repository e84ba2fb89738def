"""Subcommands of `exwb`: each module has `add_parser(subparsers)`, which sets `run`."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from harness.core.errors import UsageError

if TYPE_CHECKING:
    from harness.core.endpoints import Endpoints

DEFAULT_STATE = Path("results/engine-state")
"""The engine's state directory when a command is not given --state-dir: the writeback's
watermark and logs, forward sync's logs and the decommission journal live together."""


def endpoints_argument(p: argparse.ArgumentParser) -> None:
    """The required --endpoints-file of a command that works against a running tenant."""
    p.add_argument(
        "--endpoints-file",
        type=Path,
        required=True,
        metavar="F",
        help="the endpoints JSON written by exwb serve",
    )


def read_endpoints(path: Path) -> Endpoints:
    """The endpoints file at `path`; a UsageError naming it when it cannot be read."""
    from harness.core.endpoints import Endpoints

    try:
        return Endpoints.read(path)
    except (OSError, ValueError, TypeError) as e:
        raise UsageError(f"--endpoints-file {path}: {e}") from None

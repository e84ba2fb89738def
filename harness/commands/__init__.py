"""Subcommands of `exwb`: each module has `add_parser(subparsers)`, which sets `run`."""

from pathlib import Path

DEFAULT_STATE = Path("results/engine-state")
"""The engine's state directory when a command is not given --state-dir: the writeback's
watermark and logs, forward sync's logs and the decommission journal live together."""

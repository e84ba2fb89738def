"""Subcommands of `exwb`: each module has `add_parser(subparsers)`, which sets `run`."""

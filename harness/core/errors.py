"""Errors every layer may raise to the command line."""

from __future__ import annotations


class UsageError(Exception):
    """Bad input from the user; printed as one line, exit 2."""

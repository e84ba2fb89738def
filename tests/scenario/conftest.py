"""Helpers for the scenario tests: write a scenario, run `exwb run` in-process."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from harness.cli import main


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "shipped: runs a scenario shipped in scenarios/ (deselect with -m 'not shipped')"
    )


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def exwb_run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """`exwb run ARGS` in this process: (exit code, stdout, stderr)."""
    code = main(["run", "--quiet", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def reports(results: Path) -> list[dict[str, Any]]:
    """Every report.json below `results`, in path order."""
    return [json.loads(p.read_text()) for p in sorted(results.rglob("report.json"))]

"""The dry-run preview's files: preview.json, preview.md, preview.csv and preview.html.

Each is written to a temporary name and renamed into place, so a reader never sees half a
file; the same preview gives the same bytes (nothing in them depends on the clock).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from harness.report.preview_csv import write_csv
from harness.report.preview_html import render_html
from harness.report.preview_md import render_markdown
from harness.report.text import jsonable

NAMES = ("preview.json", "preview.md", "preview.csv", "preview.html")


def write_preview(preview: Mapping[str, Any], folder: Path) -> dict[str, Path]:
    """Write the four files into `folder` (created); returns them by name."""
    folder.mkdir(parents=True, exist_ok=True)
    writers: dict[str, Callable[[Path], object]] = {
        "preview.json": lambda p: p.write_text(
            json.dumps(jsonable(preview), indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
        ),
        "preview.md": lambda p: p.write_text(render_markdown(preview), encoding="utf-8"),
        "preview.csv": lambda p: write_csv(preview, p),
        "preview.html": lambda p: p.write_text(render_html(preview), encoding="utf-8"),
    }
    out = {}
    for name in NAMES:
        path = folder / name
        tmp = folder / f".{name}.tmp"
        writers[name](tmp)
        os.replace(tmp, path)
        out[name] = path
    return out

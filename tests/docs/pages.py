"""The docs as tests read them: pages rendered by the MkDocs hook, and their fenced examples.

A fenced block tagged `sh`, `python` or `yaml` is an example a reader will run, so a test runs
it. HTML comments on the lines right above a fence say how:

    <!-- test: skip (why) -->         not run (the reason is required)
    <!-- test: serve ARGS -->         an `exwb serve ARGS --endpoints-file results/endpoints.json`
                                      is started (and awaited) before the block, stopped after
    <!-- test: expect REGEX -->       the block's output must match REGEX (re.MULTILINE)
    <!-- test: pytest -->             a Python block is a test module, run by pytest
"""

from __future__ import annotations

import importlib.util
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]
RUN = ("sh", "python", "yaml")  # the languages whose blocks are run
TEXT = ("text",)  # shown, never run: usage lines, output
FENCE = re.compile(r"^```([\w-]*)[^\n]*\n(.*?)^```\s*$", re.S | re.M)
DIRECTIVE = re.compile(r"^<!-- test: (\w+)(?: (.*?))? -->$")


@cache
def hooks() -> ModuleType:
    """docs/hooks.py, the MkDocs hook (not a package: loaded from its path)."""
    spec = importlib.util.spec_from_file_location("exwb_docs_hooks", ROOT / "docs" / "hooks.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def rendered(page: str, *tables: str) -> str:
    """A page of docs/ as the site shows it: its generated tables (or only `tables`) filled in."""
    only = frozenset(tables) if tables else None
    text: str = hooks().render((ROOT / "docs" / page).read_text(encoding="utf-8"), only)
    return text


def markdown_files() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


@dataclass(frozen=True)
class Example:
    path: Path
    line: int
    lang: str
    body: str
    directives: dict[str, str] = field(default_factory=dict)

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def examples(path: Path) -> list[Example]:
    text = path.read_text(encoding="utf-8")
    found = []
    for m in FENCE.finditer(text):
        before = text[: m.start()].splitlines()
        directives: dict[str, str] = {}
        while before and (d := DIRECTIVE.match(before[-1].strip())):
            directives[d.group(1)] = d.group(2) or ""
            before.pop()
        line = text.count("\n", 0, m.start()) + 1
        found.append(Example(path, line, m.group(1), m.group(2), directives))
    return found


def all_examples() -> list[Example]:
    return [e for path in markdown_files() for e in examples(path)]

"""docs/fake-ad.md lists every difference between AD and slapd that a test marker names, and names
the tests that meet it (see "Fake AD vs OpenLDAP slapd" there, docs/slapd-differences.yaml and
DIFFERENCES in tests/support/backends.py)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from tests.docs.pages import rendered
from tests.support.backends import DIFFERENCES

ROOT = Path(__file__).resolve().parents[2]
SECTION = "### Fake AD vs OpenLDAP slapd"
MARKERS = ("ad_only", "ad_differs")


def readme_rows() -> dict[str, str]:
    """difference -> the row's tests cell, from docs/fake-ad.md's differences table."""
    text = rendered("fake-ad.md", "slapd-differences")
    section = text[text.index(SECTION) :]
    section = section[: section.index("\n## ")]
    rows = {}
    for line in section.splitlines():
        if not line.startswith("| ") or line.startswith(("| difference ", "|---")):
            continue
        cells = [c.strip() for c in line.strip("|").split(" | ")]
        assert len(cells) == 4, line
        assert cells[0] not in rows, f"{cells[0]} listed twice"
        rows[cells[0]] = cells[3]
    return rows


def marked_tests() -> list[tuple[str, str, str]]:
    """(file, test function, difference) for every marker with a literal difference."""
    found = []
    for path in sorted((ROOT / "tests").rglob("test_*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.FunctionDef):
                continue
            for dec in node.decorator_list:
                if (
                    isinstance(dec, ast.Call)
                    and isinstance(dec.func, ast.Attribute)
                    and dec.func.attr in MARKERS
                    and dec.args
                    and isinstance(dec.args[0], ast.Constant)
                ):
                    found.append((path.name, node.name, dec.args[0].value))
    return found


def test_the_readme_lists_exactly_the_differences():
    assert set(readme_rows()) == set(DIFFERENCES)


def test_every_marked_test_is_named_on_its_row():
    rows = readme_rows()
    marked = marked_tests()
    assert len(marked) > 20  # the scan found the markers
    missing = [(f, t, d) for f, t, d in marked if f"`{t}`" not in rows[d]]
    assert missing == []


def test_every_test_the_readme_names_exists_and_every_difference_is_used():
    sources = "\n".join(
        p.read_text(encoding="utf-8") for p in sorted((ROOT / "tests").rglob("test_*.py"))
    )
    for difference, cell in readme_rows().items():
        names = re.findall(r"`(test_\w+)`", cell)
        assert names, difference
        for name in names:
            assert f"def {name}(" in sources, (difference, name)
        assert f'"{difference}"' in sources, f"no test names {difference!r}"

"""docs/fake-ad.md lists every difference between AD and slapd, and between the fake and Samba,
that a test marker names, and names the tests that meet it (see "Fake AD vs OpenLDAP slapd" and
"Fake AD vs Samba AD DC" there, docs/slapd-differences.yaml, docs/samba-differences.yaml and
DIFFERENCES / SAMBA_DIFFERENCES in tests/support/backends.py)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from tests.docs.pages import rendered
from tests.support.backends import DIFFERENCES, SAMBA_DIFFERENCES

ROOT = Path(__file__).resolve().parents[2]
SECTION = "### Fake AD vs OpenLDAP slapd"
SAMBA_SECTION = "### Fake AD vs Samba AD DC"
MARKERS = ("ad_only", "ad_differs")


def readme_rows(section_title: str = SECTION, columns: int = 4) -> dict[str, str]:
    """difference -> the row's tests cell (the last), from a differences table of fake-ad.md."""
    text = rendered("fake-ad.md", "slapd-differences", "samba-differences")
    section = text[text.index(section_title) + len(section_title) :]
    ends = [i for i in (section.find("\n## "), section.find("\n### ")) if i >= 0]
    section = section[: min(ends, default=len(section))]
    rows = {}
    for line in section.splitlines():
        if not line.startswith("| ") or line.startswith(("| difference ", "|---")):
            continue
        cells = [c.strip() for c in line.strip("|").split(" | ")]
        assert len(cells) == columns, line
        assert cells[0] not in rows, f"{cells[0]} listed twice"
        rows[cells[0]] = cells[-1]
    return rows


def samba_rows() -> dict[str, str]:
    return readme_rows(SAMBA_SECTION, 5)


def test_the_samba_table_lists_exactly_the_samba_differences():
    assert set(samba_rows()) == set(SAMBA_DIFFERENCES)


def test_every_samba_marked_test_is_named_on_its_row():
    rows = samba_rows()
    marked = marked_tests(("samba_differs",))
    assert marked  # the scan found the markers
    assert [(f, t, d) for f, t, d in marked if f"`{t}`" not in rows[d]] == []


def marked_tests(markers: tuple[str, ...] = MARKERS) -> list[tuple[str, str, str]]:
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
                    and dec.func.attr in markers
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

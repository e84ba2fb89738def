"""The docs site builds with `mkdocs build --strict`: a broken link, a missing page or a
generated table that cannot be made fails the default test run, not only CI's docs step."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.docs.pages import ROOT, hooks, rendered


def test_the_site_builds_strictly(tmp_path: Path) -> None:
    r = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert (tmp_path / "index.html").exists()
    assert (tmp_path / "architecture" / "index.html").exists()


def test_an_unknown_table_fails_the_build() -> None:
    with pytest.raises(hooks().GeneratorError, match="unknown generated table 'nope'"):
        hooks().render("text\n<!-- generated: nope -->\n")


def test_a_missing_generator_fails_the_build(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(hooks().MISSING_OK, raising=False)
    monkeypatch.setitem(hooks().EXTERNAL, "ldap-support", "harness.no_such_module:table")
    with pytest.raises(hooks().GeneratorError, match=r"cannot load harness\.no_such_module"):
        hooks().render("<!-- generated: ldap-support -->")


def test_generated_tables_come_from_the_code() -> None:
    cli = rendered("commands.md")
    for command in ("generate", "serve", "cycle", "verify", "status", "run", "decommission"):
        assert f"### `exwb {command}`" in cli
    assert "`--endpoints-file`" in cli
    assert "| `mailboxes` |" in rendered("tenant.md")
    assert "| `Set-Mailbox` | writes |" in rendered("fake-cloud.md").replace("\\|", "|")
    assert "| `Get-ExchangeServer` |" in rendered("decommission.md")


def test_the_readme_is_the_home_page_with_links_into_the_site() -> None:
    home = rendered("index.md")
    assert "](architecture.md)" in home and "](docs/" not in home
    assert "scenarios/README.md" in home  # outside the site: shown as its path, not a link


def test_the_readme_tables_are_the_codes() -> None:
    """README.md's generated tables (the extensions table) as the registry makes them now."""
    drifted = hooks().readme_drift()
    assert drifted == [], f"README.md tables {drifted} differ from the code: run {hooks().REWRITE}"


def test_a_readme_table_that_drifted_is_found_and_rewritten() -> None:
    readme = hooks().README.read_text(encoding="utf-8")
    stale = readme.replace("| **Mass-change guard**", "| **Mass-change guardrail**", 1)
    assert stale != readme and hooks().readme_drift(stale) == ["extensions"]
    assert hooks().fill_readme(stale) == readme
    home = rendered("index.md")
    assert "## Harness extensions and assumptions" in home
    assert "](engine.md#the-match-rule)" in home  # the table's links, into the site

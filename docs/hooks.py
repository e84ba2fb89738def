"""MkDocs hook: replace `<!-- generated: NAME -->` in a page with a table made from the code.

The tables a reader relies on (what the fakes implement, the CLI, the knobs, the steps) are made
from the code that implements them, so the docs cannot drift from it. A marker naming no known
table, or a generator that cannot be imported, fails the build: a missing table must never pass
`mkdocs build --strict` quietly. `EXWB_DOCS_MISSING_OK=1` turns a missing generator into a
visible placeholder for local builds of a branch that does not have it yet; CI never sets it.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

ROOT = Path(__file__).resolve().parent.parent
# Document this checkout, not whichever copy of the package the environment has installed.
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

MARKER = re.compile(r"<!-- generated: ([a-z0-9-]+) -->")
MISSING_OK = "EXWB_DOCS_MISSING_OK"
# README.md is read on GitHub too, where no hook runs, so its generated tables are written into
# it between these two comments; `python docs/hooks.py --write-readme` rewrites them and
# tests/docs/test_build.py fails when one has drifted from the code.
README = ROOT / "README.md"
REWRITE = "python docs/hooks.py --write-readme"
README_BLOCK = re.compile(
    r"(<!-- readme-table: ([a-z0-9-]+); made by `" + re.escape(REWRITE) + r"` -->\n)"
    r"(.*?)"
    r"(<!-- end readme-table: \2 -->)",
    re.S,
)

# Tables whose generator lives beside the code it describes: "module:function" -> Markdown.
EXTERNAL: dict[str, str] = {
    "ldap-support": "mockservers.directory.support:support_matrix_markdown",
    "graph-routes": "mockservers.cloud.routes:routes_markdown",
    "job-routes": "mockservers.cloud.routes:job_routes_markdown",
    "onprem-routes": "mockservers.onprem.routes:routes_markdown",
    "scenario-steps": "harness.scenario.registry:steps_markdown",
    "scenario-expectations": "harness.scenario.registry:expectations_markdown",
    "preflight-rules": "harness.preflight.rules:rules_markdown",
    "profile-keys": "harness.engine.rules:profile_keys_markdown",
    "extensions": "harness.core.extensions:extensions_markdown",
}


class GeneratorError(Exception):
    """A marker that cannot be filled: the build must fail."""


def cell(text: object) -> str:
    """One Markdown table cell: pipes escaped, whitespace folded onto one line."""
    return " ".join(str(text).split()).replace("|", "\\|")


def table(header: tuple[str, ...], rows: list[tuple[object, ...]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def code(text: str) -> str:
    return f"`{text}`"


# --- tables made here, from code that has no Markdown of its own -------------------------------


def cli_markdown() -> str:
    """Every `exwb` subcommand: its usage line, description and options (`build_parser()`).

    argparse has no public API for walking a parser, so this reads its `_actions`; a change
    there breaks the build loudly, never the page quietly.
    """
    from harness.cli import build_parser

    parser = build_parser()
    out: list[str] = []
    for action in parser._actions:
        if not isinstance(action, argparse._SubParsersAction):
            continue
        for name, sub in action.choices.items():
            sub.prog = f"exwb {name}"
            # A fixed width, so the page does not depend on the terminal that built it.
            fmt = sub.formatter_class(prog=sub.prog, width=96)
            fmt.add_usage(sub.usage, sub._actions, sub._mutually_exclusive_groups, prefix="")
            usage = fmt.format_help().strip()
            out += [f"### `exwb {name}`", "", "```text", usage, "```", ""]
            if sub.description:
                out += [" ".join(sub.description.split()), ""]
            rows: list[tuple[object, ...]] = []
            for opt in sub._actions:
                if isinstance(opt, argparse._HelpAction) or opt.help == argparse.SUPPRESS:
                    continue
                names = ", ".join(opt.option_strings) or (opt.metavar or opt.dest)
                helptext = fmt._expand_help(opt) if opt.help else ""
                rows.append((code(str(names)), helptext))
            if rows:
                out += [table(("option", "meaning"), rows), ""]
    return "\n".join(out).rstrip()


def knobs_markdown() -> str:
    """The tenant generator's knobs (`TenantSpec`), as `exwb generate --list-knobs` prints them."""
    from harness.tenant import TenantSpec

    rows: list[tuple[object, ...]] = []
    for name, (text, default) in TenantSpec.knob_help().items():
        shown = default if isinstance(default, str) and default else repr(default)
        rows.append((code(name), code(str(shown)), text))
    return table(("knob", "default", "meaning"), rows)


def exo_cmdlets_markdown() -> str:
    """The cmdlets the fake Exchange Online admin API answers, with the parameters it knows."""
    from mockservers.cloud.exo import _CMDLETS

    rows: list[tuple[object, ...]] = [
        (code(name), "writes" if writes else "reads", ", ".join(code(p) for p in params))
        for name, params, writes, _ in sorted(_CMDLETS.values())
    ]
    return table(("cmdlet", "kind", "parameters"), rows)


def ems_cmdlets_markdown() -> str:
    """The cmdlets of the emulated Exchange Management Shell (`harness/decommission/ems/`)."""
    import harness.decommission.ems  # noqa: F401  (registers every cmdlet module)
    from harness.decommission.ems.shell import _CMDLETS

    rows: list[tuple[object, ...]] = [
        (code(name), ", ".join(code(p) for p in params) or "none")
        for name, params, _ in sorted(_CMDLETS.values())
    ]
    return table(("cmdlet", "parameters"), rows)


BACKEND_MARKERS = ("ad_only", "ad_differs", "samba_differs", "fake_only")


def backend_markers(
    known: frozenset[str] = frozenset(), tests: Path = ROOT / "tests"
) -> list[tuple[str, str, str, str]]:
    """(marker, reason, file, test) for every backend marker on a test in `tests/`.

    A marker given a literal reason counts as written. One given a name (as in
    `pytest.param(..., marks=pytest.mark.ad_differs(difference))` over a module-level table)
    counts once for each `known` difference that table's module spells as a string.
    """
    found: list[tuple[str, str, str, str]] = []
    for path in sorted(tests.rglob("test_*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        rel = path.relative_to(ROOT).as_posix()
        spelled = [
            node.value
            for stmt in tree.body
            if isinstance(stmt, ast.Assign | ast.AnnAssign)
            for node in ast.walk(stmt)
            if isinstance(node, ast.Constant) and node.value in known
        ]
        for node in ast.walk(tree):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                continue
            for dec in node.decorator_list:
                for call in ast.walk(dec):
                    if not (
                        isinstance(call, ast.Call)
                        and isinstance(call.func, ast.Attribute)
                        and call.func.attr in BACKEND_MARKERS
                        and call.args
                    ):
                        continue
                    arg = call.args[0]
                    if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                        reasons = [arg.value]
                    else:
                        reasons = list(dict.fromkeys(spelled))
                    found += [(call.func.attr, r, rel, node.name) for r in reasons]
    return found


def _marked_differences(file_name: str, markers: tuple[str, ...]) -> tuple[dict, dict]:
    """The notes of `docs/<file_name>` and, for each difference, the tests whose `markers`
    name it; a marker naming a difference the file lacks, or a difference no test meets, is a
    GeneratorError."""
    import yaml

    notes: dict[str, dict[str, str]] = yaml.safe_load(
        (ROOT / "docs" / file_name).read_text(encoding="utf-8")
    )
    tests: dict[str, list[str]] = {}
    for marker, reason, _, test in backend_markers(frozenset(notes)):
        if marker not in markers:
            continue
        if reason not in notes:
            raise GeneratorError(f"{test}: difference {reason!r} is not in {file_name}")
        if test not in tests.setdefault(reason, []):
            tests[reason].append(test)
    unused = sorted(set(notes) - set(tests))
    if unused:
        raise GeneratorError(f"no test marks these differences: {', '.join(unused)}")
    return notes, tests


def slapd_differences_markdown() -> str:
    """Where the fake (AD) and slapd differ, with the tests that meet each difference.

    The two behaviours are prose in `docs/slapd-differences.yaml`; the tests come from the
    `ad_only` / `ad_differs` markers.
    """
    notes, tests = _marked_differences("slapd-differences.yaml", ("ad_only", "ad_differs"))
    rows: list[tuple[object, ...]] = [
        (name, note["ad"], note["slapd"], ", ".join(code(t) for t in tests[name]))
        for name, note in notes.items()
    ]
    return table(("difference", "AD (the fake)", "slapd", "tests"), rows)


AD_SIDES: Final = {
    "fake": "the fake's",
    "samba": "Samba's",
    "neither": "neither",
    "unconfirmed": "unconfirmed",
}


def samba_differences_markdown() -> str:
    """Where the fake and Samba differ, which side Windows AD takes and why, with the tests.

    The prose is in `docs/samba-differences.yaml`; the tests come from `samba_differs` markers.
    """
    notes, tests = _marked_differences("samba-differences.yaml", ("samba_differs",))
    rows: list[tuple[object, ...]] = []
    for name, note in notes.items():
        side = str(note["ad"]).split(" ", 1)[0].rstrip(":;,.")
        if side not in AD_SIDES:
            raise GeneratorError(f"{name}: ad must start with one of {', '.join(AD_SIDES)}")
        rows.append(
            (
                name,
                note["fake"],
                note["samba"],
                f"{AD_SIDES[side]}{note['ad'][len(side) :]}; {note['source']}",
                ", ".join(code(t) for t in tests[name]),
            )
        )
    return table(("difference", "the fake", "Samba", "Windows AD takes", "tests"), rows)


def fake_only_markdown() -> str:
    """The tests marked `fake_only` (they look inside the fake), with their reasons."""
    rows: list[tuple[object, ...]] = [
        (code(test), f"`{path}`", reason)
        for marker, reason, path, test in backend_markers()
        if marker == "fake_only"
    ]
    return table(("test", "file", "why"), rows)


LINK = re.compile(r"\[([^\]]+)\]\((?!https?:|#)([^)]+)\)")


def readme_markdown() -> str:
    """The README as the site's home page: links into docs/ made relative to it, links to files
    outside docs/ (which the site does not carry) shown as their path."""

    def relink(m: re.Match[str]) -> str:
        text, target = m.groups()
        if target.startswith("docs/"):
            return f"[{text}]({target.removeprefix('docs/')})"
        return text if text.strip("`") == target else f"{text} (`{target}`)"

    readme = fill_readme(README.read_text(encoding="utf-8"))
    return LINK.sub(relink, readme)


def fill_readme(text: str) -> str:
    """`text` (the README) with each readme-table block made afresh from the code."""

    def fill(m: re.Match[str]) -> str:
        return f"{m.group(1)}{generator(m.group(2))().strip()}\n{m.group(4)}"

    return README_BLOCK.sub(fill, text)


def readme_drift(text: str | None = None) -> list[str]:
    """The readme-table blocks of the README (or `text`) that differ from the code."""
    text = README.read_text(encoding="utf-8") if text is None else text
    return [
        m.group(2)
        for m in README_BLOCK.finditer(text)
        if m.group(3).strip() != generator(m.group(2))().strip()
    ]


LOCAL: dict[str, Callable[[], str]] = {
    "readme": readme_markdown,
    "cli": cli_markdown,
    "knobs": knobs_markdown,
    "exo-cmdlets": exo_cmdlets_markdown,
    "ems-cmdlets": ems_cmdlets_markdown,
    "slapd-differences": slapd_differences_markdown,
    "samba-differences": samba_differences_markdown,
    "fake-only-tests": fake_only_markdown,
}


def generator(name: str) -> Callable[[], str]:
    if name in LOCAL:
        return LOCAL[name]
    if name not in EXTERNAL:
        known = ", ".join(sorted([*LOCAL, *EXTERNAL]))
        raise GeneratorError(f"unknown generated table {name!r} (known: {known})")
    module, _, func = EXTERNAL[name].partition(":")
    try:
        fn: Callable[[], str] = getattr(importlib.import_module(module), func)
    except (ImportError, AttributeError) as e:
        if os.environ.get(MISSING_OK) == "1":
            return lambda: f"*(table `{name}` not generated: {EXTERNAL[name]} is missing)*"
        raise GeneratorError(f"table {name!r}: cannot load {EXTERNAL[name]}: {e}") from e
    return fn


def render(markdown: str, only: frozenset[str] | None = None) -> str:
    """The page with every marker (or those named in `only`) replaced by its table."""

    def fill(m: re.Match[str]) -> str:
        if only is not None and m.group(1) not in only:
            return m.group(0)
        return generator(m.group(1))().strip()

    return MARKER.sub(fill, markdown)


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    from mkdocs.exceptions import PluginError

    try:
        return render(markdown)
    except GeneratorError as e:
        raise PluginError(f"{page.file.src_path}: {e}") from e


def main(argv: list[str]) -> int:
    """``--write-readme``: rewrite the README's generated tables; ``--check-readme``: exit 1
    naming each one that drifted."""
    if argv == ["--write-readme"]:
        text = README.read_text(encoding="utf-8")
        filled = fill_readme(text)
        if filled != text:
            README.write_text(filled, encoding="utf-8")
        return 0
    if argv == ["--check-readme"]:
        drifted = readme_drift()
        for name in drifted:
            print(f"README.md: table {name!r} differs from the code; run {REWRITE}")
        return 1 if drifted else 0
    print("usage: python docs/hooks.py --write-readme | --check-readme", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

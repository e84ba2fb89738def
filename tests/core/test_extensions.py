"""The registry of harness extensions and assumptions names only controls that exist: each CLI
flag in `exwb`'s parsers, each setting as a dataclass field, each profile and scenario key in
its loader, each docs link's page and heading. The README's table is checked against the
registry in tests/docs/test_build.py."""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import re
from functools import cache
from pathlib import Path

import pytest
from markdown.extensions.toc import slugify

from harness.core.extensions import (
    EXTENSIONS,
    Control,
    Flag,
    ProfileKey,
    ScenarioKey,
    Setting,
    extensions_markdown,
)

ROOT = Path(__file__).resolve().parents[2]
PLACEHOLDER = re.compile(r"^[A-Z][A-Z/_]*$")  # a metavar such as N, FILE, RU/WRITES


@cache
def subcommands() -> dict[str, argparse.ArgumentParser]:
    from harness.cli import build_parser

    for action in build_parser()._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    raise AssertionError("exwb has no subcommands")


def problem(control: Control) -> str | None:
    """Why `control` does not exist as the registry names it, or None."""
    if isinstance(control, Flag):
        parser = subcommands().get(control.command)
        if parser is None:
            return f"no subcommand exwb {control.command}"
        action = next((a for a in parser._actions if control.option in a.option_strings), None)
        if action is None:
            return f"exwb {control.command} has no option {control.option}"
        value = control.value
        checkable = value and not PLACEHOLDER.match(value) and action.choices is not None
        if checkable and value not in action.choices:
            return f"exwb {control.command} {control.option} does not take {value!r}"
        if value and action.nargs == 0:
            return f"exwb {control.command} {control.option} takes no value"
        return None
    if isinstance(control, Setting):
        try:
            cls = getattr(importlib.import_module(control.module), control.cls)
        except (ImportError, AttributeError) as e:
            return f"{control.module}.{control.cls}: {e}"
        if not dataclasses.is_dataclass(cls):
            return f"{control.cls} is not a dataclass"
        if control.field not in {f.name for f in dataclasses.fields(cls)}:
            return f"{control.cls} has no field {control.field}"
        return None
    if isinstance(control, ProfileKey):
        from harness.engine.anchor import MatchRule
        from harness.engine.rules import PROFILE_KEYS

        if control.key not in PROFILE_KEYS:
            return f"profiles have no key {control.key}"
        if control.key == "match" and MatchRule.parse(control.value) is None:
            return f"{control.value!r} is not a match rule"
        return None
    if isinstance(control, ScenarioKey):
        from harness.scenario.loader import _ENGINE
        from harness.scenario.registry import STEPS

        section, _, name = control.path.partition(".")
        known = {"engine": set(_ENGINE), "step": set(STEPS)}.get(section)
        if known is None:
            return f"scenarios have no section {section}"
        return None if name in known else f"scenario {section} has no {name}"
    return f"unknown control {control!r}"


def headings(page: Path) -> set[str]:
    """The anchors MkDocs gives the page's headings (fenced blocks left out)."""
    text = re.sub(r"^```.*?^```", "", page.read_text(encoding="utf-8"), flags=re.S | re.M)
    return {slugify(m.group(1), "-") for m in re.finditer(r"^#+ (.+)$", text, re.M)}


CONTROLS = [(x.name, c) for x in EXTENSIONS for c in x.controls]


@pytest.mark.parametrize(("name", "control"), CONTROLS, ids=[f"{n}: {c}" for n, c in CONTROLS])
def test_every_control_exists(name: str, control: Control) -> None:
    assert problem(control) is None, f"{name}: {problem(control)}"


@pytest.mark.parametrize(
    "control",
    [
        Flag("cycle", "--no-such-flag"),
        Flag("nosuch", "--mode"),
        Flag("cycle", "--mode", "sideways"),
        Flag("cycle", "--allow-mass-change", "yes"),
        Setting("mockservers.directory.service", "Limits", "no_such_limit"),
        Setting("harness.engine.cycle", "NoSuchOptions", "window"),
        ProfileKey("matching"),
        ProfileKey("match", "immutableId"),
        ScenarioKey("engine.no_such_setting"),
        ScenarioKey("step.no_such_step"),
    ],
    ids=str,
)
def test_a_control_that_does_not_exist_is_found_out(control: Control) -> None:
    assert problem(control) is not None


def test_every_entry_links_to_a_heading_that_exists() -> None:
    for x in EXTENSIONS:
        page, _, anchor = x.docs.partition("#")
        path = ROOT / page
        assert path.is_file(), f"{x.name}: no {page}"
        assert anchor in headings(path), f"{x.name}: {page} has no heading #{anchor}"


def test_entries_are_named_once_and_say_what_they_do() -> None:
    names = [x.name.casefold() for x in EXTENSIONS]
    assert len(names) == len(set(names))
    for x in EXTENSIONS:
        assert x.what and x.sides, x.name


def test_the_table_has_a_row_per_entry() -> None:
    rows = extensions_markdown().splitlines()[2:]
    assert len(rows) == len(EXTENSIONS)
    mass = next(r for r in rows if r.startswith("| **Mass-change guard**"))
    assert "| off |" in mass and "`exwb cycle --mass-change-threshold N`" in mass
    assert any("`exwbExchange` Graph property" in r for r in rows)

"""The registry is the one list of step and expectation kinds: the loader accepts exactly its
kinds and each kind's declared keys, and the docs tables show every one of them."""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from harness.core.yamlnodes import names
from harness.scenario import ScenarioError, load_scenario, registry, run_scenario
from harness.scenario import model as m
from tests.scenario.conftest import write

HEAD = "name: kinds\ntenant: {mailboxes: 200, seed: 1}\n"
# Steps that let every expectation kind be written after them (log needs a cycle, and so on).
BEFORE = """\
steps:
  - cycle: {mode: delta, name: c}
  - forward:
  - decommission:
  - fault: {server: ldap, kind: busy, name: f}
"""


def _error(tmp_path: Path, text: str) -> str:
    with pytest.raises(ScenarioError) as info:
        load_scenario(write(tmp_path, "kinds", HEAD + text))
    return str(info.value)


def _subclasses(cls: type) -> set[type]:
    out = set()
    for sub in cls.__subclasses__():
        out |= {sub} | _subclasses(sub)
    return out


def _rows(table: str) -> dict[str, str]:
    """A generated table's rows by the kind in their first cell."""
    rows = {}
    for line in table.splitlines()[2:]:
        first = line.split("|")[1].strip()
        rows[first.strip("`")] = line
    return rows


def test_every_model_class_has_a_registry_entry() -> None:
    assert {c.kind for c in _subclasses(m.Step)} == set(registry.STEPS)
    assert {c.kind for c in _subclasses(m.Expectation)} == set(registry.EXPECTATIONS)
    assert all(k.model.kind == name for name, k in registry.STEPS.items())
    assert all(k.model.kind == name for name, k in registry.EXPECTATIONS.items())


@pytest.mark.parametrize(
    ("markdown", "kinds"),
    [
        (registry.steps_markdown, registry.STEPS),
        (registry.expectations_markdown, registry.EXPECTATIONS),
    ],
    ids=["steps", "expectations"],
)
def test_the_docs_table_shows_every_kind_and_its_keys(
    markdown: Callable[[], str], kinds: Mapping[str, registry.StepKind | registry.ExpectationKind]
) -> None:
    rows = _rows(markdown())
    assert list(rows) == list(kinds)
    for name, kind in kinds.items():
        assert kind.description in rows[name]
        for field in kind.fields:
            assert f"`{field.name}` ({field.type}" in rows[name], (name, field.name)
            if field.required:
                assert f"`{field.name}` ({field.type}, required)" in rows[name]
            elif field.default is not None:
                assert f"`{field.name}` ({field.type}, default `{field.default}`)" in rows[name]


def test_the_loader_accepts_exactly_the_registered_step_kinds(tmp_path: Path) -> None:
    for name in registry.STEPS:
        message = _error(tmp_path, f"steps:\n  - {name}: [not, a, body]\n")
        assert "step kind" not in message, message
    message = _error(tmp_path, "steps:\n  - zzzz: {}\n")
    assert message.endswith(
        f":4: unknown a step kind 'zzzz' (hint: one of {names(registry.STEPS)})"
    ), message


def test_the_loader_accepts_exactly_the_registered_expectation_kinds(tmp_path: Path) -> None:
    for name in registry.EXPECTATIONS:
        message = _error(tmp_path, BEFORE + f"  - expect:\n      - {name}: [not, a, body]\n")
        assert "expectation kind" not in message, message
    message = _error(tmp_path, BEFORE + "  - expect:\n      - zzzz: true\n")
    assert message.endswith(
        f":9: unknown expectation kind 'zzzz' (hint: one of {names(registry.EXPECTATIONS)})"
    ), message


def _bodies() -> list[tuple[str, str, registry.StepKind | registry.ExpectationKind]]:
    """(id, where the body goes, kind) for every kind that takes keys."""
    out: list[tuple[str, str, registry.StepKind | registry.ExpectationKind]] = []
    out += [(f"step-{k.name}", "  - {kind}: {body}\n", k) for k in registry.STEPS.values()]
    out += [
        (f"expectation-{k.name}", "  - expect:\n      - {kind}: {body}\n", k)
        for k in registry.EXPECTATIONS.values()
    ]
    return [(i, where, k) for i, where, k in out if k.fields]


BODIES = _bodies()


@pytest.mark.parametrize(("where", "kind"), [b[1:] for b in BODIES], ids=[b[0] for b in BODIES])
def test_each_kind_takes_the_keys_its_entry_declares(
    tmp_path: Path, where: str, kind: registry.StepKind | registry.ExpectationKind
) -> None:
    text = BEFORE + where.format(kind=kind.name, body="{nosuch: 1}")
    message = _error(tmp_path, text)
    keys = names(f.name for f in kind.fields)
    assert message.endswith(
        f"unknown key 'nosuch' in {kind.name} (hint: expected one of {keys})"
    ), message
    required = [f.name for f in kind.fields if f.required]
    if required:
        message = _error(tmp_path, BEFORE + where.format(kind=kind.name, body="{}"))
        assert message.endswith(f"{kind.name} needs {required[0]!r}"), message


SAME_TWICE = """\
name: same-twice
tenant: {mailboxes: 200, seed: 2}
steps:
  - edit:
      select: {filter: "IsExchangeCloudManaged -eq $true", sample: 2, name: edited}
      set: {CustomAttribute4: "same {index}"}
  - edit:
      select: edited
      set: {CustomAttribute4: "same {index}"}
"""


def test_a_set_mailbox_that_changes_nothing_counts_as_unchanged(tmp_path: Path) -> None:
    result = run_scenario(
        load_scenario(write(tmp_path, "s", textwrap.dedent(SAME_TWICE))), tmp_path / "out"
    )
    assert result["error"] is None, result["error"]
    first, second = (s["figures"] for s in result["steps"])
    assert (first["changed"], first["unchanged"]) == (2, 0)
    assert (second["changed"], second["unchanged"]) == (0, 2)
    assert result["steps"][1]["summary"] == "Set-Mailbox on 2 mailbox(es): 0 changed, 2 unchanged"

"""The allowed import directions between the project's layers (docs/architecture.md).

Every `import` and `from ... import` in `harness/` and `mockservers/` counts, at module level or
inside a function (a lazy import is still an arrow). A module may import its own layer and the
layers listed below it, minus the exceptions in FORBIDDEN; anything else fails with the file,
the line and the arrow, so a new wrong arrow is named where it is written.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Bottom to top. A module belongs to the first layer with a prefix it starts with.
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    # Ground: what the fakes and the clients share (BER, LDAP result codes, DNs, the AD schema
    # tables, YAML node reading, the endpoints file, the errors every layer raises).
    ("core", ("harness.core", "harness")),
    # The tenant model, its generator and its files.
    ("tenant", ("harness.tenant",)),
    # The fakes: directory, cloud, on-premises, their state and their runtime.
    ("fakes", ("mockservers",)),
    # Clients of real services (HTTP/OAuth, the EXO admin API).
    ("clients", ("harness.clients",)),
    # Policy: the writeback engine, then reports' formatting, then the decommission workflow.
    ("engine", ("harness.engine",)),
    ("report", ("harness.report",)),
    ("decommission", ("harness.decommission",)),
    # Readiness checks of a tenant before its first writeback (folder or running services).
    ("preflight", ("harness.preflight",)),
    # What drives a whole tenant: scenarios and exwb bench.
    ("scenario", ("harness.scenario", "harness.bench")),
    # The user's entry points.
    ("commands", ("harness.commands",)),
    ("entry", ("harness.cli", "harness.__main__", "harness.pytest_plugin")),
)

# Layers that must run against a real AD / Exchange Online, so never import a fake.
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "core": ("mockservers",),
    "tenant": ("mockservers",),
    "clients": ("mockservers",),
    "engine": ("mockservers",),
    "report": ("mockservers",),
    "decommission": ("mockservers",),
    "preflight": ("mockservers",),
}

# Inside the fakes, bottom to top: shared mechanisms, then each service, then what runs them.
FAKE_LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("mechanisms", ("mockservers.faults", "mockservers.journal", "mockservers")),
    (
        "directory",
        ("mockservers.directory", "mockservers.reference_slapd", "mockservers.reference_samba"),
    ),
    ("services", ("mockservers.cloud", "mockservers.onprem")),
    ("assembly", ("mockservers.runtime", "mockservers.state")),
)


def _layer(module: str, layers: tuple[tuple[str, tuple[str, ...]], ...]) -> int:
    best, best_len = -1, -1
    for rank, (_, prefixes) in enumerate(layers):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best_len:
                best, best_len = rank, len(prefix)
    return best


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path, module: str) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            # `from pkg import sub` imports pkg.sub when sub is a module.
            for alias in node.names:
                candidate = f"{target}.{alias.name}"
                found.append((node.lineno, candidate if _is_module(candidate) else target))
    return [
        (line, name) for line, name in found if name.split(".")[0] in {"harness", "mockservers"}
    ]


def _is_module(name: str) -> bool:
    path = ROOT.joinpath(*name.split("."))
    return path.with_suffix(".py").exists() or (path / "__init__.py").exists()


def _arrows() -> list[tuple[str, int, str, str]]:
    arrows = []
    for top in ("harness", "mockservers"):
        for path in sorted((ROOT / top).rglob("*.py")):
            module = _module_name(path)
            for line, target in _imports(path, module):
                arrows.append((str(path.relative_to(ROOT)), line, module, target))
    return arrows


def _wrong(arrow: tuple[str, int, str, str]) -> str | None:
    _, _, source, target = arrow
    if target == source or target.startswith(source + "."):
        return None
    low, high = _layer(source, LAYERS), _layer(target, LAYERS)
    name = LAYERS[low][0]
    if high > low:
        return f"{name} may not import the higher layer {LAYERS[high][0]}"
    if any(target == f or target.startswith(f + ".") for f in FORBIDDEN.get(name, ())):
        return f"{name} runs against real services and may not import {target}"
    if name == "fakes":
        low, high = _layer(source, FAKE_LAYERS), _layer(target, FAKE_LAYERS)
        if high > low:
            return f"{FAKE_LAYERS[low][0]} may not import {FAKE_LAYERS[high][0]}"
    return None


def test_every_import_runs_down_the_layers() -> None:
    wrong = [
        f"{path}:{line}: {source} -> {target}: {why}"
        for path, line, source, target in _arrows()
        if (why := _wrong((path, line, source, target)))
    ]
    assert wrong == [], "wrong import arrows:\n" + "\n".join(wrong)


@pytest.mark.parametrize(
    ("source", "target", "wrong"),
    [
        ("harness.engine.cycle", "mockservers.directory.store", True),
        ("harness.engine.cycle", "harness.scenario.runner", True),
        ("harness.core.ber", "harness.tenant.model", True),
        ("harness.decommission.ems.shell", "harness.engine.ldapwire", False),
        ("harness.scenario.runner", "mockservers.runtime", False),
        ("mockservers.directory.store", "mockservers.cloud.store", True),
        ("mockservers.cloud.store", "harness.core.adschema", False),
        ("harness.commands.run", "harness.cli", True),
        ("harness.preflight.snapshot", "mockservers.runtime", True),
        ("harness.preflight.rules", "harness.scenario.runner", True),
        ("harness.preflight.snapshot", "harness.engine.target", False),
        ("harness.scenario.runner", "harness.preflight.run", False),
    ],
)
def test_the_rule_itself(source: str, target: str, wrong: bool) -> None:
    # The checker must catch a wrong arrow, or the test above proves nothing.
    assert (_wrong(("x.py", 1, source, target)) is not None) is wrong

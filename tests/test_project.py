"""Project hygiene that CI must enforce: the README's commands, .ci/run, ruff."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def quick_start_commands() -> list[str]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block, "README quick start has no sh code block"
    return [line for line in block.group(1).splitlines() if line and not line.startswith("#")]


def test_quick_start_is_two_commands_and_ci_runs_the_test_one():
    commands = quick_start_commands()
    assert len(commands) == 2
    install_and_run, install_and_test = commands
    assert "exwb " in install_and_run
    assert "pytest" in install_and_test
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert install_and_test in ci, ".ci/run must run exactly the README's test command"


@pytest.mark.parametrize("args", [["check", "."], ["format", "--check", "."]])
def test_ruff_is_clean(args):
    res = subprocess.run(
        [sys.executable, "-m", "ruff", *args], cwd=ROOT, capture_output=True, text=True
    )
    assert res.returncode == 0, res.stdout + res.stderr


def test_the_package_runs_without_the_test_extra():
    """`pip install -e . && exwb run` must work: no module of the package may import a test-only
    dependency (ldap3 once slipped into the engine and the forward cycle this way)."""
    import subprocess
    import sys

    code = """
import importlib, pkgutil, sys
for name in ("ldap3", "pytest", "hypothesis", "pytest_benchmark", "msgraph", "kiota_abstractions"):
    sys.modules[name] = None  # importing it now raises ImportError
import harness, mockservers
skip = {"harness.pytest_plugin"}  # loaded by pytest only, which brings pytest with it
for pkg in (harness, mockservers):
    for mod in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + "."):
        if mod.name not in skip and not mod.name.endswith("__main__"):
            importlib.import_module(mod.name)
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-2000:]

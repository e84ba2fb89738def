"""Every example in the README and docs/ runs as written (see tests/docs/pages.py for the
comments that say how), against a real `exwb serve` on loopback where it needs one."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.docs.pages import ROOT, RUN, TEXT, Example, all_examples

pytest_plugins = ["pytester"]

EXAMPLES = all_examples()
# The same block shown on two pages (the README's scenario is also in docs/scenarios.md) runs once.
UNIQUE = list({(e.lang, e.body): e for e in reversed(EXAMPLES)}.values())[::-1]
TIMEOUT = 180  # seconds; generous for a loaded 2-core machine, never asserted

SERVE = """exwb serve {args} --endpoints-file results/endpoints.json > serve.log 2>&1 &
for _ in $(seq 600); do [ -s results/endpoints.json ] && break; sleep 0.2; done
[ -s results/endpoints.json ] || {{ cat serve.log; exit 1; }}
"""


def runnable(lang: str) -> list[Example]:
    return [e for e in UNIQUE if e.lang == lang and "skip" not in e.directives]


def ids(examples: list[Example]) -> list[str]:
    return [e.where for e in examples]


def environment() -> dict[str, str]:
    env = dict(os.environ)
    # The examples call `exwb` and import `harness`: this checkout's, whatever is installed.
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = f"{ROOT}{os.pathsep}{env.get('PYTHONPATH', '')}".rstrip(os.pathsep)
    return env


def check_output(example: Example, output: str) -> None:
    if "expect" in example.directives:
        pattern = example.directives["expect"]
        assert re.search(pattern, output, re.M), f"{example.where}: no {pattern!r} in:\n{output}"


def test_every_block_says_what_it_is() -> None:
    """A block without a language, or in one the tests do not know, would be skipped silently."""
    unknown = [e.where for e in EXAMPLES if e.lang not in (*RUN, *TEXT)]
    assert unknown == [], "tag these fences sh, python, yaml or text"


def test_a_skipped_example_says_why() -> None:
    bare = [e.where for e in EXAMPLES if "skip" in e.directives and not e.directives["skip"]]
    assert bare == []
    assert all(e.lang in RUN for e in EXAMPLES if e.directives), "directives on a text block"


@pytest.mark.parametrize("example", runnable("sh"), ids=ids(runnable("sh")))
def test_shell_example(example: Example, tmp_path: Path) -> None:
    script = "set -e\ntrap 'kill $(jobs -p) 2>/dev/null || true; wait' EXIT\n"
    if "serve" in example.directives:
        script += SERVE.format(args=example.directives["serve"])
    script += example.body
    proc = subprocess.Popen(
        ["bash", "-c", script],
        cwd=tmp_path,
        env=environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # so a timeout can stop the servers the block started too
    )
    try:
        output, _ = proc.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        output, _ = proc.communicate()
        pytest.fail(f"{example.where} did not finish in {TIMEOUT} s:\n{output}")
    assert proc.returncode == 0, f"{example.where} exited {proc.returncode}:\n{output}"
    check_output(example, output)


@pytest.mark.parametrize("example", runnable("yaml"), ids=ids(runnable("yaml")))
def test_scenario_example(example: Example, tmp_path: Path) -> None:
    """A YAML block is a scenario: it loads and every expectation holds."""
    from harness.scenario import load_scenario, run_scenario

    path = tmp_path / "example.yaml"
    path.write_text(example.body, encoding="utf-8")
    result = run_scenario(load_scenario(path), tmp_path / "results")
    assert result["verdict"] == "passed", (example.where, result["expectations"])


@pytest.mark.parametrize("example", runnable("python"), ids=ids(runnable("python")))
def test_python_example(example: Example, pytester: pytest.Pytester) -> None:
    if "pytest" in example.directives:
        pytester.makepyfile(test_example=example.body)
        result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
        outcomes = result.parseoutcomes()
        assert outcomes.get("passed", 0) > 0 and set(outcomes) <= {"passed", "warnings"}, (
            example.where,
            result.stdout.str(),
        )
        return
    script = pytester.path / "example.py"
    script.write_text(example.body, encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, str(script)],
        cwd=pytester.path,
        env=environment(),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert proc.returncode == 0, (example.where, proc.stdout + proc.stderr)
    check_output(example, proc.stdout)

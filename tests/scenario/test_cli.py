"""`exwb run` as a user runs it (in-process, harness.cli.main): defaults, folders, results."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from harness.commands.run import scenario_files
from tests.scenario.conftest import exwb_run, reports, write

SMALL = """\
# a small scenario
name: {name}
tenant: {{mailboxes: 150, seed: 2}}
steps:
  - cycle: {{mode: delta, name: initial}}
  - edit:
      select: {{filter: "IsExchangeCloudManaged -eq $true", sample: 2, name: edited}}
      set: {{CustomAttribute9: "cli {{index}}"}}
  - cycle: delta
  - expect:
      - ad: {{select: edited, attribute: extensionAttribute9, value: "cli {{index}}"}}
      - converged: true
"""


def test_no_argument_runs_scenarios_quickstart_yaml(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "scenarios").mkdir()
    write(tmp_path / "scenarios", "quickstart", SMALL.format(name="quickstart"))
    code, out, _ = exwb_run(capsys)
    assert code == 0, out
    assert "PASSED quickstart" in out
    (run,) = (tmp_path / "results" / "quickstart").iterdir()
    assert re.fullmatch(r"\d{8}T\d{6}Z", run.name)
    names = {p.name for p in run.iterdir()}
    assert {"report.json", "junit.xml", "report.md", "provisioning.jsonl"} <= names
    report = json.loads((run / "report.json").read_text())
    assert report["verdict"] == "passed" and report["scenario"] == "quickstart"
    lines = (run / "provisioning.jsonl").read_text().splitlines()
    assert len(lines) == sum(c["objects"] for c in report["cycles"])
    assert [c["objects"] for c in report["cycles"]] == [158, 2]  # every recipient, then the edits


def test_a_folder_runs_every_yaml_in_it_sorted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "mine"
    folder.mkdir()
    write(folder, "b", SMALL.format(name="second"))
    write(folder, "a", SMALL.format(name="first"))
    (folder / "notes.txt").write_text("not a scenario")
    assert [p.name for p in scenario_files([folder])] == ["a.yaml", "b.yaml"]
    code, out, _ = exwb_run(capsys, str(folder), "--results", str(tmp_path / "results"))
    assert code == 0, out
    assert out.index("PASSED first") < out.index("PASSED second")
    assert [r["scenario"] for r in reports(tmp_path / "results")] == ["first", "second"]


def test_an_empty_folder_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = exwb_run(capsys, str(tmp_path))
    assert code == 2
    assert "no *.yaml scenarios" in err


def test_progress_lines_go_to_stderr(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from harness.cli import main

    path = write(tmp_path, "s", SMALL.format(name="progress"))
    assert main(["run", str(path), "--results", str(tmp_path / "results")]) == 0
    err = capsys.readouterr().err
    assert "progress: 150 mailboxes, seed 2, 4 steps" in err
    assert "✓  2 edit" in err


def test_the_readme_example_is_a_passing_scenario(tmp_path: Path) -> None:
    from harness.scenario import load_scenario, run_scenario

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Scenarios: `exwb run`", 1)[1].split("\n## ", 1)[0]
    example = re.search(r"```yaml\n(.*?)```", section, re.S)
    assert example, "the README's scenario section has no yaml example"
    scenario = load_scenario(write(tmp_path, "example", example.group(1)))
    result = run_scenario(scenario, tmp_path / "out")
    assert result["verdict"] == "passed", result["expectations"]


def _runs(results: Path) -> dict[str, list[str]]:
    """Each scenario's report folders below `results` (timestamps dropped: runs differ in them)
    as the sorted names of the files each holds."""
    out: dict[str, list[str]] = {}
    for scenario in sorted(results.iterdir()):
        for run in sorted(scenario.iterdir()):
            out.setdefault(scenario.name, []).append(
                ",".join(sorted(p.name for p in run.iterdir()))
            )
    return out


def _verdicts(out: str) -> list[str]:
    """The summary's verdict lines ('PASSED first (3.1 s)  results/...') as 'PASSED first'."""
    return re.findall(r"^(?:PASSED|FAILED|ERROR) \S+(?= \()", out, re.M)


def test_jobs_2_gives_the_verdicts_and_folders_of_a_serial_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "mine"
    folder.mkdir()
    write(folder, "a", SMALL.format(name="first"))
    write(folder, "b", SMALL.format(name="second").replace('value: "cli', 'value: "wrong'))
    write(folder, "c", SMALL.format(name="first"))  # the same name: its own folder all the same
    serial, parallel = tmp_path / "serial", tmp_path / "parallel"
    code1, out1, _ = exwb_run(capsys, str(folder), "--results", str(serial))
    code2, out2, _ = exwb_run(capsys, str(folder), "--results", str(parallel), "--jobs", "2")
    assert code1 == code2 == 1
    assert _verdicts(out2) == _verdicts(out1) == ["PASSED first", "FAILED second", "PASSED first"]
    assert _runs(parallel) == _runs(serial)
    assert len(_runs(parallel)["first"]) == 2
    assert [r["file"] for r in reports(parallel)] == [r["file"] for r in reports(serial)]


def test_jobs_must_be_a_positive_number(capsys: pytest.CaptureFixture[str]) -> None:
    from harness.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(["run", "--jobs", "0"])
    assert exit_.value.code == 2
    assert "--jobs: '0' must be at least 1" in capsys.readouterr().err


def test_jobs_2_shows_each_scenarios_progress_in_order(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from harness.cli import main

    write(tmp_path, "a", SMALL.format(name="alpha"))
    write(tmp_path, "b", SMALL.format(name="beta"))
    results = tmp_path / "results"
    assert main(["run", str(tmp_path), "--results", str(results), "--jobs", "2"]) == 0
    err = capsys.readouterr().err
    assert err.index("alpha: 150 mailboxes") < err.index("beta: 150 mailboxes")
    assert err.count("✓  2 edit") == 2

"""The pytest plugin as a user meets it: `pytest scenarios/` in a project of their own, and the
fixtures in tests they write. Each case runs pytest in a subprocess (the plugin is loaded from
the installed package's `pytest11` entry point, as it is for users)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

PASSING = """\
name: tiny
tenant: {mailboxes: 100, seed: 4}
steps:
  - cycle: {mode: delta, name: initial}
  - edit:
      select: {filter: "IsExchangeCloudManaged -eq $true", sample: 2, name: edited}
      set: {CustomAttribute7: "plugin {index}"}
  - cycle: delta
  - expect:
      - ad: {select: edited, attribute: extensionAttribute7, value: "plugin {index}"}
      - converged: true
"""

FAILING = """\
name: wrong
tenant: {mailboxes: 100, seed: 4}
steps:
  - cycle: delta
  - expect:
      - log: {cycle: last, actions: {Update: 3}}
"""

INVALID = """\
name: broken
tenant: {mailboxes: 100}
steps:
  - cycle: delta
  - teleport: {to: mars}
"""


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.mkdir("scenarios")
    return pytester


def test_scenarios_folder_runs_as_tests(project: pytest.Pytester) -> None:
    (project.path / "scenarios" / "tiny.yaml").write_text(PASSING, encoding="utf-8")
    (project.path / "scenarios" / "wrong.yaml").write_text(FAILING, encoding="utf-8")
    (project.path / "notes.yaml").write_text("steps: not a scenario folder\n", encoding="utf-8")
    results = project.path / "out"
    r = project.runpytest_subprocess("scenarios", "-p", "no:randomly", f"--exwb-results={results}")
    r.assert_outcomes(passed=1, failed=1)
    text = r.stdout.str()
    assert "scenario wrong FAILED" in text
    assert "wrong.yaml:6: log" in text  # the failing expectation's file:line
    assert (results / "tiny").is_dir() and (results / "wrong").is_dir()
    reports = sorted(p.name for p in next((results / "tiny").iterdir()).iterdir())
    assert {"report.json", "junit.xml", "report.md", "provisioning.jsonl"} <= set(reports)
    only = project.runpytest_subprocess("scenarios", "-p", "no:randomly", "-k", "tiny")
    only.assert_outcomes(passed=1)


def test_an_invalid_scenario_is_a_collection_error_with_file_and_line(
    project: pytest.Pytester,
) -> None:
    (project.path / "scenarios" / "broken.yaml").write_text(INVALID, encoding="utf-8")
    r = project.runpytest_subprocess("scenarios", "-p", "no:randomly")
    r.assert_outcomes(errors=1)
    assert "broken.yaml:5:" in r.stdout.str() and "teleport" in r.stdout.str()
    assert "Traceback" not in r.stdout.str()


def test_fixtures_serve_a_tenant_to_the_users_own_tests(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_mine="""
        import pytest
        from harness.engine.ldapwire import equal
        from harness.tenant import TenantSpec

        @pytest.fixture(scope="module")
        def exwb_tenant_spec():
            return TenantSpec(mailboxes=50, seed=9)

        def test_lob_lookup(exwb_tenant, exwb_endpoints, exwb_ldap, exwb_exo):
            box = exwb_exo.invoke_all("Get-Mailbox", ResultSize="Unlimited")
            assert len(box) >= 50
            address = next(a for a in box[0]["EmailAddresses"] if a.startswith("SMTP:"))
            conn = exwb_ldap("reader")
            found = list(conn.search(exwb_endpoints.base_dn, "sub",
                                     equal("proxyAddresses", address), ["cn"]))
            assert len(found) <= 1
            with pytest.raises(ValueError):
                exwb_ldap("root")
        """
    )
    r = pytester.runpytest_subprocess("-p", "no:randomly")
    r.assert_outcomes(passed=1)


def test_xdist_workers_each_serve_their_own_tenant_and_report_folder(
    project: pytest.Pytester,
) -> None:
    # Two files, one scenario name: run at once on two workers, they still get two folders.
    (project.path / "scenarios" / "one.yaml").write_text(PASSING, encoding="utf-8")
    (project.path / "scenarios" / "two.yaml").write_text(PASSING, encoding="utf-8")
    results = project.path / "out"
    r = project.runpytest_subprocess(
        "scenarios", "-p", "xdist", "-n", "2", "-p", "no:randomly", f"--exwb-results={results}"
    )
    r.assert_outcomes(passed=2)
    assert "2 workers" in r.stdout.str()
    runs = sorted((results / "tiny").iterdir())
    assert len(runs) == 2
    files = sorted(json.loads((run / "report.json").read_text())["file"] for run in runs)
    assert [Path(f).name for f in files] == ["one.yaml", "two.yaml"]

"""Validation before anything runs: each broken scenario is one `file:line: message` and exit 2."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from harness.scenario import ScenarioError, load_scenario
from harness.scenario import model as m
from harness.scenario.load_steps import SET_MAILBOX
from mockservers.cloud import exo
from tests.scenario.conftest import exwb_run, write

HEAD = "name: broken\ntenant: {mailboxes: 200, seed: 1}\n"

# (id, scenario text, line of the fault, a fragment of the message). `case` puts HEAD (two
# lines) before the text unless raw=True, so line numbers count from HEAD's first line.


def case(name: str, text: str, line: int, fragment: str, raw: bool = False) -> tuple:
    body = textwrap.dedent(text).lstrip("\n")
    return (name, body if raw else HEAD + body, line, fragment)


CORPUS = [
    case("empty", "", 1, "empty scenario", raw=True),
    case(
        "not-yaml",
        """
        steps: [cycle: delta
        """,
        4,
        "invalid YAML",
    ),
    case(
        "top-is-a-list",
        """
        - cycle: delta
        """,
        1,
        "the scenario must be a mapping",
        raw=True,
    ),
    case(
        "unknown-top-key",
        """
        stpes:
          - cycle: delta
        """,
        3,
        "did you mean 'steps'?",
    ),
    case(
        "no-name",
        """
        tenant: {mailboxes: 200}
        steps: [cycle: delta]
        """,
        1,
        "needs 'name'",
        raw=True,
    ),
    case(
        "bad-name",
        """
        name: my scenario
        steps: [cycle: delta]
        """,
        1,
        "cannot name a results folder",
        raw=True,
    ),
    case(
        "unknown-knob",
        """
        name: x
        tenant:
          mailboxs: 200
        steps: [cycle: delta]
        """,
        3,
        "did you mean 'mailboxes'?",
        raw=True,
    ),
    case(
        "zero-mailboxes",
        """
        name: x
        tenant:
          mailboxes: 0
        steps: [cycle: delta]
        """,
        3,
        "tenant.mailboxes: must be between",
        raw=True,
    ),
    case(
        "mailboxes-text",
        """
        name: x
        tenant:
          mailboxes: lots
        steps: [cycle: delta]
        """,
        3,
        "tenant.mailboxes: expected a whole number",
        raw=True,
    ),
    case(
        "fraction-too-big",
        """
        name: x
        tenant:
          seed: 2
          cloud_managed_fraction: 1.5
        steps: [cycle: delta]
        """,
        4,
        "cloud_managed_fraction",
        raw=True,
    ),
    case(
        "steps-not-a-list",
        """
        steps:
          cycle: delta
        """,
        4,
        "steps must be a list",
    ),
    case(
        "steps-empty",
        """
        steps: []
        """,
        3,
        "steps is empty",
    ),
    case(
        "unknown-step",
        """
        steps:
          - cycle: delta
          - edti: {}
        """,
        5,
        "did you mean 'edit'?",
    ),
    case(
        "two-keys-step",
        """
        steps:
          - cycle: delta
            forward: null
        """,
        4,
        "one key",
    ),
    case(
        "unknown-parameter",
        """
        steps:
          - edit:
              select: {sample: 1}
              set:
                CustomAttribute16: x
        """,
        7,
        "did you mean 'CustomAttribute",
    ),
    case(
        "identity-parameter",
        """
        steps:
          - edit:
              select: {sample: 1}
              set: {Identity: x}
        """,
        6,
        "the selection gives each mailbox's Identity",
    ),
    case(
        "bad-type",
        """
        steps:
          - edit:
              select: {sample: 1}
              set: {Type: Workspace}
        """,
        6,
        "not a mailbox type",
    ),
    case(
        "flag-not-bool",
        """
        steps:
          - edit:
              select: {sample: 1}
              set:
                HiddenFromAddressListsEnabled: maybe
        """,
        7,
        "must be true or false",
    ),
    case(
        "custom-attribute-list",
        """
        steps:
          - edit:
              select: {sample: 1}
              set:
                CustomAttribute1: [a, b]
        """,
        7,
        "must be a string",
    ),
    case(
        "unknown-ad-attribute",
        """
        steps:
          - ad_edit:
              select: {sample: 1}
              replace:
                extensionAtribute1: x
        """,
        7,
        "did you mean 'extensionAttribute1'?",
    ),
    case(
        "system-only",
        """
        steps:
          - ad_edit:
              select: {sample: 1}
              replace: {objectGUID: x}
        """,
        6,
        "system-only",
    ),
    case(
        "sample-too-big",
        """
        steps:
          - edit:
              select: {sample: 5000}
              set: {CustomAttribute1: x}
        """,
        5,
        "more than the tenant's 205 mailboxes",
    ),
    case(
        "sample-zero",
        """
        steps:
          - edit:
              select: {sample: 0}
              set: {CustomAttribute1: x}
        """,
        5,
        "sample must be at least 1",
    ),
    case(
        "bad-opath",
        """
        steps:
          - edit:
              select:
                filter: "Department -eq 'x'"
              set: {CustomAttribute1: x}
        """,
        6,
        "OPATH filter",
    ),
    case(
        "unknown-selection",
        """
        steps:
          - edit:
              select: edited
              set: {CustomAttribute1: x}
        """,
        5,
        "no selection named 'edited'",
    ),
    case(
        "ids-and-filter",
        """
        steps:
          - edit:
              select: {ids: [a], sample: 2}
              set: {CustomAttribute1: x}
        """,
        5,
        "not both",
    ),
    case(
        "empty-select",
        """
        steps:
          - edit:
              select: {}
              set: {CustomAttribute1: x}
        """,
        5,
        "select picks nothing",
    ),
    case(
        "bad-mode",
        """
        steps:
          - cycle: incremental
        """,
        4,
        "unknown cycle mode 'incremental'",
    ),
    case(
        "on-demand-no-select",
        """
        steps:
          - cycle: {mode: on-demand}
        """,
        4,
        "an on-demand cycle needs 'select'",
    ),
    case(
        "unknown-expectation",
        """
        steps:
          - cycle: delta
          - expect:
              - convergd: true
        """,
        6,
        "did you mean 'converged'?",
    ),
    case(
        "expect-nothing",
        """
        steps:
          - expect:
              - ad: {select: {sample: 1}, attribute: mail}
        """,
        5,
        "ad checks nothing",
    ),
    case(
        "bad-ldap-filter",
        """
        steps:
          - expect:
              - ldap_search:
                  filter: "(mail=x"
                  entries: 1
        """,
        6,
        "LDAP filter",
    ),
    case(
        "ldap-unknown-attribute",
        """
        steps:
          - expect:
              - ldap_search: {filter: "(proxyAdresses=x)", entries: 1}
        """,
        5,
        "did you mean 'proxyAddresses'?",
    ),
    case(
        "log-before-cycle",
        """
        steps:
          - expect:
              - log: {objects: 0}
        """,
        5,
        "no cycle ran before it",
    ),
    case(
        "unknown-cycle-name",
        """
        steps:
          - cycle: delta
          - expect:
              - log: {cycle: first, objects: 0}
        """,
        6,
        "no cycle named 'first'",
    ),
    case(
        "unknown-threshold",
        """
        steps: [cycle: delta]
        thresholds:
          cycle_secs: {max: 3}
        """,
        5,
        "did you mean 'cycle_seconds'?",
    ),
    case(
        "threshold-no-bound",
        """
        steps: [cycle: delta]
        thresholds:
          retries: {}
        """,
        5,
        "needs min or max",
    ),
    case(
        "unknown-template-field",
        """
        steps:
          - edit:
              select: {sample: 1}
              set: {CustomAttribute1: "{aliass}"}
        """,
        6,
        "unknown template field {aliass}",
    ),
    case(
        "dn-on-cloud-side",
        """
        steps:
          - edit:
              select: {sample: 1}
              set: {CustomAttribute1: "{dn}"}
        """,
        6,
        "only known on the AD side",
    ),
    case(
        "bad-build",
        """
        steps:
          - forward: {connect_build: two}
        """,
        4,
        "expected dotted integers",
    ),
    case(
        "decommission-bad-path",
        """
        steps:
          - decommission: {action: execute, path: uninstall-everything}
        """,
        4,
        "unknown path 'uninstall-everything'",
    ),
    case(
        "decommission-unknown-step",
        """
        steps:
          - decommission: {action: execute, only: remove-federation-trusts}
        """,
        4,
        "did you mean 'remove-federation-trust'?",
    ),
    case(
        "decommission-only-without-execute",
        """
        steps:
          - decommission: {only: uninstall-exchange}
        """,
        4,
        "only goes with action: execute",
    ),
    case(
        "decommission-expect-first",
        """
        steps:
          - expect:
              - decommission: {blocked: false}
        """,
        5,
        "none ran before it",
    ),
    case(
        "decommission-unknown-blocker",
        """
        steps:
          - decommission: {action: plan}
          - expect:
              - decommission: {blockers: [SmtpRelay]}
        """,
        6,
        "did you mean 'SmtpRelayInUse'?",
    ),
    case(
        "missing-profile",
        """
        engine:
          profile: nowhere.yaml
        steps: [cycle: delta]
        """,
        4,
        "neither built in nor a file",
    ),
    case(
        "duplicate-key",
        """
        steps: [cycle: delta]
        name: again
        """,
        4,
        "duplicate key 'name'",
    ),
    case(
        "ldap-code-as-text",
        """
        steps:
          - ad_edit:
              select: {sample: 1}
              add: {proxyAddresses: x}
              expect_error: denied
        """,
        7,
        "an LDAP result code",
    ),
    case(
        "threshold-text",
        """
        engine:
          mass_change_threshold: many
        steps: [cycle: delta]
        """,
        4,
        "must be a whole number",
    ),
    case(
        "unknown-job-state",
        """
        steps:
          - expect:
              - job: {state: Running}
        """,
        5,
        "unknown job state 'Running'",
    ),
    case(
        "template-needs-select",
        """
        steps:
          - expect:
              - ldap_search: {filter: "(mail={alias}@x.com)", entries: 1}
        """,
        5,
        "selects no objects",
    ),
    case(
        "fault-kind-typo",
        """
        steps:
          - fault: {server: ldap, kind: bussy}
        """,
        4,
        "unknown ldap fault 'bussy' (hint: did you mean 'busy'?)",
    ),
    case(
        "fault-kind-of-the-other-server",
        """
        steps:
          - fault:
              server: ldap
              kind: throttle
        """,
        6,
        "throttle is an http fault",
    ),
    case(
        "fault-unknown-key",
        """
        steps:
          - fault: {server: ldap, kind: busy, aftr: 3}
        """,
        4,
        "did you mean 'after'?",
    ),
    case(
        "fault-unknown-operation",
        """
        steps:
          - fault:
              server: ldap
              kind: busy
              on: write
        """,
        7,
        "unknown ldap operation 'write'",
    ),
    case(
        "fault-slow-without-seconds",
        """
        steps:
          - fault: {server: ldap, kind: slow, on: search}
        """,
        4,
        "slow needs seconds",
    ),
    case(
        "fault-retry-after-on-ldap",
        """
        steps:
          - fault:
              server: ldap
              kind: unavailable
              retry_after: 1
        """,
        7,
        "retry_after applies to http throttle and unavailable",
    ),
    case(
        "fault-count-text",
        """
        steps:
          - fault:
              server: http
              kind: reset
              count: forever
        """,
        7,
        "count (a number, or unlimited) must be a whole number",
    ),
    case(
        "fault-no-kind",
        """
        steps:
          - fault: {server: http}
        """,
        4,
        "fault needs 'kind'",
    ),
    case(
        "fault-name-twice",
        """
        steps:
          - fault: {server: http, kind: reset, name: r}
          - fault:
              server: http
              kind: throttle
              name: r
        """,
        8,
        "fault 'r' is already armed on line 4",
    ),
    case(
        "fault-clear-unknown",
        """
        steps:
          - fault: {server: http, kind: reset, name: r}
          - fault: {clear: s}
        """,
        5,
        "no fault named 's' armed before this line (hint: all, ldap, http or a fault's name; "
        "armed so far: r)",
    ),
    case(
        "fault-clear-and-arm",
        """
        steps:
          - fault:
              clear: all
              kind: busy
        """,
        6,
        "a fault step that clears takes nothing else",
    ),
    case(
        "faults-before-any-fault",
        """
        steps:
          - cycle: delta
          - expect:
              - faults: {ldap: {busy: 1}}
        """,
        6,
        "none armed a fault before it",
    ),
    case(
        "faults-unknown-kind",
        """
        steps:
          - fault: {server: ldap, kind: busy}
          - expect:
              - faults:
                  ldap: {throttle: 1}
        """,
        7,
        "unknown key 'throttle' in faults.ldap",
    ),
]


@pytest.mark.parametrize(
    ("text", "line", "fragment"), [c[1:] for c in CORPUS], ids=[c[0] for c in CORPUS]
)
def test_a_broken_scenario_is_one_line_with_file_and_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, line: int, fragment: str
) -> None:
    path = write(tmp_path, "broken", text)
    code, out, err = exwb_run(capsys, str(path), "--results", str(tmp_path / "results"))
    assert code == 2, err
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"exwb run: error: {path}:{line}: "), lines[0]
    assert fragment in lines[0], lines[0]
    assert "Traceback" not in err
    assert not (tmp_path / "results").exists(), "nothing may run before validation passes"


def test_corpus_is_large_enough() -> None:
    assert len(CORPUS) >= 15


def test_hints_are_given_in_parentheses(tmp_path: Path) -> None:
    path = write(tmp_path, "s", HEAD + "steps:\n  - cycle: incremental\n")
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    assert str(info.value).endswith("(hint: one of delta, full, dry-run, on-demand)")


def test_one_broken_file_stops_every_scenario_before_any_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = write(tmp_path, "a-good", HEAD.replace("broken", "good") + "steps: [cycle: delta]\n")
    bad = write(tmp_path, "b-bad", HEAD + "steps: [cycle: sideways]\n")
    code, _, err = exwb_run(capsys, str(tmp_path), "--results", str(tmp_path / "results"))
    assert code == 2
    assert f"{bad}:3:" in err and str(good) not in err
    assert not (tmp_path / "results").exists()


def test_a_broken_custom_profile_names_its_own_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    profile = tmp_path / "profiles" / "mine.yaml"
    profile.parent.mkdir()
    profile.write_text("based_on: ga\nmappings:\n  - {target: nosuch, source: A}\n")
    path = write(
        tmp_path, "s", HEAD + "engine: {profile: profiles/mine.yaml}\nsteps: [cycle: delta]\n"
    )
    code, _, err = exwb_run(capsys, str(path))
    assert code == 2
    assert f"{profile}:3: unknown AD attribute 'nosuch'" in err


def test_missing_scenario_file_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = exwb_run(capsys, str(tmp_path / "nope.yaml"))
    assert code == 2
    assert "no such scenario file or folder" in err


# --- what a valid file becomes ---------------------------------------------------------------

VALID = """\
name: valid
description: every step kind
tenant:
  mailboxes: 300
  seed: 4
  cloud_managed_fraction: 0.8
engine:
  profile: preview
  mass_change_threshold: null
  quarantine_min_failures: 3
steps:
  - cycle: {mode: delta, name: first}
  - edit:
      select: {filter: "IsExchangeCloudManaged -eq $true", sample: 3, name: picked}
      set:
        customattribute1: "v {index} {{literal}}"
        EmailAddresses: {add: ["smtp:{alias}.x@{domain}"], Remove: []}
        ExtensionCustomAttribute2: [a, b]
        HiddenFromAddressListsEnabled: true
        Type: shared
  - ad_edit:
      select: picked
      replace: {extensionattribute2: "{dn}"}
      delete: {extensionAttribute3: null}
      bind: writeback
      expect_error: 50
  - set_cloud_managed: {select: {upns: [a@contoso.com]}, value: false}
  - cycle: {mode: on-demand, select: picked}
  - forward: '2.5.76.0'
  - expect:
      - converged: true
      - ad: {select: picked, attribute: mail, contains: ["{alias}@{domain}"]}
      - log: {cycle: first, statuses: {Success: {min: 1}}}
      - forward: {reverted: 0}
thresholds:
  objects_per_second: {min: 10, cycle: first}
  cycle_seconds: {max: 30}
"""


def test_the_mass_change_guard_is_off_unless_a_scenario_sets_it(tmp_path: Path) -> None:
    text = VALID.replace("  mass_change_threshold: null\n", "")
    assert text != VALID
    assert load_scenario(write(tmp_path, "unset", text)).engine.mass_change_threshold is None
    text = VALID.replace("mass_change_threshold: null", "mass_change_threshold: 500")
    assert load_scenario(write(tmp_path, "set", text)).engine.mass_change_threshold == 500


def test_a_valid_scenario_becomes_the_model(tmp_path: Path) -> None:
    s = load_scenario(write(tmp_path, "valid", VALID))
    assert (s.name, s.description, s.tenant.mailboxes, s.tenant.seed) == (
        "valid",
        "every step kind",
        300,
        4,
    )
    assert s.tenant_keys == ("mailboxes", "seed", "cloud_managed_fraction")
    assert s.engine.profile.name == "preview"
    assert s.engine.mass_change_threshold is None and s.engine.quarantine_min_failures == 3
    kinds = [step.kind for step in s.steps]
    assert kinds == ["cycle", "edit", "ad_edit", "set_cloud_managed", "cycle", "forward", "expect"]
    edit = s.steps[1]
    assert isinstance(edit, m.Edit) and edit.select.sample == 3 and edit.select.name == "picked"
    assert set(edit.parameters) == {
        "CustomAttribute1", "EmailAddresses", "ExtensionCustomAttribute2",
        "HiddenFromAddressListsEnabled", "Type",
    }  # fmt: skip
    assert edit.parameters["Type"] == "Shared"
    assert set(edit.parameters["EmailAddresses"]) == {"Add", "Remove"}
    assert edit.parameters["CustomAttribute1"].render({"index": "2"}) == "v 2 {literal}"
    ad = s.steps[2]
    assert isinstance(ad, m.AdEdit) and ad.bind == "writeback" and ad.refused is not None
    assert [(op, attr) for op, attr, _ in ad.changes] == [
        ("replace", "extensionAttribute2"), ("delete", "extensionAttribute3"),
    ]  # fmt: skip
    assert ad.select.ref == "picked"
    assert isinstance(s.steps[5], m.Forward) and s.steps[5].connect_build == "2.5.76.0"
    assert [t.text for t in s.thresholds] == ["min 10 (cycle first)", "max 30"]
    assert [e.kind for e in s.expectations()] == ["converged", "ad", "log", "forward"]
    assert s.steps[0].line == 12 and s.expectations()[1].line == 32


def test_scenario_parameters_are_the_ones_set_mailbox_accepts() -> None:
    accepted = {p for p in exo._SET_PARAMETERS if p != "IsExchangeCloudManaged"}
    assert set(SET_MAILBOX) - {"IsExchangeCloudManaged"} == accepted
    assert "IsExchangeCloudManaged" in exo._SET_PARAMETERS


def test_fault_steps_become_the_model(tmp_path: Path) -> None:
    text = HEAD + textwrap.dedent(
        """\
        steps:
          - fault: {server: ldap, kind: busy, on: modify, after: 10, count: 5}
          - fault:
              server: http
              kind: throttle
              retry_after: 2
              count: unlimited
              name: t
          - fault: {server: ldap, kind: slow, seconds: 0.25, every: 3, count: 2}
          - fault: {server: http, kind: expire_delta}
          - fault: {clear: t}
          - fault: {clear: all}
          - expect:
              - faults: {ldap: {busy: 5, slow: {min: 1}}, http: {throttle: {max: 9}}}
        """
    )
    s = load_scenario(write(tmp_path, "faults", text))
    faults = [step for step in s.steps if isinstance(step, m.Fault)]
    specs = [f.spec for f in faults if f.spec is not None]
    # `on` is the word, not YAML 1.1's Boolean true.
    assert (specs[0].on, specs[0].after, specs[0].count) == ("modify", 10, 5)
    assert (specs[1].retry_after, specs[1].count, specs[1].name) == (2, None, "t")
    assert (specs[2].seconds, specs[2].every, specs[2].on) == (0.25, 3, "any")
    assert specs[3].on == "delta" and specs[3].retry_after is None
    assert [f.clear for f in faults if f.spec is None] == ["t", "all"]
    (expectation,) = s.expectations()
    assert isinstance(expectation, m.FaultCounts)
    assert {k: str(c) for k, c in expectation.counts.items()} == {
        "ldap.busy": "5", "ldap.slow": ">= 1", "http.throttle": "<= 9",
    }  # fmt: skip

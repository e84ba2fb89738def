import xml.etree.ElementTree as ET

import pytest

from harness.report.junit import junit_xml
from tests.report.samples import error_run, failed_run, passed_run


def parse(result) -> ET.Element:
    text = junit_xml(result)
    assert text.startswith('<?xml version="1.0" encoding="UTF-8"?>\n')
    return ET.fromstring(text.encode("utf-8"))


def test_passed_run_is_one_suite_of_expectations_and_thresholds():
    root = parse(passed_run())
    assert root.tag == "testsuites"
    (suite,) = root.findall("testsuite")
    assert suite.get("name") == "quickstart"
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("3", "0", "0")
    assert suite.get("time") == "12.345"
    assert suite.get("timestamp") == "2025-03-01T12:00:00+00:00"
    names = [c.get("name") for c in suite.iter("testcase")]
    assert names == [
        "step 3 line 26: converged",
        "step 3 line 28: ad_values",
        "threshold cycle_seconds: max 30",
    ]
    assert {c.get("classname") for c in suite.iter("testcase")} == {"exwb.quickstart"}
    assert not list(suite.iter("failure"))
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("3", "0", "0")


def test_expectations_share_their_step_time():
    cases = parse(passed_run()).findall("testsuite/testcase")
    # Step 3 took 0.6 s and holds two expectations; thresholds take no time of their own.
    assert [c.get("time") for c in cases] == ["0.300", "0.300", "0.000"]
    assert cases[0].get("file") == "scenarios/quickstart.yaml"
    assert cases[0].get("line") == "26"


def test_properties_carry_tenant_seed_and_profile():
    suite = parse(failed_run()).find("testsuite")
    props = {p.get("name"): p.get("value") for p in suite.findall("properties/property")}
    assert props["tenant.mailboxes"] == "200"
    assert props["tenant.seed"] == "7"
    assert props["tenant.knobs"] == '{"non_ascii_fraction": 0.5}'
    assert props["profile"] == "ga"
    assert props["verdict"] == "failed"


def test_failures_name_their_type_message_and_detail():
    suite = parse(failed_run()).find("testsuite")
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("5", "3", "0")
    failed = {c.get("name"): c.find("failure") for c in suite.findall("testcase")}
    ad = failed["step 3 line 31: ad_values"]
    assert ad.get("type") == "ExpectationFailed"
    # The message is the detail's first line; the text is all of it plus where it is.
    assert ad.get("message").startswith("proxyAddresses of Zoë Müller: want smtp:a|b@contoso.com")
    assert "second line" not in ad.get("message")
    assert ad.text.endswith("second line of the detail\n\nat scenarios/proxy addresses.yaml:31")
    threshold = failed["threshold cycle_seconds: max 30"]
    assert threshold.get("type") == "ThresholdExceeded"
    assert threshold.get("message") == "cycle_seconds: measured 41.25, limit max 30"
    assert failed["threshold objects_per_second: min 100"] is None
    assert failed["step 3 line 26: converged"] is None


def test_hostile_text_is_escaped_and_forbidden_characters_dropped():
    text = junit_xml(failed_run())
    # XML 1.0 forbids \x01 and \x1b even as character references; \x7f is allowed.
    for c in "\x01\x1b":
        assert c not in text
        assert f"&#{ord(c)};" not in text
    suite = ET.fromstring(text.encode("utf-8")).find("testsuite")
    failure = suite.find("testcase[@name='step 3 line 31: ad_values']/failure")
    assert "got <&>\"' tab\there [31mred" in failure.get("message")
    assert "got <&>\"' tab\there [31mred" in failure.text
    # Non-ASCII text survives as text, in UTF-8.
    assert "Zoë Müller | Ωmega\nsecond line" in suite.find("system-out").text


def test_system_out_lists_step_summaries_and_system_err_the_warnings():
    suite = parse(passed_run()).find("testsuite")
    out = suite.find("system-out").text.splitlines()
    assert out == [
        "step 1 (edit, line 14, 1.25 s): Set-Mailbox CustomAttribute1 on 20 mailboxes",
        "step 2 (cycle, line 22, 8.50 s): full cycle: 10,000 objects",
        "step 3 (expect, line 25, 0.60 s): 2 expectations",
    ]
    assert suite.find("system-err").text.strip() == "profile ga: tenant is within the 600,000 limit"


def test_error_run_gets_one_error_testcase():
    suite = parse(error_run()).find("testsuite")
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("1", "0", "1")
    (case,) = suite.findall("testcase")
    error = case.find("error")
    assert error.get("type") == "ScenarioError"
    assert error.get("message") == "step 2 (cycle, line 22): LDAP busy (51) after 5 tries <&>"


def test_error_after_some_expectations_keeps_them():
    run = failed_run()
    run.update(verdict="error", error="server died")
    suite = parse(run).find("testsuite")
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("6", "3", "1")


@pytest.mark.parametrize("verdict", ["failed", "bogus", None])
def test_a_run_that_did_not_pass_never_reads_green(verdict):
    run = passed_run()
    run["verdict"] = verdict
    suite = parse(run).find("testsuite")
    assert int(suite.get("failures")) + int(suite.get("errors")) == 1


def test_several_runs_add_up_at_the_top():
    root = parse([passed_run(), failed_run(), error_run()])
    assert [s.get("name") for s in root.findall("testsuite")] == [
        "quickstart",
        "proxy-addresses",
        "faults",
    ]
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("9", "3", "1")
    assert root.get("time") == f"{3 * 12.345:.3f}"


def test_missing_fields_do_not_crash():
    suite = parse({"scenario": "bare", "verdict": "passed"}).find("testsuite")
    assert (suite.get("tests"), suite.get("time")) == ("0", "0.000")
    assert suite.find("system-out") is None

"""JUnit XML of a scenario run, in the shape GitHub Actions, GitLab and Jenkins read.

One <testsuite> per scenario; one <testcase> per expectation and per threshold, with a
<failure> when it did not hold; a run that ended in an error gets a testcase with an <error>.
"""

from __future__ import annotations

import json
import math
import xml.etree.ElementTree as ET
from typing import Any

from harness.report.model import ScenarioResult
from harness.report.text import first_line, verdict, xml_safe

EXPECTATION_FAILED = "ExpectationFailed"
THRESHOLD_EXCEEDED = "ThresholdExceeded"
SCENARIO_ERROR = "ScenarioError"
SCENARIO_FAILED = "ScenarioFailed"


def junit_xml(results: ScenarioResult | list[ScenarioResult]) -> str:
    """The JUnit XML document (with its declaration) for one run or several."""
    runs = [results] if isinstance(results, dict) else results
    root = ET.Element("testsuites", name="exwb")
    totals = {"tests": 0, "failures": 0, "errors": 0}
    seconds = 0.0
    for result in runs:
        suite = testsuite(result)
        root.append(suite)
        for key in totals:
            totals[key] += int(suite.get(key, "0"))
        seconds += _seconds(result.get("seconds"))
    for key, value in totals.items():
        root.set(key, str(value))
    root.set("time", _time(seconds))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def testsuite(result: ScenarioResult) -> ET.Element:
    """The <testsuite> element of one scenario run."""
    scenario = str(result.get("scenario") or "scenario")
    classname = f"exwb.{scenario}"
    file = str(result.get("file") or "")
    suite = ET.Element("testsuite", name=xml_safe(scenario))
    suite.append(_properties(result))

    cases: list[ET.Element] = []
    step_seconds = {s.get("index"): _seconds(s.get("seconds")) for s in result.get("steps") or []}
    expectations = result.get("expectations") or []
    per_step: dict[int, int] = {}
    for e in expectations:
        per_step[e.get("step")] = per_step.get(e.get("step"), 0) + 1
    for e in expectations:
        # A step's time is shared by its expectations, so the testcases add up to the run's time.
        step = e.get("step")
        seconds = step_seconds.get(step, 0.0) / per_step[step]
        case = _case(classname, f"step {step} line {e.get('line')}: {e.get('name')}", seconds)
        _locate(case, file, e.get("line"))
        if not e.get("passed"):
            detail = str(e.get("detail") or "expectation not met")
            text = f"{detail}\n\nat {file}:{e.get('line')}" if file else detail
            _fail(case, "failure", EXPECTATION_FAILED, first_line(detail), text)
        cases.append(case)

    for t in result.get("thresholds") or []:
        case = _case(classname, f"threshold {t.get('name')}: {t.get('limit')}", 0.0)
        if not t.get("passed"):
            message = f"{t.get('name')}: measured {t.get('measured')}, limit {t.get('limit')}"
            _fail(case, "failure", THRESHOLD_EXCEEDED, message, message)
        cases.append(case)

    outcome = verdict(result)
    failed = sum(1 for c in cases if c.find("failure") is not None)
    if outcome == "ERROR":
        error = str(result.get("error") or "the scenario did not run to its end")
        case = _case(classname, "scenario error", 0.0)
        _locate(case, file, None)
        _fail(case, "error", SCENARIO_ERROR, first_line(error), error)
        cases.append(case)
    elif outcome == "FAILED" and not failed:
        # A failed run must never read green in CI, even if no single expectation says why.
        reason = str(result.get("error") or "the scenario failed")
        case = _case(classname, "scenario verdict", 0.0)
        _fail(case, "failure", SCENARIO_FAILED, first_line(reason), reason)
        cases.append(case)

    suite.extend(cases)
    suite.set("tests", str(len(cases)))
    suite.set("failures", str(sum(1 for c in cases if c.find("failure") is not None)))
    suite.set("errors", str(sum(1 for c in cases if c.find("error") is not None)))
    suite.set("skipped", "0")
    suite.set("time", _time(_seconds(result.get("seconds"))))
    started = result.get("started")
    if started:
        suite.set("timestamp", xml_safe(str(started)))
    if file:
        suite.set("file", xml_safe(file))

    out = _steps_text(result)
    if out:
        ET.SubElement(suite, "system-out").text = xml_safe(out)
    warnings = result.get("warnings") or []
    if warnings:
        ET.SubElement(suite, "system-err").text = xml_safe("\n".join(map(str, warnings)) + "\n")
    return suite


def _properties(result: ScenarioResult) -> ET.Element:
    props = ET.Element("properties")
    pairs: list[tuple[str, Any]] = [
        (f"tenant.{k}", v) for k, v in (result.get("tenant") or {}).items()
    ]
    pairs += [
        ("profile", result.get("profile")),
        ("verdict", result.get("verdict")),
        ("file", result.get("file")),
        ("generatedBy", result.get("generatedBy")),
    ]
    for name, value in pairs:
        if value is None:
            continue
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        ET.SubElement(props, "property", name=xml_safe(name), value=xml_safe(text))
    return props


def _steps_text(result: ScenarioResult) -> str:
    lines = [
        f"step {s.get('index')} ({s.get('kind')}, line {s.get('line')}, "
        f"{_seconds(s.get('seconds')):.2f} s): {s.get('summary') or ''}"
        for s in result.get("steps") or []
    ]
    return "\n".join(lines) + "\n" if lines else ""


def _case(classname: str, name: str, seconds: float) -> ET.Element:
    return ET.Element(
        "testcase", classname=xml_safe(classname), name=xml_safe(name), time=_time(seconds)
    )


def _locate(case: ET.Element, file: str, line: Any) -> None:
    # GitLab and the annotation actions on GitHub point at the scenario file with these.
    if file:
        case.set("file", xml_safe(file))
    if isinstance(line, int):
        case.set("line", str(line))


def _fail(case: ET.Element, tag: str, kind: str, message: str, text: str) -> None:
    element = ET.SubElement(case, tag, message=xml_safe(message), type=kind)
    element.text = xml_safe(text)


def _seconds(value: Any) -> float:
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return 0.0
    return seconds if math.isfinite(seconds) and seconds >= 0 else 0.0


def _time(seconds: float) -> str:
    return f"{seconds:.3f}"

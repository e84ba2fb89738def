"""A pre-flight report as the user reads it: a console table, Markdown, JSON and JUnit XML.

JUnit has one test case per rule (so CI shows every rule, passed or not): a `<failure>` for a
rule with findings at error severity, the findings of a warning or info rule in its
`<system-out>`.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

from rich.console import Console
from rich.table import Table

from harness.preflight.rules import Severity
from harness.preflight.run import Outcome, PreflightReport
from harness.report.markdown import inline, table
from harness.report.text import first_line, jsonable, plural, printable, xml_safe

STYLE = {Severity.ERROR: "red", Severity.WARNING: "yellow", Severity.INFO: "cyan"}


def _example_line(f_object: str, attribute: str, value: str, detail: str) -> str:
    return f"{f_object}: {attribute} = {value!r}" + (f" ({detail})" if detail else "")


def _lines(o: Outcome) -> list[str]:
    return [_example_line(f.object, f.attribute, f.value, f.detail) for f in o.examples]


def _headline(report: PreflightReport) -> str:
    c = report.counts()
    failed = [o for o in report.outcomes if o.failed]
    verdict = (
        f"{plural(report.errors, 'error finding')} in {plural(len(failed), 'rule')}"
        if failed
        else "no errors"
    )
    return (
        f"{report.snapshot.info.source}, profile {report.snapshot.profile.name}: "
        f"{c['ad_users']:,} AD users, {c['cloud_recipients']:,} cloud recipients, "
        f"{c['in_scope']:,} in scope, {c['first_cycle_updates']:,} updated by the first cycle; "
        f"{verdict}"
    )


def print_console(console: Console, report: PreflightReport, examples: int = 3) -> None:
    t = Table(title="exwb preflight")
    for col, justify in (("severity", "left"), ("rule", "left"), ("count", "right")):
        t.add_column(col, justify=justify)  # type: ignore[arg-type]
    t.add_column("finds")
    for o in report.outcomes:
        sev = o.rule.severity
        style = STYLE[sev] if o.count else "dim"
        t.add_row(sev.value, o.rule.id, f"{o.count:,}", o.rule.title, style=style)
    console.print(t)
    for o in report.outcomes:
        if not o.count or o.rule.severity is Severity.INFO:
            continue
        console.print(f"{o.rule.id} ({o.count:,}):", style=STYLE[o.rule.severity], highlight=False)
        for line in _lines(o)[:examples]:
            console.print(f"  {printable(line)}", highlight=False)
        console.print(f"  fix: {o.rule.fix}", highlight=False)
    console.print(_headline(report), highlight=False)


def markdown(report: PreflightReport) -> str:
    info = report.snapshot.info
    out = ["# exwb preflight", "", inline(_headline(report)), ""]
    ous = ", ".join(f"`{ou}`" for ou in info.writable_ous)
    out += [f"Writable OUs ({info.writable_from}): {ous}", ""]
    rows = [
        [o.rule.severity.value, f"`{o.rule.id}`", o.count, o.rule.title] for o in report.outcomes
    ]
    out += table(["severity", "rule", "count", "finds"], rows, align="--r-", raw={1})
    out.append("")
    for o in report.outcomes:
        if not o.count:
            continue
        out += [f"## `{o.rule.id}`: {inline(o.rule.title)} ({o.count:,})", ""]
        if len(o.by_attribute) > 1:
            parts = ", ".join(f"{a} {n:,}" for a, n in sorted(o.by_attribute.items()))
            out += [f"By attribute: {inline(parts)}", ""]
        out += table(
            ["object", "attribute", "value", "detail"],
            [[f.object, f.attribute, f.value, f.detail] for f in o.examples],
        )
        out += ["", f"**Fix:** {inline(o.rule.fix)} *({inline(o.rule.basis)})*", ""]
    return "\n".join(out)


def json_text(report: PreflightReport) -> str:
    return json.dumps(jsonable(report.as_dict()), indent=2, ensure_ascii=False) + "\n"


def junit_xml(report: PreflightReport) -> str:
    root = ET.Element("testsuites", name="exwb-preflight")
    suite = ET.SubElement(
        root, "testsuite", name=xml_safe(f"preflight {report.snapshot.info.source}")
    )
    props = ET.SubElement(suite, "properties")
    for name, value in (("profile", report.snapshot.profile.name), *report.counts().items()):
        ET.SubElement(props, "property", name=name, value=xml_safe(str(value)))
    failures = 0
    for o in report.outcomes:
        case = ET.SubElement(
            suite,
            "testcase",
            classname=f"exwb.preflight.{o.rule.severity.value}",
            name=xml_safe(f"{o.rule.id}: {o.rule.title}"),
            time="0.000",
        )
        if not o.count:
            continue
        text = xml_safe("\n".join([*_lines(o), "", f"fix: {o.rule.fix}"]))
        if o.failed:
            failures += 1
            message = f"{o.count:,} finding(s): {first_line(_lines(o)[0])}"
            element = ET.SubElement(case, "failure", message=xml_safe(message), type=o.rule.id)
            element.text = text
        else:
            ET.SubElement(case, "system-out").text = f"{o.count:,} finding(s)\n{text}"
    for el in (root, suite):
        el.set("tests", str(len(report.outcomes)))
        el.set("failures", str(failures))
        el.set("errors", "0")
    suite.set("skipped", "0")
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"

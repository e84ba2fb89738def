import re

from harness.report.markdown import inline, markdown
from tests.report.samples import HOSTILE, error_run, failed_run, passed_run


def section(text: str, title: str) -> list[str]:
    """The lines of one '## title' section."""
    body = text.split(f"## {title}\n", 1)[1]
    return body.split("\n## ", 1)[0].strip().splitlines()


def cells(row: str) -> list[str]:
    """A GFM table row split on its unescaped pipes, as GitHub splits it."""
    assert row.startswith("| ") and row.endswith(" |")
    return [c.strip() for c in re.split(r"(?<!\\)\|", row[1:-1])]


def test_title_and_header_lines():
    text = markdown(passed_run(), "provisioning.jsonl")
    lines = text.splitlines()
    assert lines[0] == "# quickstart: PASSED"
    assert "scenarios/quickstart.yaml · started 2025-03-01T12:00:00+00:00 · 12.35 s" in text
    assert "**Tenant:** 10,000 mailboxes, seed 1, domain contoso.com" in lines
    assert "**Result:** 2 of 2 expectations met, 0 failed; 1 of 1 thresholds held" in text
    assert lines[-1].startswith("<sub>") and "provisioning.jsonl" in lines[-1]
    assert markdown(failed_run()).startswith("# proxy-addresses: FAILED\n")
    assert markdown(error_run()).startswith("# faults: ERROR\n")


def test_steps_table():
    rows = section(markdown(passed_run()), "Steps")
    assert cells(rows[0]) == ["#", "kind", "line", "seconds", "summary"]
    assert cells(rows[1]) == ["---:", "---", "---:", "---:", "---"]
    assert cells(rows[3]) == ["2", "cycle", "22", "8.5", "full cycle: 10,000 objects"]
    assert len(rows) == 5


def test_expectations_table_keeps_each_row_to_its_columns():
    rows = section(markdown(failed_run()), "Expectations")
    assert cells(rows[0]) == ["status", "step/line", "name", "detail"]
    assert [cells(r)[:3] for r in rows[2:]] == [
        ["PASS", "3/26", "converged"],
        ["**FAIL**", "3/31", "ad_values"],
        ["**FAIL**", "3/35", "status_counts"],
    ]
    # The detail held a pipe, a newline, `<`, backslash-free control characters: one row still.
    detail = cells(rows[3])[3]
    assert "smtp:a\\|b@contoso.com" in detail
    assert detail.endswith("<br>second line of the detail")
    assert "&lt;&>" in detail
    assert "\x1b" not in detail and "\x01" not in detail
    assert "\\\\x1b[31mred" in detail


def test_steps_with_pipes_and_newlines_stay_on_one_row():
    rows = section(markdown(failed_run()), "Steps")
    assert len(rows) == 5
    assert cells(rows[2])[4] == "Set-Mailbox on Zoë Müller \\| Ωmega<br>second line"


def test_inline_escaping():
    assert inline("a|b") == "a\\|b"
    assert inline("a\\|b") == "a\\\\\\|b"  # a literal backslash stays one when rendered
    assert inline("x\r\ny\rz\n") == "x<br>y<br>z"
    assert inline("<script>") == "&lt;script>"
    assert inline("\x00") == "\\\\x00"


def test_thresholds_and_cycles_tables():
    text = markdown(failed_run())
    rows = section(text, "Thresholds")
    assert cells(rows[2]) == ["cycle_seconds", "max 30", "41.25", "**EXCEEDED**"]
    assert cells(rows[3]) == ["objects_per_second", "min 100", "1,176.5", "held"]
    rows = section(text, "Cycles")
    assert cells(rows[0]) == [
        "step",
        "mode",
        "objects",
        "Success",
        "Failure",
        "Skipped",
        "updates",
        "seconds",
        "objects/s",
        "job state",
    ]
    assert cells(rows[2]) == ["2", "full", "200", "190", "3", "7", "190", "41.25", "4.8", "Active"]


def test_a_stopped_cycle_says_why():
    run = passed_run()
    run["cycles"][0].update(jobState="Quarantine", stopped="mass-change threshold exceeded")
    rows = section(markdown(run), "Cycles")
    assert cells(rows[2])[-1] == "Quarantine; stopped: mass-change threshold exceeded"


def test_warnings_merge_the_cycles_once():
    run = failed_run()
    run["cycles"].append(dict(run["cycles"][0], step=4))
    run["cycles"][0]["warnings"].append(run["warnings"][0])  # already a run warning
    assert section(markdown(run), "Warnings") == [
        "- profile ga: tenant is within the 600,000 limit",
        "- target msExchFoo is undocumented (steps 2, 4)",
    ]


def test_error_is_fenced_and_empty_sections_are_left_out():
    run = error_run()
    run["error"] = "boom ``` inside\nline 2 " + HOSTILE
    text = markdown(run)
    assert "**Error:**\n\n````\nboom ``` inside\nline 2 <&>" in text
    assert "\n````\n" in text.split("line 2", 1)[1]
    assert "No expectations." in section(text, "Expectations")
    for title in ("Thresholds", "Cycles"):
        assert f"## {title}" not in text
    assert "## Error" not in markdown(passed_run())
    assert "**Error:**" not in markdown(passed_run())

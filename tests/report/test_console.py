import io

import pytest
from rich.console import Console

from harness.report.console import print_summary
from tests.report.samples import HOSTILE, cycle, error_run, failed_run, passed_run

RED = "\x1b[31m"


def render(results, width: int = 160) -> tuple[str, str]:
    """(plain text, text with ANSI styles) of print_summary's output."""
    console = Console(
        record=True, width=width, force_terminal=True, color_system="standard", file=io.StringIO()
    )
    print_summary(console, results)
    return console.export_text(clear=False), console.export_text(styles=True)


def row(plain: str, start: str, end: str) -> str:
    """The lines of a table row from the one holding `start` to the next holding `end`."""
    lines = plain.splitlines()
    first = next(i for i, line in enumerate(lines) if start in line)
    last = next(i for i in range(first + 1, len(lines)) if end in lines[i])
    return "\n".join(lines[first:last])


def test_one_table_per_scenario_with_steps_expectations_and_cycle_figures():
    plain, _ = render([passed_run(), failed_run()])
    assert plain.count("┏") == 2
    assert "quickstart  scenarios/quickstart.yaml" in plain
    cycle = row(plain, "│ 2 │ cycle", "│ 3 │ expect")
    for figures in ("full: 10,000 objects", "9,500 ok, 0 failed, 500 skipped", "1,176.5/s"):
        assert figures in cycle
    assert "9,500 updates, 1,176.5/s, Active" in cycle
    assert "2 met" in row(plain, "│ 3 │ expect", "└")
    assert "3 steps · expectations: 2 met, 0 failed · thresholds: 1 held, 0 exceeded" in plain
    assert "3 steps · expectations: 1 met, 2 failed · thresholds: 1 held, 1 exceeded" in plain


def test_failures_are_listed_with_their_detail_in_red():
    plain, styled = render([failed_run()])
    assert "FAILED step 3 line 31: ad_values: proxyAddresses of Zoë Müller" in plain
    assert "FAILED step 3 line 35: status_counts: Failure 3" in plain
    assert "EXCEEDED threshold cycle_seconds: measured 41.25, limit max 30" in plain
    assert "FAILED step 3 line 26" not in plain  # a met expectation is not a failure
    for text in ("FAILED step 3 line 35", "EXCEEDED threshold cycle_seconds"):
        before = styled.split(text, 1)[0]
        assert before.rfind(RED) > before.rfind("\x1b[0m"), f"{text} is not red"


def test_control_characters_and_markup_are_shown_not_obeyed():
    run = failed_run()
    # The edit step: a cycle step's row shows its cycle's figures instead of its summary.
    run["steps"][0]["summary"] = "[bold]not markup[/bold] " + HOSTILE
    plain, styled = render([run], width=400)
    assert "[bold]not markup[/bold]" in plain
    assert "\\x1b[31mred" in plain and "\\x01" in plain
    assert "\x1b[31mred" not in styled and "\x01" not in styled


def test_one_verdict_line_per_scenario_at_the_end_with_results_path():
    failed = dict(failed_run(), results_dir="results/proxy-addresses/20250301T120000Z")
    plain, styled = render([passed_run(), failed, error_run()])
    tail = plain.rstrip().splitlines()[-3:]
    assert tail == [
        "PASSED quickstart (12.35 s)",
        "FAILED proxy-addresses (12.35 s)  results/proxy-addresses/20250301T120000Z",
        "ERROR faults (12.35 s)",
    ]
    assert "error: step 2 (cycle, line 22): LDAP busy (51) after 5 tries <&>" in plain
    assert "\x1b[1;32mPASSED" in styled
    assert "\x1b[1;31mFAILED" in styled


def _wide_and_narrow_run():
    """A run with a full and a dry-run cycle, a long step summary and a long failure detail."""
    run = failed_run()
    run["steps"].insert(
        2,
        {
            "index": 4,
            "kind": "cycle",
            "line": 24,
            "seconds": 0.5,
            "summary": "dry-run cycle: 1 object(s), 0 success, 0 failed, 1 skipped",
            "figures": {},
        },
    )
    run["steps"][0]["summary"] = " ".join(
        ["Set-Mailbox CustomAttribute1-through-CustomAttribute15"] * 4
    )
    run["cycles"].append(cycle(4, "dry-run", 0, 0, 1, seconds=0.5, actions={"Update": 1}))
    run["results_dir"] = "results/proxy-addresses/20250301T120000Z"
    return run


@pytest.mark.parametrize("width", [80, 160])
def test_the_summary_fits_the_width_and_shows_each_cycle_once(width):
    run = _wide_and_narrow_run()
    plain, _ = render([run], width=width)
    lines = plain.splitlines()
    assert max(len(line) for line in lines) <= width
    # One cell per cycle: its figures, not the step summary that repeats them.
    assert plain.count("full: 200 objects") == 1
    assert plain.count("dry-run: 1 object") == 1
    assert "dry-run cycle:" not in plain
    # Identifiers wrap whole: never split across lines.
    words = {w for line in lines for w in line.replace("│", " ").split()}
    assert "CustomAttribute1-through-CustomAttribute15" in words
    assert "proxy-addresses" in words and "results/proxy-addresses/20250301T120000Z" in words


def test_a_dry_run_says_what_it_skipped_and_planned():
    plain, _ = render([_wide_and_narrow_run()], width=160)
    assert "0 ok, 0 failed, 1 skipped (dry run)" in plain
    assert "1 update planned" in plain
    assert "1 updates" not in plain and "1 objects" not in plain


def test_a_narrow_console_leaves_out_the_line_column():
    narrow, _ = render([passed_run()], width=80)
    wide, _ = render([passed_run()], width=160)
    assert " line " not in narrow and " line " in wide

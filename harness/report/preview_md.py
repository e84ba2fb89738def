"""preview.md: the dry-run preview as GitHub-flavoured Markdown, short enough for a PR comment.

Totals, changes by attribute, predicted failures and skip reasons in full; the per-object rows
only up to `MAX_ROWS` (failures first), pointing to preview.csv for the rest.
"""

from __future__ import annotations

from collections.abc import Mapping
from itertools import islice
from typing import Any

from harness.report.markdown import inline, table
from harness.report.preview_csv import rows

MAX_ROWS = 200


def render_markdown(preview: Mapping[str, Any], max_rows: int = MAX_ROWS) -> str:
    o = preview["outcomes"]
    out = [
        f"# First writeback cycle preview (profile {inline(str(preview['profile']))})",
        "",
        f"**{o['change']:,}** objects would change, **{o['failure']:,}** would fail, "
        f"**{o['skipped']:,}** skipped, **{o['unchanged']:,}** already match.",
        "",
        f"Access: {inline(preview['access'])}.",
        "",
    ]
    if preview.get("massChangeGuard"):
        out += [f"**Mass-change guard:** {inline(preview['massChangeGuard'])}.", ""]
    out += ["## Changes by attribute", ""]
    out += table(
        ["attribute", "would be written", "would fail"],
        [[a, c["change"], c["failure"]] for a, c in preview["byAttribute"].items()],
        align="-rr",
    ) or ["No attribute would change."]
    out.append("")
    if preview["failures"]:
        out += ["## Predicted failures", ""]
        out += table(["code: problem", "objects"], preview["failures"].items(), align="-r")
        out.append("")
    if preview["skipped"]:
        out += ["## Skipped", ""]
        out += table(["reason", "objects"], preview["skipped"].items(), align="-r")
        out.append("")
    all_rows = [r for r in rows(preview) if r[6] != "skipped"]
    if all_rows:
        out += ["## Objects", ""]
        shown = list(islice(all_rows, max_rows))
        out += table(
            ["DN", "UPN", "attribute", "old", "new", "outcome", "error"],
            [
                [dn, upn or sid, attr, old, new, outcome, f"{code}: {diag}" if code else reason]
                for dn, upn, sid, attr, old, new, outcome, code, diag, reason in shown
            ],
        )
        if len(all_rows) > len(shown):
            out += ["", f"{len(shown):,} of {len(all_rows):,} rows; preview.csv has them all."]
        out.append("")
    return "\n".join(out)

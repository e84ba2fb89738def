"""The decommission report: a Markdown checklist and the same content as JSON."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from harness.report import GENERATED_BY
from harness.report.markdown import inline, table
from harness.report.text import printable
from harness.tenant.files import write_atomic

JSON_NAME = "decommission.json"
MARKDOWN_NAME = "decommission.md"
_MARK = {"done": "[x]", "pending": "[ ]", "failed": "[ ] **FAILED**"}


def write(result: dict[str, Any], out_dir: Path) -> dict[str, Path]:
    """Write decommission.json and decommission.md into `out_dir`; their paths by kind."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"json": out_dir / JSON_NAME, "markdown": out_dir / MARKDOWN_NAME}
    body = {"generatedBy": GENERATED_BY, **result}
    write_atomic(paths["json"], [json.dumps(body, indent=2, ensure_ascii=False) + "\n"])
    write_atomic(paths["markdown"], [markdown(result)])
    return paths


def _code(text: str) -> str:
    """`text` as an inline code span: nothing inside is escaped, so the fence outgrows any
    run of backticks in it."""
    text = " ".join(printable(text).split())
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def markdown(r: dict[str, Any]) -> str:
    title = "Plan" if r["mode"] == "plan" else "Execution"
    lines = [
        f"# Decommission of the last Exchange Server: {title.lower()} ({r['path']})",
        "",
        f"Server **{r['server']}**, now {r['serverState']}. "
        + (
            "**Blocked**: the plan cannot run until every blocker below is resolved."
            if r["blocked"]
            else ("Every step is done." if r["finished"] else "Nothing blocks the plan.")
        ),
        "",
    ]
    if r.get("refused"):
        lines += [f"Refused: {inline(r['refused'])}", ""]
    if r.get("error"):
        lines += [f"**Stopped**: {inline(r['error'])}. Run it again to resume from there.", ""]
    inv = r["inventory"]
    lines += ["## Inventory", ""]
    rows = [(k, v) for k, v in inv.items() if k != "dns"]
    rows = [(k, ", ".join(map(str, v)) if isinstance(v, list) else v) for k, v in rows]
    lines += [*table(("what", "found"), rows), ""]
    if inv.get("dns"):
        dns_rows = [
            (d, ", ".join(v.get("MX") or ["-"]), ", ".join(v.get("autodiscover") or ["-"]))
            for d, v in inv["dns"].items()
        ]
        lines += [*table(("domain", "MX", "autodiscover"), dns_rows), ""]
    lines += ["## Blockers", ""]
    if not r["blockers"]:
        lines += ["None.", ""]
    for b in r["blockers"]:
        lines += [
            f"### {b['code']}: {inline(b['title'])}",
            "",
            f"- Found by: {inline(b['source'])}",
            f"- Objects ({b['count']}): "
            + ", ".join(f"`{inline(x)}`" for x in b["examples"])
            + (" ..." if b["count"] > len(b["examples"]) else ""),
            f"- Remedy: {inline(b['remedy'])}",
            "",
        ]
    lines += ["## Steps", ""]
    phase = None
    for st in r["steps"]:
        if st["phase"] != phase:
            phase = st["phase"]
            lines += [f"### {phase}", ""]
        mark = _MARK.get(st["status"], "[ ]")
        lines.append(f"- {mark} **{st['id']}**: {inline(st['title'])} ({st['side']})")
        lines.append(f"  - Command: {_code(st['command'])}")
        lines.append(f"  - Precondition: {inline(st['precondition'])}")
        lines.append(f"  - Verification: {inline(st['verification'])}")
        if st.get("remaining"):
            lines.append(f"  - Remaining: {inline(', '.join(st['remaining']))}")
        if st.get("detail"):
            lines.append(f"  - Done: {inline(st['detail'])}")
    lines.append("")
    if r["path"] == "management-tools":
        lines += [
            "### Not on this path",
            "",
            "- Uninstalling the server: the Management Tools need the Exchange information in "
            "Active Directory that an uninstall removes. Shut the server down and reformat it.",
            "",
        ]
    lines += ["## Troubleshooting", ""]
    if not r["leftovers"]:
        lines += ["Nothing to report until the server step is done.", ""]
    for item in r["leftovers"]:
        lines.append(f"- {inline(item['what'])}. {inline(item['remedy'])}")
    lines += ["", f"Journal: `{inline(r['journal'])}`", ""]
    return "\n".join(lines)

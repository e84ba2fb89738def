"""preview.html: the dry-run preview as one self-contained page a person reads in a browser.

Everything is inline (styles, the chart as SVG, a few lines of vanilla JavaScript), so the page
opens from a file or a CI artifact with no network. The chart of changes by attribute is drawn
by matplotlib (to SVG, text kept as text, `svg.hashsalt` fixed and no date metadata, so the
same preview gives the same bytes). The per-object table filters by a text box (DN, UPN,
attribute, values) and by outcome. Every value is escaped with `html.escape`; the page embeds at
most `MAX_ROWS` rows and says so, pointing to preview.csv for the rest.
"""

from __future__ import annotations

import html
import io
from collections.abc import Mapping
from typing import Any

from harness.report.preview_csv import rows
from harness.report.text import figure, printable

MAX_ROWS = 20_000
OUTCOMES = ("failure", "change", "skipped")
_COLOURS = {"change": "#2b6cb0", "failure": "#c53030"}
_LABELS = {"change": "would be written", "failure": "would fail"}


def chart_svg(by_attribute: Mapping[str, Mapping[str, int]]) -> str:
    """A horizontal stacked bar per attribute (would be written, would fail), as inline SVG.

    Each bar is a group with id ``bar-<attribute>-<outcome>`` so it can be found in the page.
    """
    from matplotlib import rc_context
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    names = list(by_attribute)
    with rc_context({"svg.hashsalt": "exwb-preview", "svg.fonttype": "none"}):
        fig = Figure(figsize=(8, 0.45 * len(names) + 1.2), layout="constrained")
        ax = fig.add_subplot()
        y = list(range(len(names)))[::-1]  # the largest at the top
        left = [0] * len(names)
        for outcome in ("change", "failure"):
            counts = [by_attribute[n].get(outcome, 0) for n in names]
            bars = ax.barh(y, counts, left=left, color=_COLOURS[outcome], label=_LABELS[outcome])
            for name, bar, n in zip(names, bars, counts, strict=True):
                bar.set_gid(f"bar-{name}-{outcome}")
                bar.set_visible(n > 0)
            left = [a + b for a, b in zip(left, counts, strict=True)]
        ax.set_yticks(y, names)
        ax.set_xlabel("objects")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        fig.legend(loc="outside lower center", ncols=2, frameon=False)
        ax.spines[["top", "right"]].set_visible(False)
        buf = io.StringIO()
        fig.savefig(buf, format="svg", metadata={"Date": None})
    svg = buf.getvalue()
    return svg[svg.index("<svg") :]  # inline: no XML declaration or DOCTYPE


_STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:2rem;color:#1a202c}
h1{font-size:1.5rem}h2{font-size:1.15rem;margin-top:2rem}
.note{background:#fefcbf;border-left:4px solid #d69e2e;padding:.5rem 1rem}
.warn{background:#fed7d7;border-left:4px solid #c53030;padding:.5rem 1rem}
table{border-collapse:collapse;font-size:.85rem}
th,td{border:1px solid #cbd5e0;padding:.25rem .5rem;text-align:left;vertical-align:top}
th{background:#edf2f7;position:sticky;top:0}
td.v{font-family:ui-monospace,Consolas,monospace;white-space:pre-wrap}
td.v div{max-height:7.5em;overflow:auto}td{overflow-wrap:anywhere}
#objects{width:100%;table-layout:fixed}
td.o{overflow-wrap:normal;white-space:nowrap}
tr.failure td.o{color:#c53030;font-weight:600}tr.change td.o{color:#2b6cb0}
.controls{margin:1rem 0;display:flex;gap:1rem;align-items:center}
.controls input{width:28rem;padding:.3rem}
#chart svg{max-width:100%;height:auto}
"""

_SCRIPT = """
(function(){
  var q=document.getElementById('filter'),o=document.getElementById('outcome'),
      n=document.getElementById('shown'),rows=document.querySelectorAll('#objects tbody tr');
  function apply(){
    var t=q.value.toLowerCase(),w=o.value,k=0;
    rows.forEach(function(r){
      var show=(!w||r.dataset.outcome===w)&&(!t||r.textContent.toLowerCase().indexOf(t)>=0);
      r.hidden=!show;if(show)k++;
    });
    n.textContent=k+' of '+rows.length+' rows shown';
  }
  q.addEventListener('input',apply);o.addEventListener('change',apply);apply();
})();
"""


def render_html(preview: Mapping[str, Any], max_rows: int = MAX_ROWS) -> str:
    """The page for a preview (`Preview.as_dict()`)."""
    e = _escape
    outcomes = preview["outcomes"]
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:\">",
        f"<title>First writeback cycle preview: profile {e(preview['profile'])}</title>",
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>First writeback cycle preview (profile {e(preview['profile'])})</h1>",
        '<p id="summary">'
        + ", ".join(
            f"<b>{figure(outcomes.get(k, 0))}</b> {label}"
            for k, label in (
                ("change", "objects would change"),
                ("failure", "would fail"),
                ("skipped", "skipped"),
                ("unchanged", "already match"),
            )
        )
        + ".</p>",
        f'<p class="note" id="access">Access: {e(preview["access"])}.</p>',
    ]
    if preview.get("massChangeGuard"):
        out.append(f'<p class="warn" id="guard">{e(preview["massChangeGuard"])}.</p>')
    by_attribute = preview["byAttribute"]
    out.append("<h2>Changes by attribute</h2>")
    if by_attribute:
        out.append(f'<div id="chart">{chart_svg(by_attribute)}</div>')
    else:
        out.append('<p id="chart">No attribute would change.</p>')
    for title, key, ident in (
        ("Predicted failures", "failures", "failures"),
        ("Skipped", "skipped", "skips"),
    ):
        counts = preview[key]
        if counts:
            out.append(f'<h2>{title}</h2><table id="{ident}"><tbody>')
            out += [f"<tr><td>{e(k)}</td><td>{figure(v)}</td></tr>" for k, v in counts.items()]
            out.append("</tbody></table>")
    out += _table(preview, max_rows)
    out += [f"<script>{_SCRIPT}</script>", "</body></html>", ""]
    return "\n".join(out)


def _table(preview: Mapping[str, Any], max_rows: int) -> list[str]:
    e = _escape
    out = [
        "<h2>Objects</h2>",
        '<div class="controls"><input id="filter" type="search" '
        'placeholder="Filter by DN, UPN, attribute or value" aria-label="filter">',
        '<select id="outcome" aria-label="outcome"><option value="">every outcome</option>'
        + "".join(f'<option value="{o}">{o}</option>' for o in OUTCOMES)
        + '</select><span id="shown"></span></div>',
    ]
    head = ("DN", "UPN", "attribute", "old", "new", "outcome", "error")
    widths = (20, 13, 11, 18, 18, 6, 14)  # per cent
    body = []
    total = 0
    for dn, upn, sid, attr, old, new, outcome, code, diag, reason in rows(
        preview, "\n"
    ):  # one value a line
        total += 1
        if total > max_rows:
            continue
        error = f"{code}: {diag.strip()}" if code else reason
        cells = (
            f"<td>{e(dn)}</td><td>{e(upn or sid)}</td><td>{e(attr)}</td>"
            f'<td class="v"><div>{e(old)}</div></td><td class="v"><div>{e(new)}</div></td>'
            f'<td class="o">{e(outcome)}</td><td class="v e"><div>{e(error)}</div></td>'
        )
        body.append(f'<tr class="{e(outcome)}" data-outcome="{e(outcome)}">{cells}</tr>')
    if total > max_rows:
        out.append(
            f'<p class="note" id="capped">The first {figure(max_rows)} of {figure(total)} rows '
            "are shown here; preview.csv beside this page has all of them.</p>"
        )
    out.append('<table id="objects"><colgroup>')
    out.append("".join(f'<col style="width:{w}%">' for w in widths) + "</colgroup><thead><tr>")
    out.append("".join(f"<th>{h}</th>" for h in head) + "</tr></thead><tbody>")
    out += body
    out.append("</tbody></table>")
    return out


def _escape(value: object) -> str:
    return html.escape(printable(str(value)), quote=True)

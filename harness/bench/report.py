"""bench.json and bench.md: the machine, every size's figures, and the issue's targets.

A target names the size it is judged at (200,000 mailboxes, as the issue states them) and the
figure it reads; when that size was not run its value and `met` are null, and `at_largest`
shows the same figure at the largest size measured, for information only.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.bench.measure import machine_line
from harness.report.text import figure

FORMAT = "exwb-bench/1"
TARGET_SIZE = 200_000
BASELINE_SIZE = 20_000
GIB_MIB = 1024.0
RESOLUTION_S = 0.001  # the engine's report rounds its seconds to this

Result = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Target:
    id: str
    text: str
    figure: str  # where the value comes from, in words
    limit: float
    op: str  # "<=" or ">="
    read: Callable[[Result], float | None]  # the value in one size's result

    def met(self, value: float | None) -> bool | None:
        if value is None:
            return None
        return value <= self.limit if self.op == "<=" else value >= self.limit


def _get(result: Result, *path: str) -> float | None:
    node: Any = result
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node if isinstance(node, int | float) and not isinstance(node, bool) else None


TARGETS: tuple[Target, ...] = (
    Target(
        "full_cycle",
        "full cycle, every in-scope mailbox changed, <= 60 s",
        "full_cycle wall_s (the `exwb cycle` process, end to end)",
        60.0,
        "<=",
        lambda r: _get(r, "phases", "full_cycle", "wall_s"),
    ),
    Target(
        "engine_over_floor",
        "engine modify throughput >= 1.0x the ldap3-loop floor (same fake)",
        "full_cycle modifies_per_s / floor modifies_per_s",
        1.0,
        ">=",
        lambda r: _get(r, "ratios", "engine_over_floor"),
    ),
    Target(
        "tls_overhead",
        "full cycle over LDAPS + HTTPS (signed tokens) <= 1.15x the plain one",
        "tls_full_cycle cycle_s / full_cycle cycle_s (the same edits, one run)",
        1.15,
        "<=",
        lambda r: _get(r, "ratios", "tls_over_plain"),
    ),
    Target(
        "delta_cycle",
        "1% delta cycle <= 3 s",
        "delta_cycle cycle_s (the cycle's own time, without interpreter start-up)",
        3.0,
        "<=",
        lambda r: _get(r, "phases", "delta_cycle", "cycle_s"),
    ),
    Target(
        "no_change_cycle",
        "no-change delta cycle <= 1 s",
        "no_change_cycle cycle_s (the cycle's own time, without interpreter start-up)",
        1.0,
        "<=",
        lambda r: _get(r, "phases", "no_change_cycle", "cycle_s"),
    ),
    Target(
        "verify",
        "exwb verify <= 30 s",
        "verify wall_s (the `exwb verify` process)",
        30.0,
        "<=",
        lambda r: _get(r, "phases", "verify", "wall_s"),
    ),
    Target(
        "peak_rss",
        "peak RSS of servers + engine <= 3 GiB",
        "serve VmHWM + the largest engine child's peak RSS, GiB",
        3.0,
        "<=",
        lambda r: (
            None
            if (v := _get(r, "memory", "servers_plus_engine_mib")) is None
            else round(v / GIB_MIB, 3)
        ),
    ),
    Target(
        "fake_over_slapd",
        "fake directory modify throughput >= 0.5x slapd's",
        "floor modifies_per_s / slapd_floor modifies_per_s (the same ldap3 loop)",
        0.5,
        ">=",
        lambda r: _get(r, "ratios", "fake_over_slapd_floor"),
    ),
)

NO_CHANGE_SCALING = Target(
    "no_change_scaling",
    "no-change delta at the largest size <= 2x at 20,000",
    "no_change_cycle cycle_s at the largest size / at the baseline size",
    2.0,
    "<=",
    lambda r: _get(r, "phases", "no_change_cycle", "cycle_s"),
)


def _by_size(results: list[Result]) -> dict[int, Result]:
    return {int(r["mailboxes"]): r for r in results}


def targets(results: list[Result]) -> list[dict[str, Any]]:
    """The targets table: one row per target, with its value and whether it was met."""
    sizes = _by_size(results)
    largest = max(sizes) if sizes else None
    rows = []
    for t in TARGETS:
        at = sizes.get(TARGET_SIZE)
        value = t.read(at) if at is not None else None
        row: dict[str, Any] = {
            "id": t.id,
            "target": t.text,
            "figure": t.figure,
            "size": TARGET_SIZE,
            "limit": t.limit,
            "op": t.op,
            "value": value,
            "met": t.met(value),
        }
        if largest is not None:
            row["at_largest"] = {"size": largest, "value": t.read(sizes[largest])}
        rows.append(row)
    rows.append(_scaling_row(sizes, largest))
    return rows


def baseline_size(sizes: list[int]) -> int | None:
    """20,000 when it was measured, else the nearest smaller size measured below the largest."""
    if len(sizes) < 2:
        return None
    largest = max(sizes)
    below = [s for s in sizes if s <= BASELINE_SIZE and s < largest]
    return max(below) if below else None


def _scaling_row(sizes: dict[int, Result], largest: int | None) -> dict[str, Any]:
    t = NO_CHANGE_SCALING
    base = baseline_size(list(sizes))
    value = None
    notes = []
    if base is not None and base != BASELINE_SIZE:
        notes.append(f"20,000 was not measured: the baseline is {base:,}, the nearest smaller size")
    if base is not None and largest is not None:
        big, small = t.read(sizes[largest]), t.read(sizes[base])
        if big is not None and small is not None:
            if min(big, small) < 5 * RESOLUTION_S:
                notes.append(
                    "the cycle report gives seconds to 0.001, so a no-change cycle this short "
                    "makes a coarse ratio (computed with 0.001 s as the least value)"
                )
            value = round(max(big, RESOLUTION_S) / max(small, RESOLUTION_S), 2)
    note = "; ".join(notes) or None
    return {
        "id": t.id,
        "target": t.text,
        "figure": t.figure,
        "size": largest,
        "baseline_size": base,
        "baseline_note": note,
        "limit": t.limit,
        "op": t.op,
        "value": value,
        "met": t.met(value),
    }


def bench_json(
    *,
    machine: dict[str, Any],
    options: dict[str, Any],
    slapd: dict[str, Any],
    results: list[Result],
    samba: dict[str, Any] | None = None,
    started: str,
    finished: str,
    command: str,
) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "command": command,
        "started": started,
        "finished": finished,
        "machine": machine,
        "options": options,
        "slapd": slapd,
        "samba": samba or {"ran": False, "skipped": "not asked for"},
        "sizes": results,
        "targets": targets(results),
    }


# --- Markdown ---

PHASE_LABELS: dict[str, str] = {
    "generate": "generate tenant",
    "serve": "serve start-up",
    "initial_cycle": "initial cycle",
    "cloud_edits": "cloud edits (all)",
    "full_cycle": "full cycle",
    "tls_edits": "cloud edits (all, again)",
    "tls_full_cycle": "full cycle (LDAPS + HTTPS)",
    "delta_edits": "cloud edits (delta)",
    "delta_cycle": "delta cycle",
    "no_change_cycle": "no-change delta",
    "verify": "verify",
    "floor": "floor (fake)",
    "slapd_start": "slapd start-up",
    "slapd_full_cycle": "full cycle (slapd)",
    "slapd_floor": "floor (slapd)",
    "samba_start": "Samba prepare and start-up",
    "samba_full_cycle": "full cycle (Samba)",
    "samba_floor": "floor (Samba)",
}


def phase_row(name: str, f: dict[str, Any]) -> list[str]:
    """label, wall s, cycle s, objects, objects/s, modifies/s, engine CPU, server CPU, peak RSS."""
    peak = f.get("engine_peak_rss_mib", f.get("peak_rss_mib", f.get("rss_mib")))
    return [
        PHASE_LABELS.get(name, name),
        figure(f.get("wall_s"), 2, fixed=True),
        figure(f.get("cycle_s"), 2, fixed=True),
        figure(f.get("objects", f.get("modifies")), 1, fixed=True),
        figure(f.get("objects_per_s"), 0, fixed=True),
        figure(f.get("modifies_per_s"), 0, fixed=True),
        figure(f.get("engine_cpu_s", f.get("cpu_s")), 1, fixed=True),
        figure(f.get("server_cpu_s"), 1, fixed=True),
        figure(peak, 0, fixed=True),
    ]


PHASE_COLUMNS = (
    "phase",
    "wall s",
    "cycle s",
    "objects",
    "objects/s",
    "modifies/s",
    "engine CPU s",
    "server CPU s",
    "peak RSS MiB",
)


def target_row(t: dict[str, Any]) -> list[str]:
    met = {True: "met", False: "MISSED", None: "not run"}[t["met"]]
    at = figure(t["size"], 1, fixed=True) if t["size"] is not None else "-"
    if t["id"] == "no_change_scaling" and t.get("baseline_size"):
        at = f"{t['size']:,} vs {t['baseline_size']:,}"
    shown = figure(t["value"], 2, fixed=True)
    if t["value"] is None and t.get("at_largest", {}).get("value") is not None:
        largest = t["at_largest"]
        shown = f"- ({figure(largest['value'], 2, fixed=True)} at {largest['size']:,})"
    return [t["target"], at, shown, f"{t['op']} {figure(t['limit'], 1, fixed=True)}", met]


TARGET_COLUMNS = ("target", "at", "measured", "limit", "result")


def _md_table(columns: tuple[str, ...], rows: list[list[str]]) -> list[str]:
    right = ["---" if i == 0 else "---:" for i in range(len(columns))]
    lines = ["| " + " | ".join(columns) + " |", "| " + " | ".join(right) + " |"]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return lines


def bench_markdown(doc: dict[str, Any]) -> str:
    lines = [
        f"Machine: {machine_line(doc['machine'])}. Run {doc['started']} (`{doc['command']}`).",
        "",
    ]
    slapd = doc["slapd"]
    if slapd.get("skipped"):
        lines += [f"slapd half not run: {slapd['skipped']}.", ""]
    samba = doc.get("samba", {})
    if samba.get("skipped"):
        lines += [f"Samba half not run: {samba['skipped']}.", ""]
    for r in doc["sizes"]:
        lines += [f"### {r['mailboxes']:,} mailboxes ({r['objects']:,} objects)", ""]
        if r.get("error"):
            lines += [f"**Failed**, figures up to the failure only: {r['error']}", ""]
        rows = [phase_row(name, f) for name, f in r["phases"].items()]
        lines += _md_table(PHASE_COLUMNS, rows)
        m, q = r["memory"], r["ratios"]
        lines += [
            "",
            f"Peak RSS: exwb serve {figure(m['serve_peak_rss_mib'], 0, fixed=True)} MiB, engine "
            f"{figure(m['engine_peak_rss_mib'], 0, fixed=True)} MiB (together "
            f"{figure(m['servers_plus_engine_mib'], 0, fixed=True)} MiB), slapd "
            f"{figure(m['slapd_peak_rss_mib'], 0, fixed=True)} MiB, generator "
            f"{figure(m['generate_peak_rss_mib'], 0, fixed=True)} MiB. Engine / floor "
            f"{figure(q['engine_over_floor'], 2, fixed=True)} (fake), "
            f"{figure(q['engine_over_floor_slapd'], 2, fixed=True)} (slapd); fake / slapd modify "
            f"throughput {figure(q['fake_over_slapd_floor'], 2, fixed=True)} "
            f"(floor), {figure(q['fake_over_slapd_cycle'], 2, fixed=True)} (full cycle). "
            f"TLS / plain full cycle {figure(q.get('tls_over_plain'), 3, fixed=True)}.",
        ]
        if q.get("fake_over_samba_floor") is not None or q.get("fake_over_samba_cycle"):
            lines.append(
                f"Samba peak RSS {figure(m.get('samba_peak_rss_mib'), 0, fixed=True)} MiB; fake /"
                f" Samba modify throughput {figure(q.get('fake_over_samba_floor'), 2, fixed=True)}"
                f" (floor), {figure(q.get('fake_over_samba_cycle'), 2, fixed=True)} (full cycle)."
            )
        lines += [f"Note: {n}." for n in r.get("notes", [])]
        lines.append("")
    lines += ["### Targets", ""]
    lines += _md_table(TARGET_COLUMNS, [target_row(t) for t in doc["targets"]])
    notes = [t["baseline_note"] for t in doc["targets"] if t.get("baseline_note")]
    lines += ["", *(f"Note: {n}." for n in notes)] if notes else []
    lines += ["", "![time and memory against tenant size](bench.svg)", ""]
    return "\n".join(lines)


def write_reports(doc: dict[str, Any], out: Path, svg: str) -> dict[str, Path]:
    """Write bench.json, bench.md and bench.svg into `out` (created)."""
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "json": out / "bench.json",
        "md": out / "bench.md",
        "svg": out / "bench.svg",
    }
    paths["json"].write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    paths["md"].write_text(bench_markdown(doc), encoding="utf-8")
    paths["svg"].write_text(svg, encoding="utf-8")
    return paths

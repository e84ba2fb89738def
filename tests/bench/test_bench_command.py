"""`exwb bench`: an end-to-end run at two small sizes, bad input, and the chart on its own.

Figures are checked for shape and sign only: wall-clock values depend on the machine and are
never compared with a limit here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

from harness.bench.chart import chart_svg
from harness.bench.report import TARGETS, baseline_size, bench_markdown, targets
from harness.cli import main
from harness.commands.bench import parse_sizes
from mockservers.reference_samba import samba_available
from mockservers.reference_slapd import slapd_available

SVG = "{http://www.w3.org/2000/svg}"
FAKE_PHASES = (
    "generate",
    "serve",
    "initial_cycle",
    "cloud_edits",
    "full_cycle",
    "delta_edits",
    "delta_cycle",
    "no_change_cycle",
    "tls_edits",
    "tls_full_cycle",
    "verify",
    "floor",
)
SLAPD_PHASES = ("slapd_start", "slapd_full_cycle", "slapd_floor")
SAMBA_PHASES = ("samba_start", "samba_full_cycle", "samba_floor")
RATE_OF = {"objects": "objects_per_s", "modifies": "modifies_per_s"}


def _want_slapd() -> bool:
    """Run the slapd half when slapd is installed; under CI its absence is a failure."""
    if slapd_available():
        return True
    if os.environ.get("CI"):
        pytest.fail("OpenLDAP slapd is not installed; CI is set, so this is an error", False)
    return False


def _want_samba() -> bool:
    """Run the Samba half when Samba's AD DC is installed and we are root; under CI its absence
    is a failure."""
    if samba_available() and os.geteuid() == 0:
        return True
    if os.environ.get("CI"):
        pytest.fail("Samba's AD DC is not runnable here; CI is set, so this is an error", False)
    return False


def _panels(svg_text: str) -> list[ET.Element]:
    root = ET.fromstring(svg_text)
    assert root.tag == f"{SVG}svg"
    return [g for g in root.iter(f"{SVG}g") if g.get("class") == "panel"]


@pytest.fixture(scope="module")
def bench_run(tmp_path_factory):
    results = tmp_path_factory.mktemp("results")
    with_slapd, with_samba = _want_slapd(), _want_samba()
    argv = [sys.executable, "-m", "harness", "bench", "--sizes", "300,600"]
    argv += ["--results", str(results)] + ([] if with_slapd else ["--no-slapd"])
    argv += [] if with_samba else ["--no-samba"]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (out,) = (results / "bench").iterdir()
    return proc, out, with_slapd, with_samba


def test_bench_writes_json_markdown_and_chart(bench_run):
    proc, out, with_slapd, with_samba = bench_run
    assert sorted(p.name for p in out.iterdir()) == ["bench.json", "bench.md", "bench.svg"]
    doc = json.loads((out / "bench.json").read_text())
    assert doc["format"] == "exwb-bench/1"
    for key in ("cpu", "cores", "memory_gib", "os", "python", "exwb"):
        assert doc["machine"][key], key
    assert doc["slapd"]["ran"] is with_slapd
    assert [r["mailboxes"] for r in doc["sizes"]] == [300, 600]
    assert doc["samba"]["ran"] is with_samba
    expected = FAKE_PHASES + (SLAPD_PHASES if with_slapd else ()) + (SAMBA_PHASES * with_samba)
    for r in doc["sizes"]:
        assert tuple(r["phases"]) == expected
        for name, figures in r["phases"].items():
            assert figures["wall_s"] > 0, name
            for count, rate in RATE_OF.items():
                if figures.get(count):  # a no-change cycle counts 0 objects: no rate to check
                    assert figures[rate] > 0, (name, rate)
        cycles = ("initial_cycle", "full_cycle", "tls_full_cycle", "delta_cycle", "no_change_cycle")
        real = ("slapd_full_cycle",) * with_slapd + ("samba_full_cycle",) * with_samba
        for name in (*cycles, *real):
            f = r["phases"][name]
            assert f["cycle_s"] > 0 and f["engine_cpu_s"] > 0 and f["engine_peak_rss_mib"] > 0
        p = r["phases"]
        assert p["initial_cycle"]["modifies"] == 0  # a consistent tenant: nothing to write
        assert p["full_cycle"]["modifies"] == p["cloud_edits"]["objects"] > 0
        # The same edits again, written over LDAPS with tokens from the HTTPS token endpoint.
        assert (
            p["tls_full_cycle"]["modifies"]
            == p["tls_edits"]["objects"]
            == p["full_cycle"]["modifies"]
        )
        assert r["ratios"]["tls_over_plain"] > 0
        assert p["delta_cycle"]["modifies"] == p["delta_edits"]["objects"] > 0
        # The delta cycle reads only the delta edits (the TLS cycle's edits come after it).
        assert p["delta_cycle"]["objects"] == p["delta_edits"]["objects"]
        assert p["no_change_cycle"]["modifies"] == 0
        assert p["verify"]["clean"] is True
        assert p["floor"]["modifies"] == p["full_cycle"]["modifies"]
        assert p["generate"]["peak_rss_mib"] > 0 and p["serve"]["rss_mib"] > 0
        m = r["memory"]
        assert m["serve_peak_rss_mib"] > 0 and m["engine_peak_rss_mib"] > 0
        assert m["servers_plus_engine_mib"] >= m["serve_peak_rss_mib"]
        assert r["ratios"]["engine_over_floor"] > 0
        if with_slapd:
            assert m["slapd_peak_rss_mib"] > 0
            assert r["ratios"]["fake_over_slapd_floor"] > 0
            assert p["slapd_full_cycle"]["modifies"] == p["full_cycle"]["modifies"]
        if with_samba:  # the same edits written into an AD: Samba's schema and ACLs allow them
            assert m["samba_peak_rss_mib"] > 0
            assert r["ratios"]["fake_over_samba_floor"] > 0
            assert p["samba_full_cycle"]["modifies"] == p["full_cycle"]["modifies"]
    rows = {t["id"]: t for t in doc["targets"]}
    assert set(rows) == {t.id for t in TARGETS} | {"no_change_scaling"}
    for t in TARGETS:  # 200,000 was not run: no verdict, but the largest size's figure is shown
        assert rows[t.id]["value"] is None and rows[t.id]["met"] is None
        assert rows[t.id]["at_largest"]["size"] == 600
    scaling = rows["no_change_scaling"]
    assert scaling["size"] == 600 and scaling["baseline_size"] == 300
    assert scaling["value"] > 0 and isinstance(scaling["met"], bool)
    md = (out / "bench.md").read_text()
    assert md.startswith("Machine: ") and "### 300 mailboxes" in md and "### Targets" in md
    assert len(_panels((out / "bench.svg").read_text())) == 2
    assert "Targets" in proc.stdout  # the summary on stdout, progress on stderr
    assert "full cycle" in proc.stderr


@pytest.mark.parametrize("sizes", ["0", "1000001", "abc", "10,,20", "", "-5", "10000;0"], ids=repr)
def test_bad_sizes_exit_2(sizes, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["bench", "--sizes", sizes, "--results", str(tmp_path)])
    assert e.value.code == 2
    assert "--sizes" in capsys.readouterr().err
    assert not (tmp_path / "bench").exists()


def test_bad_changes_exit_2(tmp_path):
    with pytest.raises(SystemExit) as e:
        main(["bench", "--sizes", "10", "--changes", "0", "--results", str(tmp_path)])
    assert e.value.code == 2


def test_sizes_take_thousands_separators():
    assert parse_sizes("10000,50000,200000") == [10_000, 50_000, 200_000]
    assert parse_sizes("200_000, 10_000") == [10_000, 200_000]  # a space separates: sorted
    assert parse_sizes("10,000 200,000") == [10_000, 200_000]
    assert parse_sizes("10,000;600k") == [10_000, 600_000]
    assert parse_sizes("1000000,1000000") == [1_000_000]


def test_missing_ldap3_says_how_to_install_it(tmp_path):
    code = (
        "import sys; sys.modules['ldap3'] = None\n"
        "from harness.cli import main\n"
        f"sys.exit(main(['bench', '--sizes', '10', '--results', {str(tmp_path)!r}]))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "pip install -e '.[bench]'" in proc.stderr and "--no-floor" in proc.stderr


def test_a_failed_step_keeps_the_figures_so_far(tmp_path, monkeypatch):
    from harness.bench import runner
    from harness.bench.measure import ChildRun

    def broken(args, **kw):
        return ChildRun(2, "", "Traceback ...\nNameError: boom", 0.5, 0.1, 40.0)

    monkeypatch.setattr(runner, "run_child", broken)
    lines: list[str] = []
    result = runner.SizeRun(10, runner.BenchOptions([10]), tmp_path, lines.append).run()
    assert "NameError: boom" in result["error"] and result["phases"] == {}
    assert set(result["memory"].values()) == {None}
    assert any("FAILED" in line for line in lines)
    assert len(_panels(chart_svg([result]))) == 2
    doc = {
        "machine": {"cpu": "x", "cores": 2, "memory_gib": 1.0, "os": "y", "python": "z"}
        | {"exwb": "0"},
        "started": "t",
        "command": "exwb bench",
        "slapd": {"ran": False, "skipped": None},
        "sizes": [result],
        "targets": targets([result]),
    }
    assert "**Failed**" in bench_markdown(doc)


def _synthetic(size: int) -> dict:
    k = size / 1000
    phases = {
        "generate": {"wall_s": 0.2 * k + 1, "peak_rss_mib": 60 + k},
        "serve": {"wall_s": 0.3 * k + 1},
        "full_cycle": {"wall_s": 1 + 0.25 * k, "cycle_s": 0.25 * k, "modifies_per_s": 4000.0},
        "no_change_cycle": {"wall_s": 1.0, "cycle_s": 0.02 + 0.0001 * k},
        "verify": {"wall_s": 1 + 0.1 * k},
        "floor": {"wall_s": 0.3 * k, "modifies_per_s": 3000.0},
    }
    memory = {
        "serve_peak_rss_mib": 60 + 5 * k,
        "engine_peak_rss_mib": 55 + 3 * k,
        "servers_plus_engine_mib": 115 + 8 * k,
        "generate_peak_rss_mib": 60 + k,
        "slapd_peak_rss_mib": None,
    }
    ratios = {
        "engine_over_floor": 4000 / 3000,
        "engine_over_floor_slapd": None,
        "fake_over_slapd_floor": None,
        "fake_over_slapd_cycle": None,
    }
    return {
        "mailboxes": size,
        "objects": 2 * size,
        "phases": phases,
        "memory": memory,
        "ratios": ratios,
        "notes": [],
    }


def test_chart_of_a_synthetic_result():
    results = [_synthetic(n) for n in (10_000, 50_000, 200_000)]
    svg = chart_svg(results, "synthetic")
    panels = _panels(svg)
    assert [p.get("id") for p in panels] == ["time-panel", "memory-panel"]
    texts = ["".join(t.itertext()) for t in ET.fromstring(svg).iter(f"{SVG}text")]
    assert "Time of each phase" in texts and "Peak RSS" in texts
    assert "mailboxes (log x, log y)" in texts  # 10k..200k spans more than a factor of 10
    assert {"full cycle", "exwb verify", "exwb serve", "serve + engine"} <= set(texts)
    time_lines = panels[0].findall(f"{SVG}polyline")
    assert len(time_lines) == 6  # one per phase present; slapd's are absent from this result
    assert len(panels[1].findall(f"{SVG}polyline")) == 4  # slapd's memory is None: no line
    for line in time_lines:
        assert len(line.get("points", "").split()) == 3


def test_chart_of_one_size_is_linear_and_still_has_two_panels():
    svg = chart_svg([_synthetic(300)])
    assert len(_panels(svg)) == 2
    assert "mailboxes (linear x" in svg


def test_targets_judge_200k_and_scaling_against_20k():
    results = [_synthetic(n) for n in (10_000, 20_000, 200_000)]
    rows = {t["id"]: t for t in targets(results)}
    assert rows["full_cycle"]["value"] == 51.0 and rows["full_cycle"]["met"] is True
    assert rows["engine_over_floor"]["met"] is True
    assert rows["peak_rss"]["value"] == round((115 + 8 * 200) / 1024, 3)
    assert rows["fake_over_slapd"]["value"] is None  # no slapd figures: no verdict
    scaling = rows["no_change_scaling"]
    assert scaling["baseline_size"] == 20_000 and scaling["baseline_note"] is None
    assert scaling["value"] == round(0.04 / 0.022, 2) and scaling["met"] is True
    assert baseline_size([10_000, 50_000, 200_000]) == 10_000
    assert baseline_size([200_000]) is None
    doc = {
        "machine": {
            "cpu": "x",
            "cores": 2,
            "memory_gib": 1.0,
            "os": "y",
            "python": "z",
            "exwb": "0",
        },
        "started": "t",
        "command": "exwb bench",
        "slapd": {"ran": False, "skipped": "--no-slapd"},
        "sizes": results,
        "targets": list(rows.values()),
    }
    md = bench_markdown(doc)
    assert "| full cycle, every in-scope mailbox changed, <= 60 s | 200,000 | 51.00" in md
    assert "slapd half not run: --no-slapd." in md


def test_a_child_peak_rss_is_its_own_not_its_parents() -> None:
    """ru_maxrss of a child forked from a big process carries the parent's memory; the bench
    reads the child's own VmHWM instead."""
    from harness.bench.measure import run_child

    ballast = bytearray(300 * 1024 * 1024)
    ballast[::4096] = b"\x01" * len(ballast[::4096])  # touch every page: resident
    grow = (
        "import time; x = bytearray(40 << 20); x[::4096] = b'\\x01' * len(x[::4096]); "
        "time.sleep(0.4)"
    )
    child = run_child(["-c", grow])
    assert child.returncode == 0, child.stderr
    assert 40 <= child.peak_rss_mib < 200, child.peak_rss_mib
    del ballast

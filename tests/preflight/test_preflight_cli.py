"""`exwb preflight` end to end: a tenant folder in, the exit code, JSON, Markdown and JUnit out;
bad input as one line and exit 2."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from harness.cli import main
from harness.preflight.rules import RULES, Severity
from harness.tenant import generate
from harness.tenant.files import CLOUD_NAME, LDIF_NAME, MANIFEST_NAME
from tests.preflight.tenants import SPEC, Broken, in_scope, write


def _long_custom(t) -> None:
    mbx = in_scope(t)[1]
    mbx.custom_attributes = ("c" * 1100, *mbx.custom_attributes[1:])


def _exwb(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harness", *args], capture_output=True, text=True, timeout=300
    )


def test_a_clean_tenant_exits_0_and_writes_every_format(tmp_path: Path) -> None:
    folder = write(tmp_path / "tenant")
    out = tmp_path / "out"
    done = _exwb(
        "preflight", str(folder), "--json", str(out / "r.json"), "--junit", str(out / "r.xml"),
        "--md", str(out / "r.md"),
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "no errors" in done.stdout
    report = json.loads((out / "r.json").read_text(encoding="utf-8"))
    assert report["verdict"] == "clean" and report["profile"] == "ga"
    assert [r["id"] for r in report["rules"]] == list(RULES)
    assert report["writableOus"] == ["OU=Corp,DC=contoso,DC=com"]
    assert report["writableOusFrom"] == "default"
    suite = ET.parse(out / "r.xml").getroot().find("testsuite")
    assert suite is not None
    cases = suite.findall("testcase")
    assert len(cases) == len(RULES) and suite.get("failures") == "0"
    assert (out / "r.md").read_text(encoding="utf-8").startswith("# exwb preflight")


def test_an_error_finding_exits_1_and_fails_its_junit_case(tmp_path: Path) -> None:
    folder = write(tmp_path / "tenant", Broken(_long_custom))
    junit, js = tmp_path / "r.xml", tmp_path / "r.json"
    assert main(["preflight", str(folder), "--junit", str(junit), "--json", str(js)]) == 1
    root = ET.parse(junit).getroot()
    failed = {
        c.get("name", "").split(":")[0]: c.find("failure")
        for c in root.iter("testcase")
        if c.find("failure") is not None
    }
    assert list(failed) == ["wb-schema-length"]
    failure = failed["wb-schema-length"]
    assert failure is not None and "1 finding(s)" in failure.get("message", "")
    assert "extensionAttribute1" in (failure.text or "")
    # The info rule about the first cycle's writes is a passing case with its findings.
    first = next(c for c in root.iter("testcase") if c.get("name", "").startswith("wb-first-"))
    assert first.find("failure") is None and "finding(s)" in (first.findtext("system-out") or "")
    rules = {r["id"]: r for r in json.loads(js.read_text(encoding="utf-8"))["rules"]}
    assert rules["wb-schema-length"]["count"] == 1
    assert rules["wb-schema-length"]["severity"] == Severity.ERROR.value


def test_the_same_tenant_gives_byte_identical_reports(tmp_path: Path) -> None:
    folder = write(tmp_path / "tenant", Broken(_long_custom))
    outputs = []
    for n in (1, 2):
        paths = [tmp_path / f"{n}.{ext}" for ext in ("json", "md", "xml")]
        main(["preflight", str(folder), "--json", str(paths[0]), "--md", str(paths[1]),
              "--junit", str(paths[2])])  # fmt: skip
        outputs.append([p.read_bytes() for p in paths])
    assert outputs[0] == outputs[1]


def test_writeback_ou_overrides_the_default(tmp_path: Path) -> None:
    folder = write(tmp_path / "tenant")
    js = tmp_path / "r.json"
    rc = main(["preflight", str(folder), "--writeback-ou", "OU=Resources,OU=Corp,DC=contoso,DC=com",
               "--json", str(js)])  # fmt: skip
    assert rc == 1
    report = json.loads(js.read_text(encoding="utf-8"))
    assert report["writableOusFrom"] == "option"
    rule = next(r for r in report["rules"] if r["id"] == "wb-outside-writable-ou")
    resources = [
        u for u, _ in _in_scope_pairs() if u.dn.endswith(",OU=Resources,OU=Corp,DC=contoso,DC=com")
    ]
    assert rule["count"] == report["counts"]["in_scope"] - len(resources)
    assert rule["examples"][0]["value"] != "OU=Resources,OU=Corp,DC=contoso,DC=com"


def _in_scope_pairs():
    tenant = generate(SPEC)
    return [(u, m) for u, m in tenant.synced_pairs() if m.is_exchange_cloud_managed]


@pytest.mark.parametrize(
    ("breakage", "message"),
    [
        ("missing", "no such tenant folder"),
        ("no-manifest", f"{MANIFEST_NAME}: no such file"),
        ("bad-cloud", f"{CLOUD_NAME}:3: invalid JSON"),
        ("bad-profile", "profile.yaml:1:"),
        ("bad-ldif", f"{LDIF_NAME}:"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, breakage: str, message: str) -> None:
    folder = write(tmp_path / "tenant")
    args = ["preflight", str(folder)]
    if breakage == "missing":
        args = ["preflight", str(tmp_path / "nowhere")]
    elif breakage == "no-manifest":
        (folder / MANIFEST_NAME).unlink()
    elif breakage == "bad-cloud":
        lines = (folder / CLOUD_NAME).read_text(encoding="utf-8").splitlines(keepends=True)
        lines[2] = lines[2][: len(lines[2]) // 2] + "\n"
        (folder / CLOUD_NAME).write_text("".join(lines), encoding="utf-8")
    elif breakage == "bad-ldif":
        with (folder / LDIF_NAME).open("a", encoding="utf-8") as f:
            f.write("dn: CN=Broken,DC=contoso,DC=com\nthis line has no colon\n\n")
    else:
        (tmp_path / "profile.yaml").write_text("based_on: nothing\n", encoding="utf-8")
        args += ["--profile", str(tmp_path / "profile.yaml")]
    done = _exwb(*args)
    assert done.returncode == 2, done.stdout + done.stderr
    err = done.stderr.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert message in err, err
    assert done.stdout == ""


def test_a_folder_and_connection_settings_together_are_refused(tmp_path: Path) -> None:
    folder = write(tmp_path / "tenant")
    done = _exwb("preflight", str(folder), "--ldap-url", "ldap://127.0.0.1:1")
    assert done.returncode == 2 and "not both" in done.stderr

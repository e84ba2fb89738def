"""The `exwb` command as a user runs it: a real subprocess, exit codes and messages."""

import json
import subprocess
import sys
from importlib.metadata import entry_points

import pytest


def exwb(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "harness", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
    )


def test_console_script_is_declared():
    scripts = {e.name: e.value for e in entry_points(group="console_scripts")}
    assert scripts.get("exwb") == "harness.cli:main"


def test_generate_writes_a_tenant(tmp_path):
    res = exwb("generate", "--mailboxes", "250", "--seed", "3", "--out", str(tmp_path / "t"))
    assert res.returncode == 0, res.stderr
    assert "Traceback" not in res.stderr
    assert "250" in res.stdout or "258" in res.stdout
    manifest = json.loads((tmp_path / "t" / "tenant.json").read_text())
    assert manifest["spec"]["mailboxes"] == 250
    assert manifest["spec"]["seed"] == 3
    assert (tmp_path / "t" / "directory.ldif").stat().st_size > 0


def test_same_arguments_same_bytes(tmp_path):
    for name in ("a", "b"):
        assert (
            exwb(
                "generate",
                "-n",
                "120",
                "-s",
                "77",
                "-q",
                "-k",
                "non_ascii_fraction=0.5",
                "-o",
                str(tmp_path / name),
            ).returncode
            == 0
        )
    for f in ("directory.ldif", "cloud.jsonl", "tenant.json"):
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes()


def test_knobs_from_the_command_line(tmp_path):
    res = exwb(
        "generate",
        "-n",
        "40",
        "-q",
        "--domain",
        "fabrikam.net",
        "-k",
        "mailbox_mix={shared: 1}",
        "-k",
        "cloud_managed_fraction=0",
        "-o",
        str(tmp_path),
    )
    assert res.returncode == 0, res.stderr
    records = [json.loads(line) for line in (tmp_path / "cloud.jsonl").read_text().splitlines()]
    synced = [r for r in records if r["IsDirSynced"] and r["RecipientTypeDetails"] != "MailUser"]
    assert {r["RecipientTypeDetails"] for r in synced} == {"SharedMailbox"}
    assert not any(r["IsExchangeCloudManaged"] for r in records)
    assert all(r["UserPrincipalName"].endswith("@fabrikam.net") for r in records)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-n", "0"], "--mailboxes: must be between 1 and 1,000,000 (got 0)"),
        (["-n", "1000001"], "--mailboxes: must be between 1"),
        (["-n", "-5"], "--mailboxes"),
        (["-n", "lots"], "'lots' is not a whole number"),
        (["-n", "10", "--domain", "bad domain"], "--domain"),
        (["-n", "10", "-k", "hidden_fraction=2"], "knob hidden_fraction: must be a fraction"),
        (["-n", "10", "-k", "nonsense=1"], "knob nonsense: unknown knob"),
        (["-n", "10", "-k", "novalue"], "is not NAME=VALUE"),
        (["-n", "10", "-k", "mailbox_mix={user: [1"], "not valid YAML"),
    ],
)
def test_bad_arguments_get_one_line_and_exit_2(tmp_path, args, message):
    res = exwb("generate", *args, "-o", str(tmp_path / "x"))
    assert res.returncode == 2
    assert "Traceback" not in res.stderr
    assert message in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert not (tmp_path / "x").exists() or not any((tmp_path / "x").iterdir())


def test_missing_out_and_unwritable_out(tmp_path):
    res = exwb("generate", "-n", "10")
    assert res.returncode == 2 and "--out DIR is required" in res.stderr
    blocker = tmp_path / "file"
    blocker.write_text("x")
    res = exwb("generate", "-n", "10", "-o", str(blocker / "sub"))
    assert res.returncode == 2
    assert "cannot create output directory" in res.stderr and "Traceback" not in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1


def test_suffixes_and_separators_in_counts(tmp_path):
    from harness.commands.generate import count

    assert count("200k") == 200_000
    assert count("200_000") == count("200,000") == 200_000
    assert count("1m") == 1_000_000


def test_list_knobs_and_version():
    res = exwb("generate", "--list-knobs")
    assert res.returncode == 0 and "cloud_managed_fraction" in res.stdout
    res = exwb("--version")
    assert res.returncode == 0 and "exwb-harness" in res.stdout


def test_no_command_prints_help():
    res = exwb()
    assert res.returncode == 2 and "generate" in res.stdout

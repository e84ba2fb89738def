"""`exwb import --preflight` checks the tenant as it writes it, without reading the folder
back: its reports must be what `exwb preflight DIR` says about the folder afterwards, byte for
byte, for every export format, pseudonymised or not, dirty data included."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from harness.cli import main
from harness.commands.engine_args import profile_option
from harness.commands.import_ import PREFLIGHT_JSON, PREFLIGHT_MD
from harness.core.dn import split_rdn
from harness.preflight import during_import
from harness.preflight.during_import import ImportPreflight, PreflightFailed, can_fork
from harness.tenant import TenantSpec, generate
from harness.tenant.exports import export_tenant
from harness.tenant.imports.build import import_tenant
from harness.tenant.imports.records import ExportError
from harness.tenant.ldif import entry_text
from harness.tenant.model import Tenant

PAIRINGS = [
    ("ldifde", "get-mailbox-json", "graph-users"),
    ("csvde-u", "get-mailbox-csv", None),
    ("get-aduser", "get-mailbox-json-ps51", "get-mguser"),
    ("ldapsearch", "get-mailbox-csv-ps51", None),
]


@pytest.fixture(scope="module")
def tenant() -> Tenant:
    spec = TenantSpec.from_mapping({"mailboxes": 120, "seed": 11, "non_ascii_fraction": 0.3})
    return generate(spec)


def dirty_ldif(tenant: Tenant, path: Path) -> Path:
    """A second AD export of the same domain with what the rules are there to find: an address
    another user holds, bad characters, a value too long, a trailing space (base64 in LDIF), a
    non-ASCII name, a user without objectGUID."""
    users = [u for u in tenant.ad_users if u.proxy_addresses]
    first = users[0]
    ou = split_rdn(first.dn)[1]
    taken = first.proxy_addresses[0].split(":", 1)[1]
    entries = [
        (
            f"CN=Dup Holder,{ou}",
            [
                ("objectClass", ("top", "person", "organizationalPerson", "user")),
                ("cn", ("Dup Holder",)),
                ("sAMAccountName", ("dup holder*",)),
                ("userPrincipalName", ("dup.holder@" + taken.split("@")[1] + " ",)),
                ("mail", (taken,)),
                ("proxyAddresses", (f"SMTP:{taken}", "smtp:bad address@@example.com")),
                ("objectGUID", (b"\x01" * 16,)),
            ],
        ),
        (
            f"CN=Zoë Ünïcode,{ou}",
            [
                ("objectClass", ("top", "person", "organizationalPerson", "user")),
                ("cn", ("Zoë Ünïcode",)),
                ("displayName", ("Z" * 300,)),
                ("mailNickname", ("zoë (nickname)",)),
                ("proxyAddresses", ("SMTP:zoe@nowhere.invalidtld",)),
            ],
        ),
    ]
    path.write_text("version: 1\n\n" + "".join(entry_text(dn, a) for dn, a in entries), "utf-8")
    return path


def _exports(tenant: Tenant, folder: Path, names: tuple[str, str, str | None]) -> list[Path]:
    written = export_tenant(tenant, folder, [n for n in names if n])
    return [written[n] for n in names if n]


def _import_args(ad: list[Path], exo: Path, graph: Path | None, out: Path) -> list[str]:
    args = ["import", "--out", str(out), "--exo", str(exo)]
    for a in ad:
        args += ["--ad", str(a)]
    return args + (["--graph", str(graph)] if graph is not None else [])


def _same_as_preflight_dir(out: Path, tmp_path: Path, code: int, *extra: str) -> dict:
    """`exwb preflight DIR` afterwards: the same exit code and the same reports."""
    again = tmp_path / "again"
    args = ["preflight", str(out), "--json", str(again / "p.json"), "--md", str(again / "p.md")]
    assert main([*args, *extra]) == code
    assert (out / PREFLIGHT_JSON).read_bytes() == (again / "p.json").read_bytes()
    assert (out / PREFLIGHT_MD).read_bytes() == (again / "p.md").read_bytes()
    return json.loads((out / PREFLIGHT_JSON).read_text("utf-8"))


@pytest.mark.parametrize("pseudonymise", [False, True], ids=["plain", "pseudonymised"])
@pytest.mark.parametrize("names", PAIRINGS, ids=["+".join(filter(None, p)) for p in PAIRINGS])
def test_the_reports_are_those_of_preflight_dir(
    tenant: Tenant,
    tmp_path: Path,
    names: tuple[str, str, str | None],
    pseudonymise: bool,
    capsys: pytest.CaptureFixture[str],
) -> None:
    ad, exo, *graph = _exports(tenant, tmp_path / "exports", names)
    dirty = dirty_ldif(tenant, tmp_path / "exports" / "dirty.ldif")
    out = tmp_path / "out"
    args = _import_args([ad, dirty], exo, graph[0] if graph else None, out)
    if pseudonymise:
        key = tmp_path / "key"
        key.write_text("cd" * 32)
        args += ["--pseudonymise", str(key)]
    code = main([*args, "--preflight"])
    assert code == 1  # the dirty export holds error findings
    said = capsys.readouterr().out
    assert f"pre-flight: {out / PREFLIGHT_MD}" in said
    report = _same_as_preflight_dir(out, tmp_path, code)
    found = {r["id"]: r["count"] for r in report["rules"] if r["count"]}
    assert len(found) >= 3, found  # the comparison compares findings, not empty reports
    assert report["counts"]["in_scope"] > 0
    assert report["pseudonymised"] is pseudonymise


def test_profile_and_writeback_ou_follow_the_options(tenant: Tenant, tmp_path: Path) -> None:
    ad, exo = _exports(tenant, tmp_path / "exports", ("ldifde", "get-mailbox-json", None))
    out = tmp_path / "out"
    ou = split_rdn(next(u for u in tenant.ad_users if u.proxy_addresses).dn)[1]
    args = _import_args([ad], exo, None, out)
    code = main([*args, "--preflight", "--profile", "preview", "--writeback-ou", ou])
    report = _same_as_preflight_dir(out, tmp_path, code, "--profile", "preview")
    assert report["profile"] == "preview"
    assert report["writableOus"] == [ou]
    assert report["writableOusFrom"] == "tenant.json"


def test_without_the_option_no_preflight_is_written(tenant: Tenant, tmp_path: Path) -> None:
    ad, exo = _exports(tenant, tmp_path / "exports", ("ldifde", "get-mailbox-json", None))
    out = tmp_path / "out"
    assert main(_import_args([ad], exo, None, out)) == 0
    assert not (out / PREFLIGHT_JSON).exists() and not (out / PREFLIGHT_MD).exists()


def test_bad_input_writes_nothing(
    tenant: Tenant, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ad, exo = _exports(tenant, tmp_path / "exports", ("ldifde", "get-mailbox-json", None))
    truncated = tmp_path / "exports" / "cut.json"
    truncated.write_bytes(exo.read_bytes()[: exo.stat().st_size // 2])
    out = tmp_path / "out"
    assert main([*_import_args([ad], truncated, None, out), "--preflight"]) == 2
    assert str(truncated) in capsys.readouterr().err
    assert not out.exists()
    bad_profile = [*_import_args([ad], exo, None, out), "--preflight", "--profile", "nope.yaml"]
    assert main(bad_profile) == 2
    assert not out.exists()


def _handed_over(
    tenant: Tenant, tmp_path: Path, fork: bool, name: str
) -> tuple[ImportPreflight, Path]:
    ad, exo = _exports(tenant, tmp_path / "exports", ("ldifde", "get-mailbox-json", None))
    dirty = dirty_ldif(tenant, tmp_path / "exports" / "dirty.ldif")
    out = tmp_path / name
    preflight = ImportPreflight(profile_option("ga"), out, Console(width=100), fork=fork)
    with preflight:
        import_tenant([ad, dirty], exo, None, out, sink=preflight)
        preflight.result()
    return preflight, out


@pytest.mark.skipif(not can_fork(), reason="the pre-flight forks on Linux only")
def test_forked_and_in_process_give_the_same_texts(tenant: Tenant, tmp_path: Path) -> None:
    forked, a = _handed_over(tenant, tmp_path, True, "a")
    inline, b = _handed_over(tenant, tmp_path, False, "b")
    one, two = forked.result(), inline.result()
    assert one.exit_code == two.exit_code == 1
    assert one.console.replace(str(a), str(b)) == two.console
    assert "duplicate" in one.console.casefold()
    assert one.json.replace(str(a), str(b)) == two.json
    assert one.markdown.replace(str(a), str(b)) == two.markdown


@pytest.mark.skipif(not can_fork(), reason="the pre-flight forks on Linux only")
def test_a_failing_or_killed_preflight_says_so(
    tenant: Tenant, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The forked child's error comes back with its traceback; a child killed from outside
    (the kernel's OOM killer, say) is named by its signal, not an unpickling error."""

    def broken(*args: object) -> None:
        raise ValueError("a rule broke")

    monkeypatch.setattr(during_import, "run_preflight", broken)
    with pytest.raises(PreflightFailed, match=r"(?s)the pre-flight failed:.*ValueError: a rule"):
        _handed_over(tenant, tmp_path, True, "a")

    def killed(*args: object) -> None:
        os.kill(os.getpid(), signal.SIGKILL)

    monkeypatch.setattr(during_import, "run_preflight", killed)
    with pytest.raises(PreflightFailed, match=r"ended without a report \(killed by signal 9\)"):
        _handed_over(tenant, tmp_path, True, "b")


@pytest.mark.skipif(not can_fork(), reason="the pre-flight forks on Linux only")
def test_a_failed_import_leaves_no_child(tenant: Tenant, tmp_path: Path) -> None:
    """The import fails after handing over its tenant: the child is stopped and reaped, not
    left running, and nothing is written."""
    ad, exo = _exports(tenant, tmp_path / "exports", ("ldifde", "get-mailbox-json", None))
    out = tmp_path / "out"
    preflight = ImportPreflight(profile_option("ga"), out, Console(), fork=True)
    handed: list[int] = []
    original = preflight.tenant

    def handed_then_failed(*args: Any) -> None:
        original(*args)
        assert preflight._child is not None
        handed.append(preflight._child[0])
        raise ExportError("out", "the disk is full")

    preflight.tenant = handed_then_failed  # type: ignore[method-assign]
    with pytest.raises(ExportError), preflight:
        import_tenant([ad], exo, None, out, sink=preflight)
    (pid,) = handed
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # already reaped
    assert not out.exists()

"""`exwb import` with its readers in a second process (what large inputs get by default)
gives what reading in-process gives: the same folder byte for byte, pseudonymised or not, the
same warnings in the report, the same one-line errors with nothing written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.tenant import TenantSpec, generate
from harness.tenant.exports import export_tenant
from harness.tenant.imports.build import import_tenant
from harness.tenant.imports.records import ExportError
from harness.tenant.model import Tenant

PAIRINGS = [
    ("ldifde", "get-mailbox-json", "graph-users"),
    ("csvde-u", "get-mailbox-csv", None),
]


@pytest.fixture(scope="module")
def tenant() -> Tenant:
    spec = TenantSpec.from_mapping({"mailboxes": 150, "seed": 5, "non_ascii_fraction": 0.3})
    return generate(spec)


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def _exports(tenant: Tenant, folder: Path, names: tuple[str, str, str | None]) -> list[Path]:
    written = export_tenant(tenant, folder, [n for n in names if n])
    return [written[n] for n in names if n]


@pytest.mark.parametrize("pseudonymise", [False, True], ids=["plain", "pseudonymised"])
@pytest.mark.parametrize("names", PAIRINGS, ids=["+".join(filter(None, p)) for p in PAIRINGS])
def test_the_folder_is_the_same_either_way(
    tenant: Tenant, tmp_path: Path, names: tuple[str, str, str | None], pseudonymise: bool
) -> None:
    ad, exo, *graph = _exports(tenant, tmp_path / "exports", names)
    key = None
    if pseudonymise:
        key = tmp_path / "key"
        key.write_text("ab" * 32)
    folders = {}
    for prefetch in (False, True):
        out = tmp_path / f"out-{prefetch}"
        import_tenant(
            [ad], exo, graph[0] if graph else None, out, pseudonymise=key, prefetch=prefetch
        )
        folders[prefetch] = _files(out)
    assert folders[True] == folders[False]


def test_reader_warnings_reach_the_report(tenant: Tenant, tmp_path: Path) -> None:
    ad, exo, graph = _exports(tenant, tmp_path / "exports", PAIRINGS[0])
    pages = json.loads(graph.read_text("utf-8"))
    pages[-1]["@odata.nextLink"] = "https://graph.microsoft.com/v1.0/users?$skiptoken=X"
    graph.write_text(json.dumps(pages), "utf-8")
    reports = {}
    for prefetch in (False, True):
        out = tmp_path / f"out-{prefetch}"
        reports[prefetch] = import_tenant([ad], exo, graph, out, prefetch=prefetch).report
    said = reports[True]["warnings"]
    assert any("@odata.nextLink" in w for w in said)
    assert said == reports[False]["warnings"]


def test_a_bad_file_is_the_same_error_and_nothing_is_written(
    tenant: Tenant, tmp_path: Path
) -> None:
    ad, exo, graph = _exports(tenant, tmp_path / "exports", PAIRINGS[0])
    lines = ad.read_text("utf-8").splitlines(keepends=True)
    at = len(lines) * 2 // 3
    lines.insert(at, "this is not an attribute line\n")
    ad.write_text("".join(lines), "utf-8")
    said = {}
    for prefetch in (False, True):
        out = tmp_path / f"out-{prefetch}"
        with pytest.raises(ExportError) as e:
            import_tenant([ad], exo, graph, out, prefetch=prefetch)
        said[prefetch] = str(e.value)
        assert not out.exists()
    assert said[True] == said[False]
    assert f"{ad}:{at + 1}:" in said[True]

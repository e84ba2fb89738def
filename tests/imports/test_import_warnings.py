"""What the readers notice while streaming reaches `exwb import`'s report (it used to be
dropped: the readers kept it for a list the importer never gave them)."""

from __future__ import annotations

import json
from pathlib import Path

from harness.tenant import TenantSpec, generate
from harness.tenant.exports import export_tenant
from harness.tenant.imports.build import import_tenant


def test_a_graph_export_that_stops_early_is_said_in_the_report(tmp_path: Path) -> None:
    tenant = generate(TenantSpec.from_mapping({"mailboxes": 20, "seed": 3}))
    written = export_tenant(tenant, tmp_path, ["ldifde", "get-mailbox-json", "graph-users"])
    graph = written["graph-users"]
    pages = json.loads(graph.read_text("utf-8"))
    pages[-1]["@odata.nextLink"] = "https://graph.microsoft.com/v1.0/users?$skiptoken=X"
    graph.write_text(json.dumps(pages), "utf-8")
    result = import_tenant(
        [written["ldifde"]], written["get-mailbox-json"], graph, tmp_path / "out", prefetch=False
    )
    (said,) = [w for w in result.report["warnings"] if "@odata.nextLink" in w]
    assert said.startswith(f"{graph}: the last page")
    md = (tmp_path / "out" / "import-report.md").read_text("utf-8")
    assert "@odata.nextLink" in md

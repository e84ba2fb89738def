"""The import report: what was read, kept, left out and joined, as JSON and as Markdown.

`build.py` assembles the report's content (a JSON-able dict); this module names the files,
caps long listings (the counts stay exact) and renders the Markdown a person reads first.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

REPORT_JSON = "import-report.json"
REPORT_MD = "import-report.md"
LISTED = 1000  # items kept per listing in the JSON (the count is always the full one)
SHOWN = 20  # items shown per listing in the Markdown


def listing(items: Sequence[dict[str, Any]], count: int | None = None) -> dict[str, Any]:
    """A list of findings, capped at LISTED items; `count` is the full number (default: the
    items given, for callers that pass only the first LISTED of a long list)."""
    n = len(items) if count is None else count
    return {"count": n, "items": list(items[:LISTED]), "truncated": n > LISTED}


def _cell(value: Any) -> str:
    if isinstance(value, list | dict):
        value = json.dumps(value, ensure_ascii=False)
    return str(value).replace("|", "\\|").replace("\n", " ")


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    if not rows:
        return ["(none)", ""]
    out = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    out += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return [*out, ""]


def _tally(rows: Sequence[dict[str, Any]], what: str) -> list[str]:
    has_why = any("why" in r for r in rows)
    headers = [what, "count", "example", *(["why"] if has_why else [])]
    return _table(
        headers,
        [
            [r["name"], r["count"], r["example"], *([r.get("why", "")] if has_why else [])]
            for r in rows
        ],
    )


def _listing(block: dict[str, Any], headers: Sequence[str], keys: Sequence[str]) -> list[str]:
    items = block["items"][:SHOWN]
    lines = [f"{block['count']:,} in all" + (f", the first {len(items)}:" if items else "."), ""]
    if items:
        lines += _table(headers, [[item.get(k, "") for k in keys] for item in items])
    return lines


def report_markdown(report: dict[str, Any]) -> str:
    """The report for a person: counts first, then every list of problems with examples."""
    ad, cloud, joins = report["ad"], report["cloud"], report["joins"]
    md = ["# Import report", "", f"Domain **{report['domain']}** (`{report['base_dn']}`).", ""]
    md += ["## Inputs", ""]
    md += _table(
        ["side", "file", "format", "encoding"],
        [[i["kind"], i["path"], i["format"], i["encoding"]] for i in report["inputs"]],
    )
    md += ["## Tenant", ""]
    md += _table(
        ["what", "count"], [[k.replace("_", " "), f"{v:,}"] for k, v in report["counts"].items()]
    )
    md += ["## AD objects", "", f"{ad['read']:,} read; kept:", ""]
    md += _table(["kind", "count"], [[k, f"{v:,}"] for k, v in ad["kept"].items()])
    md += [
        f"Well-known system objects (kept, never joined): {ad['system_objects_not_joined']:,}.",
        "",
        "### Left out",
        "",
    ]
    md += _tally(ad["left_out"], "reason")
    if ad["created"]:
        md += ["### Created (a kept object sits in them, the export lacks them)", ""]
        md += [f"- `{dn}`" for dn in ad["created"][:SHOWN]] + [""]
    if ad["duplicate_dns"]:
        md += ["### DNs read twice (the first is kept)", ""]
        md += _table(["DN", "origin"], [[d["dn"], d["origin"]] for d in ad["duplicate_dns"]])
    md += ["### Attributes the fake's schema does not know (left out)", ""]
    md += _tally(ad["unknown_attributes"], "attribute")
    md += ["### Values AD's schema would refuse (left out)", ""]
    md += _tally(ad["refused_values"], "attribute")
    if ad["stamped_consistency_guid"]:
        md += [
            f"{ad['stamped_consistency_guid']:,} joined users have no mS-DS-ConsistencyGuid: "
            "their anchor is their objectGUID, so mS-DS-ConsistencyGuid = objectGUID was "
            "stamped in directory.ldif (what Entra Connect does when ms-DS-ConsistencyGuid is "
            "the source anchor) for the writeback to match them.",
            "",
        ]
    md += ["## Cloud recipients", ""]
    md += _table(
        ["what", "count"],
        [
            ["mailboxes read", f"{cloud['mailboxes_read']:,}"],
            ["kept", f"{cloud['kept']:,}"],
            ["system mailboxes (not joined)", f"{cloud['system_mailboxes_not_joined']:,}"],
            ["Graph users read", f"{cloud['graph_users_read']:,}"],
            ["Graph users without a mailbox", f"{cloud['graph_users_without_mailbox']:,}"],
        ],
    )
    if cloud["skipped"]:
        md += ["### Left out", ""]
        md += _table(["origin", "why"], [[s["origin"], s["why"]] for s in cloud["skipped"]])
    md += [
        "## Joins",
        "",
        "Mailbox `ExternalDirectoryObjectId` = Graph `id`; Graph "
        "`onPremisesImmutableId` = base64 of AD `mS-DS-ConsistencyGuid` (else `objectGUID`); "
        "without Graph: the UPN, then the primary SMTP address.",
        "",
    ]
    md += _table(["rule", "mailboxes joined"], [[k, f"{v:,}"] for k, v in joins["rules"].items()])
    md += [f"Cloud-only (no on-premises anchor): {joins['cloud_only']:,}.", ""]
    mbx = (["mailbox", "UPN", "origin"], ["id", "upn", "origin"])
    md += ["### Mailboxes that match no AD user", ""]
    md += _listing(joins["unmatched_mailboxes"], [*mbx[0], "why"], [*mbx[1], "why"])
    md += ["### Mailboxes that match several AD users (no anchor given)", ""]
    md += _listing(
        joins["one_mailbox_several_ad_users"],
        [*mbx[0], "rule", "AD users"],
        [*mbx[1], "rule", "ad_users"],
    )
    md += ["### AD users joined by several mailboxes", ""]
    md += _listing(
        joins["one_ad_user_several_mailboxes"],
        ["AD user", "origin", "mailboxes"],
        ["dn", "origin", "mailboxes"],
    )
    md += ["### AD users without a mailbox", ""]
    md += _listing(joins["ad_users_without_mailbox"], ["AD user", "origin"], ["dn", "origin"])
    ous = report["writeback_ous"]
    md += ["## Where the writeback account may write", ""]
    if ous["source"] == "assumed":
        basis = {
            "cloud-managed": "the OUs directly holding the joined cloud-managed users",
            "joined": "no joined user is cloud-managed: the OUs directly holding the joined users",
            "none": "no AD user is joined, so none; tenant.json leaves writeback_ous out",
        }[ous["basis"]]
        md += [
            f"Assumed (no --writeback-ou given): {basis}. Give the job's real scope with "
            "--writeback-ou.",
            "",
        ]
    md += [f"- `{dn}`" for dn in ous["ous"]] or ["(none)"]
    md += [""]
    md += ["## Pseudonymisation", ""]
    summary = report["pseudonymisation"]
    if summary is None:
        md += ["Not pseudonymised: the folder holds the exports' real names and addresses.", ""]
    else:
        md += _table(["setting", "value"], [[k, v] for k, v in sorted(summary.items())])
    md += ["## Warnings", ""]
    md += [f"- {w}" for w in report["warnings"]] or ["(none)"]
    return "\n".join(md) + "\n"

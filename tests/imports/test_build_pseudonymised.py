"""build_tenant with a pseudonymiser: applied record by record, before joining; what the user
types (--domain, --writeback-ou) is mapped like the records; system objects are recognised by
their real names; the report carries the pseudonymiser's summary.

The pseudonymiser here is a word-for-word renamer standing in for `pseudonym.Pseudonymiser`
(another part's module): build only relies on the record-to-record interface.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from harness.tenant.files import CLOUD_NAME, LDIF_NAME, MANIFEST_NAME, read_cloud_jsonl
from harness.tenant.imports.build import InputFile, build_tenant
from harness.tenant.imports.records import AdRecord, GraphUserRecord, MailboxRecord, Origin
from harness.tenant.imports.report import REPORT_JSON
from tests.imports.test_build import BASE, b64, directory, graph_user, guid, mailbox, user

WORDS = {
    "contoso": "tailspin",
    "Ada": "Noor",
    "ada": "noor",
    "Staff": "Team",
    "krbtgt": "Quill",
    "Bob": "Ravi",
    "bob": "ravi",
    "Cy": "Ola",
    "cy": "ola",
}


def rename(value: Any) -> Any:
    if isinstance(value, str):
        for old, new in WORDS.items():
            value = value.replace(old, new)
        return value
    if isinstance(value, list):
        return [rename(v) for v in value]
    return value


class Renamer:
    def __init__(self) -> None:
        self.records = 0

    def ad(self, rec: AdRecord) -> AdRecord:
        self.records += 1
        attrs = {k: [rename(v) for v in vs] for k, vs in rec.attrs.items()}
        return replace(rec, dn=rename(rec.dn), attrs=attrs)

    def mailbox(self, rec: MailboxRecord) -> MailboxRecord:
        self.records += 1
        return replace(rec, props={k: rename(v) for k, v in rec.props.items()})

    def graph_user(self, rec: GraphUserRecord) -> GraphUserRecord:
        self.records += 1
        return replace(rec, props={k: rename(v) for k, v in rec.props.items()})

    def dn(self, value: str) -> str:
        return str(rename(value))

    def domain(self, name: str) -> str:
        return str(rename(name))

    def summary(self) -> dict[str, Any]:
        return {"records": self.records, "free_text": {"description": "pseudonymise"}}


def test_pseudonymised_before_joining_and_user_input_mapped(tmp_path: Path) -> None:
    ad = [*directory(), user(7, "krbtgt", where="CN=Users")]
    mbx = [
        mailbox(1, "Ada"),
        mailbox(2, "Bob", upn="robert@contoso.onmicrosoft.com"),
        mailbox(3, "Cy"),
        mailbox(4, "Dee?"),
    ]
    graph = [graph_user(3, b64(guid(3)))]
    out = tmp_path / "t"
    result = build_tenant(
        ad,
        mbx,
        graph,
        out,
        pseudonymiser=Renamer(),
        domain="contoso.com",
        writeback_ous=[f"OU=Staff,{BASE}"],
    )
    rep = json.loads((out / REPORT_JSON).read_text())
    assert rep["domain"] == "tailspin.com"
    assert rep["joins"]["rules"] == {"graph": 1, "upn": 1, "smtp": 1}
    assert rep["ad"]["system_objects_not_joined"] == 1  # krbtgt, renamed Quill
    assert rep["writeback_ous"] == {"source": "given", "ous": ["OU=Team,DC=tailspin,DC=com"]}
    assert rep["pseudonymisation"]["records"] == 11
    assert any("contain '?'" in w and "mailboxes.json:4" in w for w in rep["warnings"])
    manifest = json.loads((out / MANIFEST_NAME).read_text())
    assert manifest["importer"]["pseudonymised"] is True
    assert manifest["base_dn"] == "DC=tailspin,DC=com"
    for path in out.iterdir():  # the report too: it is committed along with the tenant
        text = path.read_text()
        assert "contoso" not in text and "Ada" not in text and "krbtgt" not in text, path.name
    noor = {m.alias: m for m in read_cloud_jsonl(out / CLOUD_NAME)}["noor"]
    assert noor.immutable_id == b64(guid(1001))
    assert result.report == rep


def test_pseudonymised_report_names_inputs_by_side_not_path(tmp_path: Path) -> None:
    real = "/home/jdoe/contoso-exports/mailboxes.json"
    mbx = [
        replace(mailbox(1, "Ada"), origin=Origin(real, 3)),
        replace(mailbox(8, "Ghost"), origin=Origin(real, 9)),
    ]
    inputs = [
        InputFile("ad", "/home/jdoe/contoso-exports/users.ldif", "ldif", "utf-8"),
        InputFile("exo", real, "exo-json", "utf-16-le"),
    ]
    out = tmp_path / "t"
    build_tenant(directory(), mbx, None, out, inputs=inputs, pseudonymiser=Renamer())
    rep = json.loads((out / REPORT_JSON).read_text())
    assert [i["path"] for i in rep["inputs"]] == ["ad", "exo"]
    (miss,) = rep["joins"]["unmatched_mailboxes"]["items"]
    assert miss["origin"] == "exo:9"
    for path in out.iterdir():
        assert "jdoe" not in path.read_text(), path.name


def test_naming_attribute_follows_the_rdn(tmp_path: Path) -> None:
    ad = directory()
    ad[1] = AdRecord(
        f"OU=Staff,{BASE}", {"objectClass": ["organizationalUnit"], "ou": ["Other"]}, ad[1].origin
    )
    out = tmp_path / "t"
    build_tenant(ad, [mailbox(1, "Ada")], None, out)
    text = (out / LDIF_NAME).read_text()
    assert (
        f"dn: OU=Staff,{BASE}\nobjectClass: top\nobjectClass: organizationalUnit\nou: Staff\n"
        in text
    )

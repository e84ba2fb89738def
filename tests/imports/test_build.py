"""build_tenant: joins, what is kept and left out, the folder it writes (from records)."""

from __future__ import annotations

import base64
import json
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ldap3 import NONE, SUBTREE, Connection, Server

from harness.tenant.files import CLOUD_NAME, LDIF_NAME, MANIFEST_NAME, read_cloud_jsonl
from harness.tenant.imports.build import InputFile, build_tenant
from harness.tenant.imports.records import (
    AdRecord,
    ExportError,
    GraphUserRecord,
    MailboxRecord,
    Origin,
)
from harness.tenant.imports.report import REPORT_JSON, REPORT_MD
from mockservers.directory.acl import Role
from mockservers.directory.ldif_io import load_ldif
from mockservers.runtime import start_directory

BASE = "DC=contoso,DC=com"
AD_FILE = "users.ldif"
EXO_FILE = "mailboxes.json"
GRAPH_FILE = "users.json"


def guid(n: int) -> bytes:
    return uuid.UUID(int=n).bytes_le


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def ou(name: str, line: int = 1) -> AdRecord:
    return AdRecord(
        f"OU={name},{BASE}",
        {"objectClass": ["top", "organizationalUnit"], "ou": [name]},
        Origin(AD_FILE, line),
    )


def user(
    n: int,
    name: str,
    *,
    where: str = "OU=Staff",
    consistency: bool = True,
    upn: str | None = None,
    smtp: str | None = None,
    extra: dict[str, list[Any]] | None = None,
) -> AdRecord:
    attrs: dict[str, list[Any]] = {
        "objectClass": ["top", "person", "organizationalPerson", "user"],
        "cn": [name],
        "sAMAccountName": [name.lower()],
        "userPrincipalName": [upn or f"{name.lower()}@contoso.com"],
        "objectGUID": [guid(n)],
        "proxyAddresses": [f"SMTP:{smtp or name.lower() + '@contoso.com'}"],
        "userAccountControl": ["512"],
    }
    if consistency:
        attrs["mS-DS-ConsistencyGuid"] = [guid(1000 + n)]
    attrs.update(extra or {})
    return AdRecord(f"CN={name},{where},{BASE}", attrs, Origin(AD_FILE, 10 * n))


def mailbox(
    n: int,
    name: str,
    *,
    upn: str | None = None,
    smtp: str | None = None,
    managed: bool = True,
    **props: Any,
) -> MailboxRecord:
    address = smtp or f"{name.lower()}@contoso.com"
    return MailboxRecord(
        {
            "ExternalDirectoryObjectId": str(uuid.UUID(int=5000 + n)),
            "UserPrincipalName": upn or f"{name.lower()}@contoso.com",
            "DisplayName": name,
            "Alias": name.lower(),
            "PrimarySmtpAddress": address,
            "EmailAddresses": [
                f"SMTP:{address}",
                f"smtp:{name.lower()}@contoso.mail.onmicrosoft.com",
            ],
            "IsDirSynced": True,
            "IsExchangeCloudManaged": managed,
            "RecipientTypeDetails": "UserMailbox",
            "CustomAttribute1": f"cost-{n}",
            **props,
        },
        Origin(EXO_FILE, n),
    )


def graph_user(n: int, immutable: str | None) -> GraphUserRecord:
    return GraphUserRecord(
        {
            "id": str(uuid.UUID(int=5000 + n)),
            "onPremisesImmutableId": immutable,
            "onPremisesSyncEnabled": immutable is not None,
        },
        Origin(GRAPH_FILE, n),
    )


def directory() -> list[AdRecord]:
    return [
        AdRecord(
            BASE,
            {"objectClass": ["top", "domain", "domainDNS"], "dc": ["contoso"]},
            Origin(AD_FILE, 1),
        ),
        ou("Staff", 2),
        user(1, "Ada"),
        user(2, "Bob"),
        user(3, "Cy", consistency=False),
    ]


def build(
    tmp_path: Path,
    ad: list[AdRecord],
    mbx: list[MailboxRecord],
    graph: list[GraphUserRecord] | None = None,
    name: str = "t",
    **kw: Any,
) -> Path:
    out = tmp_path / name
    build_tenant(ad, mbx, graph, out, **kw)
    return out


def report(out: Path) -> dict[str, Any]:
    return json.loads((out / REPORT_JSON).read_text())


def cloud(out: Path) -> dict[str, Any]:
    return {m.alias: m for m in read_cloud_jsonl(out / CLOUD_NAME)}


def test_graph_rule_joins_by_consistency_guid_and_object_guid(tmp_path: Path) -> None:
    mbx = [mailbox(1, "Ada"), mailbox(2, "Bob"), mailbox(3, "Cy")]
    graph = [
        graph_user(1, b64(guid(1001))),
        graph_user(2, b64(guid(1002))),
        graph_user(3, b64(guid(3))),
    ]
    out = build(tmp_path, directory(), mbx, graph)
    rep = report(out)
    assert rep["joins"]["rules"] == {"graph": 3, "upn": 0, "smtp": 0}
    got = cloud(out)
    assert got["ada"].immutable_id == b64(guid(1001))
    assert got["cy"].immutable_id == b64(guid(3))
    assert got["ada"].custom_attributes[0] == "cost-1"
    assert all(m.is_dir_synced and m.is_exchange_cloud_managed for m in got.values())
    manifest = json.loads((out / MANIFEST_NAME).read_text())
    assert manifest["source"] == "import"
    assert manifest["base_dn"] == BASE
    assert manifest["domains"]["routing"] == "contoso.mail.onmicrosoft.com"
    assert manifest["writeback_ous"] == [f"OU=Staff,{BASE}"]
    assert rep["writeback_ous"]["source"] == "assumed"


def test_object_guid_anchor_stamps_consistency_guid(tmp_path: Path) -> None:
    out = build(tmp_path, directory(), [mailbox(3, "Cy")], [graph_user(3, b64(guid(3)))])
    entries = {dn: dict(attrs) for dn, attrs in _ldif(out)}
    cy = entries[f"CN=Cy,OU=Staff,{BASE}"]
    assert cy["mS-DS-ConsistencyGuid"] == [guid(3)] == cy["objectGUID"]
    assert "mS-DS-ConsistencyGuid" in entries[f"CN=Ada,OU=Staff,{BASE}"]  # its own, kept
    assert report(out)["ad"]["stamped_consistency_guid"] == 1
    assert "stamped" in (out / REPORT_MD).read_text()


def test_fallbacks_upn_then_smtp_with_counts(tmp_path: Path) -> None:
    mbx = [
        mailbox(1, "Ada"),  # UPN
        mailbox(2, "Bob", upn="robert@contoso.onmicrosoft.com"),  # only the SMTP address
        mailbox(9, "Zed", managed=False, IsDirSynced=False),  # cloud-only
    ]
    out = build(tmp_path, directory(), mbx)
    rep = report(out)
    assert rep["joins"]["rules"] == {"graph": 0, "upn": 1, "smtp": 1}
    assert rep["joins"]["cloud_only"] == 1
    got = cloud(out)
    assert got["bob"].immutable_id == b64(guid(1002))
    assert got["zed"].immutable_id is None and not got["zed"].is_dir_synced
    assert rep["joins"]["ad_users_without_mailbox"]["items"] == [
        {"dn": f"CN=Cy,OU=Staff,{BASE}", "origin": f"{AD_FILE}:30"}
    ]


def test_unmatched_and_double_matches_are_listed(tmp_path: Path) -> None:
    ad = [
        *directory(),
        user(4, "Dee", upn="shared@contoso.com"),
        user(5, "Eve", upn="shared@contoso.com"),
    ]
    mbx = [
        mailbox(1, "Ada"),
        mailbox(6, "Ada2", upn="ada@contoso.com", smtp="ada2@contoso.com"),  # Ada's second
        mailbox(7, "Shared", upn="shared@contoso.com"),  # two AD users
        mailbox(8, "Ghost"),  # nobody
    ]
    out = build(tmp_path, ad, mbx)
    joins = report(out)["joins"]
    assert [(u["upn"], u["origin"]) for u in joins["unmatched_mailboxes"]["items"]] == [
        ("ghost@contoso.com", f"{EXO_FILE}:8")
    ]
    (amb,) = joins["one_mailbox_several_ad_users"]["items"]
    assert amb["origin"] == f"{EXO_FILE}:7" and amb["rule"] == "upn"
    assert [u["dn"] for u in amb["ad_users"]] == [
        f"CN=Dee,OU=Staff,{BASE}",
        f"CN=Eve,OU=Staff,{BASE}",
    ]
    (shared,) = joins["one_ad_user_several_mailboxes"]["items"]
    assert shared["dn"] == f"CN=Ada,OU=Staff,{BASE}"
    assert [m["origin"] for m in shared["mailboxes"]] == [f"{EXO_FILE}:1", f"{EXO_FILE}:6"]
    got = cloud(out)
    assert got["shared"].immutable_id is None  # ambiguous: no anchor is guessed
    assert got["ghost"].immutable_id is None
    assert len(got) == 4  # nothing dropped
    md = (out / REPORT_MD).read_text()
    assert f"{EXO_FILE}:8" in md and f"{EXO_FILE}:7" in md


def test_graph_anchor_unknown_to_ad_is_unmatched_but_kept(tmp_path: Path) -> None:
    out = build(tmp_path, directory(), [mailbox(1, "Ada")], [graph_user(1, b64(guid(4242)))])
    (miss,) = report(out)["joins"]["unmatched_mailboxes"]["items"]
    assert "matches no AD user" in miss["why"]
    assert cloud(out)["ada"].immutable_id == b64(guid(4242))  # what the cloud holds


def test_unknown_attributes_and_refused_values_reported_and_left_out(tmp_path: Path) -> None:
    ad = directory()
    ad[2] = user(
        1,
        "Ada",
        extra={
            "memberOf": [f"CN=G,{BASE}"],
            "nTSecurityDescriptor": [b"\x01\x02"],
            "userAccountControl": ["not a number"],
            "msExchHideFromAddressLists": ["TRUE"],
            "distinguishedName": [f"CN=Ada,OU=Staff,{BASE}"],
        },
    )
    ad.append(
        AdRecord(
            f"CN=PC1,OU=Staff,{BASE}", {"objectClass": ["top", "computer"]}, Origin(AD_FILE, 99)
        )
    )
    out = build(tmp_path, ad, [mailbox(1, "Ada")])
    rep = report(out)["ad"]
    unknown = {r["name"]: r for r in rep["unknown_attributes"]}
    # memberOf is a back link: the directory makes it from the groups the export holds.
    assert "memberOf" not in unknown
    assert unknown["nTSecurityDescriptor"] == {
        "name": "nTSecurityDescriptor",
        "count": 1,
        "example": f"CN=Ada,OU=Staff,{BASE}",
    }
    (refused,) = rep["refused_values"]
    assert refused["name"] == "userAccountControl" and "not an integer" in refused["why"]
    assert {r["name"]: r["count"] for r in rep["left_out"]} == {"computer": 1}
    ada = dict(dict(_ldif(out))[f"CN=Ada,OU=Staff,{BASE}"])
    assert "memberOf" not in ada and "nTSecurityDescriptor" not in ada
    assert "userAccountControl" not in ada and "distinguishedName" not in ada
    assert ada["msExchHideFromAddressLists"] == [b"TRUE"]


def test_missing_root_and_ou_are_created_and_system_objects_not_joined(tmp_path: Path) -> None:
    ad = [
        user(1, "Ada", where="OU=Sales,OU=EMEA"),
        user(2, "krbtgt", where="CN=Users"),
        user(3, "SystemMailbox{1f05a927}", where="CN=Users"),
    ]
    mbx = [mailbox(1, "Ada"), mailbox(2, "krbtgt"), mailbox(3, "SystemMailbox{1f05a927}")]
    out = build(tmp_path, ad, mbx)
    rep = report(out)
    assert rep["ad"]["created"] == [
        BASE,
        f"OU=EMEA,{BASE}",
        f"OU=Sales,OU=EMEA,{BASE}",
        f"CN=Users,{BASE}",
    ]
    assert rep["ad"]["system_objects_not_joined"] == 2
    assert rep["joins"]["rules"]["upn"] == 1
    assert rep["cloud"]["system_mailboxes_not_joined"] == 1
    dns = [dn for dn, _ in _ldif(out)]
    assert dns.index(f"OU=EMEA,{BASE}") < dns.index(f"OU=Sales,OU=EMEA,{BASE}")


def test_no_mailboxes_and_no_ad_users_are_errors(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="no mailboxes"):
        build(tmp_path, directory(), [])
    with pytest.raises(ExportError, match=r"no AD users in domain contoso\.com"):
        build(tmp_path, directory()[:2], [mailbox(1, "Ada")])
    assert not (tmp_path / "t").exists()
    assert list(tmp_path.iterdir()) == []  # no staging folder left behind


def test_several_domains_need_domain(tmp_path: Path) -> None:
    other = AdRecord(
        "CN=Al,OU=Staff,DC=fabrikam,DC=com",
        {"objectClass": ["user"], "userPrincipalName": ["al@fabrikam.com"]},
        Origin(AD_FILE, 77),
    )
    with pytest.raises(ExportError, match=r"several domains: contoso\.com, fabrikam\.com"):
        build(tmp_path, [*directory(), other], [mailbox(1, "Ada")])
    out = build(tmp_path, [*directory(), other], [mailbox(1, "Ada")], domain="contoso.com")
    rows = {r["name"]: r["count"] for r in report(out)["ad"]["left_out"]}
    assert rows == {"in another domain (fabrikam.com)": 1}


def test_error_midway_leaves_nothing_and_non_empty_out_is_refused(tmp_path: Path) -> None:
    def failing() -> Iterator[AdRecord]:
        yield from directory()
        raise ExportError(Origin(AD_FILE, 42), "invalid base64 value")

    with pytest.raises(ExportError, match=f"{AD_FILE}:42: invalid base64"):
        build(tmp_path, failing(), [mailbox(1, "Ada")])
    assert list(tmp_path.iterdir()) == []
    full = tmp_path / "full"
    full.mkdir()
    (full / "keep.txt").write_text("mine")
    with pytest.raises(ExportError, match="not empty"):
        build(tmp_path, directory(), [mailbox(1, "Ada")], name="full")
    assert [p.name for p in full.iterdir()] == ["keep.txt"]
    empty = tmp_path / "empty"
    empty.mkdir()
    build(tmp_path, directory(), [mailbox(1, "Ada")], name="empty")
    assert (empty / LDIF_NAME).exists()


def test_same_records_give_identical_bytes(tmp_path: Path) -> None:
    graph = [graph_user(1, b64(guid(1001)))]
    one = build(tmp_path, directory(), [mailbox(1, "Ada"), mailbox(2, "Bob")], graph, "one")
    two = build(tmp_path, directory(), [mailbox(1, "Ada"), mailbox(2, "Bob")], graph, "two")
    names = sorted(p.name for p in one.iterdir())
    assert names == sorted([LDIF_NAME, CLOUD_NAME, MANIFEST_NAME, REPORT_JSON, REPORT_MD])
    for name in names:
        assert (one / name).read_bytes() == (two / name).read_bytes(), name


def test_output_loads_in_the_fake_and_ldap3_finds_the_users(tmp_path: Path) -> None:
    ad = [*directory(), user(4, "Dee", where="CN=Users")]
    out = build(
        tmp_path,
        ad,
        [mailbox(1, "Ada"), mailbox(3, "Cy")],
        [graph_user(1, b64(guid(1001))), graph_user(3, b64(guid(3)))],
    )
    seeded = load_ldif(out / LDIF_NAME)
    assert seeded.spec.domain == "contoso.com"
    mailboxes = read_cloud_jsonl(out / CLOUD_NAME)
    assert {m.immutable_id for m in mailboxes} == {b64(guid(1001)), b64(guid(3))}
    running = start_directory(seeded)
    try:
        ep = running.endpoints
        admin = seeded.account(Role.ADMIN)
        conn = Connection(Server(ep.ldap_url, get_info=NONE), admin.dn, admin.password)
        assert conn.bind()
        conn.search(
            f"OU=Staff,{BASE}",
            "(&(objectCategory=person)(objectClass=user))",
            SUBTREE,
            attributes=["cn", "mS-DS-ConsistencyGuid"],
        )
        found = {e.cn.value: e["mS-DS-ConsistencyGuid"].raw_values[0] for e in conn.entries}
        assert found == {"Ada": guid(1001), "Bob": guid(1002), "Cy": guid(3)}
        conn.search(BASE, "(mS-DS-ConsistencyGuid=*)", SUBTREE, attributes=["cn"])
        assert "Dee" in {e.cn.value for e in conn.entries}
        conn.unbind()
    finally:
        running.stop()


def _ldif(out: Path) -> list[tuple[str, list[tuple[str, list[bytes]]]]]:
    from mockservers.directory.ldif_io import read_ldif

    return [(dn, [(n, v) for n, v in attrs]) for dn, attrs in read_ldif(out / LDIF_NAME) if dn]


def test_reader_warnings_reach_the_report(tmp_path: Path) -> None:
    from harness.tenant.imports.build import _heeding

    def warning_reader() -> Iterator[MailboxRecord]:
        for n, name in ((1, "Ada"), (2, "Bob")):
            warnings.warn(f"{EXO_FILE}: a #TYPE line was skipped", UserWarning, stacklevel=1)
            yield mailbox(n, name)

    heard: list[str] = []
    out = tmp_path / "t"
    build_tenant(directory(), _heeding(warning_reader(), heard), None, out, warnings=heard)
    assert f"{EXO_FILE}: a #TYPE line was skipped (2 times)" in report(out)["warnings"]


def test_writeback_ous_fall_back_to_joined_users_then_are_left_out(tmp_path: Path) -> None:
    out = build(tmp_path, directory(), [mailbox(1, "Ada", managed=False)], name="joined")
    assert json.loads((out / MANIFEST_NAME).read_text())["writeback_ous"] == [f"OU=Staff,{BASE}"]
    assert report(out)["writeback_ous"]["basis"] == "joined"
    out = build(tmp_path, directory(), [mailbox(8, "Ghost")], name="none")
    assert "writeback_ous" not in json.loads((out / MANIFEST_NAME).read_text())
    assert any("--writeback-ou" in w for w in report(out)["warnings"])


def test_question_marks_are_looked_for_in_csv_exports_only(tmp_path: Path) -> None:
    ad = [*directory(), user(4, "J?rg")]
    for fmt, warned in (("adcsv", True), ("ldif", False)):
        inputs = [InputFile("ad", AD_FILE, fmt, "utf-8"), InputFile("exo", EXO_FILE, "x", "utf-8")]
        out = build(tmp_path, ad, [mailbox(1, "Ada")], name=fmt, inputs=inputs)
        hits = [w for w in report(out)["warnings"] if "contain '?'" in w]
        assert bool(hits) is warned, fmt
        assert all(f"{AD_FILE}:40" in w for w in hits)

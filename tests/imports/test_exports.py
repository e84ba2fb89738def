"""The export writers (fixtures for the import readers): each format's quirks, on a small
generated tenant, read back with independent parsers (ldaptor, csv, json)."""

from __future__ import annotations

import base64
import csv
import io
import json
import re
import uuid
from datetime import datetime
from pathlib import Path

import pytest
from ldaptor.protocols.ldap.distinguishedname import DistinguishedName
from ldaptor.protocols.ldap.ldifprotocol import LDIF

from harness.core.sid import DomainSid
from harness.tenant import TenantSpec, generate
from harness.tenant.exports import (
    ADPROPERTY_COLLECTION,
    DEFAULT_FORMATS,
    EXPORT_FORMATS,
    export_tenant,
    mailbox_properties,
    write_exo_json,
    write_graph_pages,
)
from harness.tenant.model import Tenant


@pytest.fixture(scope="module")
def tenant() -> Tenant:
    return generate(
        TenantSpec(mailboxes=60, seed=7, non_ascii_fraction=0.4, special_cn_fraction=0.3)
    )


@pytest.fixture(scope="module")
def files(tenant: Tenant, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return export_tenant(tenant, tmp_path_factory.mktemp("exports"), formats=list(EXPORT_FORMATS))


def ldaptor_entries(data: bytes) -> list:
    got = []

    class Collector(LDIF):
        def gotEntry(self, entry):
            got.append(entry)

    parser = Collector()
    parser.dataReceived(data)
    parser.connectionLost()
    return got


def unfolded_records(text: str) -> list[list[str]]:
    """Logical lines per record (RFC 2849 folding undone)."""
    records, lines = [], []
    for line in text.split("\n"):
        if line.startswith(" "):
            lines[-1] += line[1:]
        elif line:
            lines.append(line)
        elif lines:
            records.append(lines)
            lines = []
    return records


def text_of(path: Path, encoding: str) -> str:
    """The file's text, line ends kept (read_text would turn CRLF into LF)."""
    return path.read_bytes().decode(encoding)


def non_ascii_users(tenant: Tenant):
    return [u for u in tenant.ad_users if not u.dn.isascii()]


# ---------------------------------------------------------------- LDIF


def test_ldifde_is_crlf_changetype_add_folded_at_80(files, tenant):
    raw = files["ldifde"].read_bytes()
    assert raw.startswith(b"\r\n")  # ldifde's leading empty line
    assert b"\n" not in raw.replace(b"\r\n", b"")
    text = raw.decode("ascii")  # binary and non-ASCII values are all base64
    lines = text.split("\r\n")
    assert max(len(line) for line in lines) == 80
    assert any(line.startswith(" ") for line in lines)
    records = unfolded_records(text.replace("\r\n", "\n"))
    assert len(records) == entry_count(tenant)
    assert all(r[1] == "changetype: add" for r in records)
    assert all(r[0].startswith(("dn: ", "dn:: ")) for r in records)
    assert any(r[0].startswith("dn:: ") for r in records), "a non-ASCII DN is base64"


def entry_count(tenant) -> int:
    """The domain root, the OUs, the users and the groups."""
    return 1 + len(tenant.ous) + len(tenant.ad_users) + len(tenant.groups)


def test_ldifde_binary_values_are_base64(files, tenant):
    records = unfolded_records(text_of(files["ldifde"], "ascii").replace("\r\n", "\n"))
    # Users and groups: both are security principals, with a GUID and a SID.
    users = {u.object_guid for u in tenant.ad_users} | {g.object_guid for g in tenant.groups}
    guids = {
        base64.b64decode(line.split(":: ", 1)[1])
        for r in records
        for line in r
        if line.startswith("objectGUID:: ")
    }
    assert guids == users
    sids = [line for r in records for line in r if line.startswith("objectSid")]
    assert len(sids) == 1 + len(tenant.ad_users) + len(tenant.groups)
    assert all(line.startswith("objectSid:: ") for line in sids)


def test_ldifde_unicode_is_the_same_text_in_utf16le_with_bom(files):
    raw = files["ldifde-u"].read_bytes()
    assert raw[:2] == b"\xff\xfe"
    assert raw[2:].decode("utf-16-le") == text_of(files["ldifde"], "ascii")


def test_ldapsearch_is_plain_rfc2849_at_76_with_lf(files, tenant):
    raw = files["ldapsearch"].read_bytes()
    assert b"\r" not in raw
    text = raw.decode("ascii")
    assert not text.startswith(("version:", "#"))
    assert "changetype:" not in text
    assert max(len(line) for line in text.split("\n")) == 76
    entries = ldaptor_entries(raw)
    assert len(entries) == entry_count(tenant)
    by_dn = {e.dn.getText().lower(): e for e in entries}
    for u in tenant.ad_users:
        e = by_dn[DistinguishedName(u.dn).getText().lower()]
        assert set(e[b"objectGUID"]) == {u.object_guid}
        assert set(e[b"proxyAddresses"] if u.proxy_addresses else ()) == {
            a.encode() for a in u.proxy_addresses
        }


def test_ldifde_and_ldapsearch_hold_the_same_records(files):
    ldifde = unfolded_records(text_of(files["ldifde"], "ascii").replace("\r\n", "\n"))
    ldapsearch = unfolded_records(text_of(files["ldapsearch"], "ascii"))
    assert [[r[0], *r[2:]] for r in ldifde] == ldapsearch


# ---------------------------------------------------------------- csvde


def csv_rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline="")))


def test_csvde_header_joins_and_hex(files, tenant):
    raw = files["csvde"].read_bytes()
    assert raw.endswith(b"\r\n") and b"\n" not in raw.replace(b"\r\n", b"")
    text = raw.decode("utf-8")
    header, *rows = csv_rows(text)
    assert header[:2] == ["DN", "objectClass"]
    assert len(rows) == entry_count(tenant)
    first_user = tenant.ad_users[0]
    assert f'"{first_user.dn}",' in text  # a DN's commas make csvde quote it
    by_dn = {r[0]: dict(zip(header, r, strict=True)) for r in rows}
    for u in tenant.ad_users:
        row = by_dn[u.dn]
        assert row["objectClass"] == "top;person;organizationalPerson;user"
        assert row["objectGUID"] == f"X'{u.object_guid.hex()}'"
        assert row["proxyAddresses"].split(";") == (list(u.proxy_addresses) or [""])
        assert re.fullmatch(r"X'[0-9a-f]{56}'", row["objectSid"])
    # A group's members in one cell, joined with ';' (a DN's own ';' is escaped: '\;').
    assert tenant.groups
    for g in tenant.groups:
        row = by_dn[g.dn]
        assert row["objectClass"] == "top;group" and row["groupType"] == str(g.group_type)
        assert row["member"] == ";".join(g.members)


def test_csvde_unicode_has_bom_and_plain_non_ascii(files, tenant):
    raw = files["csvde-u"].read_bytes()
    assert raw[:2] == b"\xff\xfe"
    text = raw[2:].decode("utf-16-le")
    assert text == text_of(files["csvde"], "utf-8")
    assert any(u.dn in text for u in non_ascii_users(tenant))


# ---------------------------------------------------------------- Get-ADUser | Export-Csv


def test_get_aduser_ps7_columns_and_values(files, tenant):
    raw = files["get-aduser"].read_bytes()
    assert not raw.startswith(b"#TYPE") and not raw.startswith(b"\xef\xbb\xbf")
    text = raw.decode("utf-8")
    header, *rows = csv_rows(text)
    assert text.split("\r\n")[0] == ",".join(f'"{h}"' for h in header)
    assert len(rows) == len(tenant.ad_users)
    sid = DomainSid.of(tenant.spec.base_dn)
    for rid, (u, row) in enumerate(zip(tenant.ad_users, rows, strict=True), 1104):
        r = dict(zip(header, row, strict=True))
        assert r["DistinguishedName"] == u.dn
        assert uuid.UUID(r["ObjectGUID"]).bytes_le == u.object_guid
        assert r["SID"] == sid.text(rid)
        assert r["Enabled"] == ("False" if u.user_account_control & 2 else "True")
        assert r["proxyAddresses"] == ";".join(u.proxy_addresses)
        if u.consistency_guid is not None:
            assert base64.b64decode(r["mS-DS-ConsistencyGuid"]) == u.consistency_guid
        else:
            assert r["mS-DS-ConsistencyGuid"] == ""


def test_sid_text_and_binary_agree(tenant):
    sid = DomainSid.of(tenant.spec.base_dn)
    b = sid.binary(1234)
    assert len(b) == 28 and b[0] == 1 and b[1] == 5
    subs = [int.from_bytes(b[8 + 4 * i : 12 + 4 * i], "little") for i in range(5)]
    assert sid.text(1234) == "S-1-5-" + "-".join(map(str, subs))


def test_get_aduser_ps51_has_type_line_and_question_marks(files, tenant):
    raw = files["get-aduser-ps51"].read_bytes()
    assert raw.isascii()
    first, rest = raw.decode("ascii").split("\r\n", 1)
    assert first == "#TYPE Selected.Microsoft.ActiveDirectory.Management.ADUser"
    u = non_ascii_users(tenant)[0]
    assert u.dn.encode("ascii", "replace").decode() in rest
    assert "?" in rest


def test_get_aduser_unjoined_shows_the_collection_type(files, tenant):
    text = text_of(files["get-aduser-unjoined"], "ascii")
    assert text.startswith("#TYPE Microsoft.ActiveDirectory.Management.ADUser\r\n")
    header, *rows = csv_rows(text.split("\r\n", 1)[1])
    col = header.index("proxyAddresses")
    assert {r[col] for r in rows} == {ADPROPERTY_COLLECTION}
    assert EXPORT_FORMATS["get-aduser-unjoined"].negative


# ---------------------------------------------------------------- Get-Mailbox


def test_get_mailbox_json_ps7(files, tenant):
    raw = files["get-mailbox-json"].read_bytes()
    assert not raw.startswith(b"\xef\xbb\xbf")
    text = raw.decode("utf-8")
    assert text.startswith('[\r\n  {\r\n    "Guid": "')
    got = json.loads(text)
    assert len(got) == len(tenant.mailboxes)
    for mbx, rec in zip(tenant.mailboxes, got, strict=True):
        assert rec["ExternalDirectoryObjectId"] == mbx.id
        assert rec["EmailAddresses"] == list(mbx.email_addresses)
        assert rec["PrimarySmtpAddress"] == mbx.primary_smtp_address
        assert rec["IsExchangeCloudManaged"] is mbx.is_exchange_cloud_managed
        assert rec["CustomAttribute1"] == (mbx.custom_attributes[0] or "")
        assert datetime.fromisoformat(rec["WhenChanged"]).tzinfo is not None


def test_get_mailbox_json_ps51(files, tenant):
    raw = files["get-mailbox-json-ps51"].read_bytes()
    assert raw[:2] == b"\xff\xfe"
    text = raw[2:].decode("utf-16-le")
    assert text.startswith('[\r\n    {\r\n        "Guid":  "')
    assert re.search(r'"WhenChanged":  "\\/Date\(\d{13}\)\\/"', text)
    got = json.loads(text)
    want = mailbox_properties(tenant.mailboxes[0])
    ms = int(want["WhenChanged"].timestamp() * 1000)
    assert got[0]["WhenChanged"] == f"/Date({ms})/"
    assert [r["ExternalDirectoryObjectId"] for r in got] == [m.id for m in tenant.mailboxes]


def test_get_mailbox_json_depth2_shows_truncated_values(files):
    text = text_of(files["get-mailbox-json-depth2"], "utf-8")
    got = json.loads(text)
    assert all(a.startswith("@{AddressString=") for a in got[0]["EmailAddresses"])
    assert "System.Object[]" in text
    assert EXPORT_FORMATS["get-mailbox-json-depth2"].negative


def test_one_mailbox_is_a_bare_object_as_convertto_json_writes_it(tenant, tmp_path):
    one = Tenant(tenant.spec, tenant.ous, tenant.ad_users, tenant.mailboxes[:1])
    got = json.loads(text_of(write_exo_json(one, tmp_path / "one.json").path, "utf-8"))
    assert isinstance(got, dict) and got["ExternalDirectoryObjectId"] == tenant.mailboxes[0].id


def test_get_mailbox_csv_joins_and_quotes(files, tenant):
    text = text_of(files["get-mailbox-csv"], "utf-8")
    header, *rows = csv_rows(text)
    assert text.startswith('"Guid","ExchangeGuid","ExternalDirectoryObjectId"')
    assert len(rows) == len(tenant.mailboxes)
    for mbx, row in zip(tenant.mailboxes, rows, strict=True):
        r = dict(zip(header, row, strict=True))
        assert r["EmailAddresses"].split(";") == list(mbx.email_addresses)
        assert r["IsDirSynced"] == str(mbx.is_dir_synced)
        assert re.fullmatch(r"\d{1,2}/\d{1,2}/\d{4} \d{1,2}:\d\d:\d\d [AP]M", r["WhenChanged"])
    assert files["get-mailbox-csv-ps51"].read_bytes().isascii()


# ---------------------------------------------------------------- Graph


def test_graph_pages_chain_and_join_to_ad(tenant, tmp_path):
    path = write_graph_pages(tenant, tmp_path / "pages.json", page_size=7).path
    pages = json.loads(text_of(path, "utf-8"))
    n = len(tenant.mailboxes)
    assert len(pages) == -(-n // 7)
    assert all("@odata.nextLink" in p for p in pages[:-1]) and "@odata.nextLink" not in pages[-1]
    assert all(p["@odata.context"].endswith("onPremisesExtensionAttributes)") for p in pages)
    users = [u for p in pages for u in p["value"]]
    assert [u["id"] for u in users] == [m.id for m in tenant.mailboxes]
    anchors = {
        base64.b64encode(u.consistency_guid).decode() for u in tenant.ad_users if u.consistency_guid
    }
    synced = [u for u in users if u["onPremisesSyncEnabled"]]
    assert synced and all(u["onPremisesImmutableId"] in anchors for u in synced)
    cloud_only = [u for u in users if u["onPremisesSyncEnabled"] is None]
    assert all(u["onPremisesImmutableId"] is None for u in cloud_only)


def test_get_mguser_is_pascal_case(files, tenant):
    got = json.loads(text_of(files["get-mguser"], "utf-8"))
    assert set(got[0]) >= {"Id", "OnPremisesImmutableId", "OnPremisesSyncEnabled", "ProxyAddresses"}
    assert "ExtensionAttribute1" in got[0]["OnPremisesExtensionAttributes"]
    assert [u["Id"] for u in got] == [m.id for m in tenant.mailboxes]


# ---------------------------------------------------------------- the table


def test_exports_are_deterministic(tenant, files, tmp_path):
    again = export_tenant(tenant, tmp_path, formats=DEFAULT_FORMATS)
    for name, path in again.items():
        assert path.read_bytes() == files[name].read_bytes(), name


def test_unknown_format_writes_nothing(tenant, tmp_path):
    with pytest.raises(ValueError, match="unknown export format 'ldif2'"):
        export_tenant(tenant, tmp_path / "out", formats=["ldifde", "ldif2"])
    assert not (tmp_path / "out").exists()

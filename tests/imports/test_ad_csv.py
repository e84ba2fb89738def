"""The csvde and Get-ADUser | Export-Csv readers on hand-made samples, and their errors."""

from __future__ import annotations

import base64
import uuid
from pathlib import Path

import pytest

from harness.tenant.imports.ad import read_ad
from harness.tenant.imports.advalues import binary_from_text, sid_bytes
from harness.tenant.imports.records import ExportError

SAMPLES = Path(__file__).parent / "samples" / "ad"
GUID = uuid.UUID("d2a1c0b3-5e4f-4a6b-8c7d-9e0f1a2b3c4d")
CGUID = uuid.UUID("0b1c2d3e-4f50-4617-8283-94a5b6c7d8e9")


def error(path: Path, fmt: str | None = None) -> str:
    with pytest.raises(ExportError) as e:
        list(read_ad(path, fmt))
    return str(e.value)


def test_csvde_export():
    ann, bob = read_ad(SAMPLES / "csvde.csv")
    assert ann.dn == "CN=Lee\\, Ann,OU=Users,DC=contoso,DC=com"
    assert ann.origin.line == 2
    assert ann.attrs == {
        # multi-valued attributes are split on ';'
        "objectClass": ["top", "person", "organizationalPerson", "user"],
        "proxyAddresses": ["SMTP:ann.lee@contoso.com", "smtp:alee@contoso.mail.onmicrosoft.com"],
        "cn": ["Lee, Ann"],
        # a single-valued one is not, and keeps its quotes and line break
        "description": ['Says "hi";\r\nsecond line'],
        # X'hex' binary values as bytes, in the order AD stores them
        "objectGUID": [GUID.bytes_le],
        "mS-DS-ConsistencyGuid": [CGUID.bytes_le],
        "userAccountControl": ["512"],
        "msExchHideFromAddressLists": ["TRUE"],
    }
    assert bob.origin.line == 4  # Ann's row spans two lines
    assert bob.attrs == {"objectClass": ["user"], "cn": ["Bob Ray"], "userAccountControl": ["514"]}


def test_csvde_unicode_export_reads_the_same(tmp_path):
    """csvde -u writes UTF-16LE with a BOM."""
    p = tmp_path / "u.csv"
    p.write_bytes(b"\xff\xfe" + (SAMPLES / "csvde.csv").read_bytes().decode().encode("utf-16-le"))
    want = [(r.dn, r.attrs, r.origin.line) for r in read_ad(SAMPLES / "csvde.csv")]
    assert [(r.dn, r.attrs, r.origin.line) for r in read_ad(p)] == want


def test_csvde_text_in_hex(tmp_path):
    p = tmp_path / "x.csv"
    p.write_text("DN,displayName\nCN=A,X'5a6fc3ab'\n")
    (rec,) = read_ad(p)
    assert rec.attrs == {"displayName": ["Zoë"]}


def test_get_aduser_export():
    ann, bob = read_ad(SAMPLES / "getaduser.csv")  # the #TYPE line is skipped
    assert ann.dn == "CN=Ann Lee,OU=Users,DC=contoso,DC=com"
    assert ann.origin.line == 3
    assert ann.attrs == {
        "userAccountControl": ["512"],  # Enabled=True, no userAccountControl column
        "givenName": ["Ann"],
        "cn": ["Ann Lee"],
        "objectClass": ["user"],
        "objectGUID": [GUID.bytes_le],  # GUID text -> AD's byte order
        "sAMAccountName": ["alee"],
        "objectSid": [sid_bytes("S-1-5-21-3569013409-402716389-1548302889-1105")],
        "sn": ["Lee"],
        "userPrincipalName": ["alee@contoso.com"],
        "mail": ["ann.lee@contoso.com"],  # EmailAddress and mail: one value
        "proxyAddresses": ["SMTP:ann.lee@contoso.com", "smtp:alee@contoso.mail.onmicrosoft.com"],
        "mS-DS-ConsistencyGuid": [CGUID.bytes_le],  # base64
        "extensionAttribute1": ["cost centre 42"],
        "msExchHideFromAddressLists": ["TRUE"],
        "Department": ["Sales"],
    }
    assert bob.attrs["userAccountControl"] == ["514"]
    assert bob.attrs["mS-DS-ConsistencyGuid"] == [CGUID.bytes_le]  # GUID text
    assert "mail" not in bob.attrs and "proxyAddresses" not in bob.attrs  # empty cells


def test_powershell7_export_without_type_line_and_unknown_columns(tmp_path):
    p = tmp_path / "x.csv"
    p.write_text(
        '"DistinguishedName","LockedOut","userAccountControl","Enabled"\n'
        '"CN=A,DC=x","False","66048","True"\n'
    )
    (rec,) = read_ad(p)
    # a computed property passes through by its own name; Enabled does not override the UAC
    assert rec.attrs == {"LockedOut": ["False"], "userAccountControl": ["66048"]}


def test_sid_text_to_binary():
    # S-1-5-21-a-b-c-rid: revision 1, 5 sub-authorities, authority 5 big-endian, then
    # little-endian sub-authorities
    assert sid_bytes("S-1-5-21-1-2-3-1104") == bytes.fromhex(
        "01050000000000051500000001000000020000000300000050040000"
    )
    assert sid_bytes("S-1-5-32-544") == bytes.fromhex("01020000000000052000000020020000")
    assert sid_bytes("not a sid") is None


def test_binary_text_forms():
    assert binary_from_text("objectGUID", f"{{{GUID}}}") == GUID.bytes_le
    assert binary_from_text("objectGUID", "X'00ff'") == b"\x00\xff"
    raw = base64.b64encode(b"\x01\x02\x03").decode()
    assert binary_from_text("msExchMailboxGuid", raw) == b"\x01\x02\x03"
    assert binary_from_text("objectSid", "S-1-5-18") == bytes.fromhex("010100000000000512000000")
    assert binary_from_text("thumbnailPhoto", "S-1-5-18") is None  # not a SID attribute
    assert binary_from_text("objectGUID", "X'0ff'") is None  # odd hex


def test_unjoined_multi_valued_column_is_refused():
    p = SAMPLES / "collection.csv"
    assert error(p) == (
        f"{p}:3: column 'proxyAddresses' holds the text "
        "'Microsoft.ActiveDirectory.Management.ADPropertyValueCollection', not its values "
        "(hint: join it in the export: @{n='proxyAddresses';e={$_.proxyAddresses -join ';'}})"
    )


def test_byte_array_column_is_refused():
    p = SAMPLES / "bytes.csv"
    assert error(p) == (
        f"{p}:3: column 'mS-DS-ConsistencyGuid' holds the text 'System.Byte[]', not its bytes "
        "(hint: export it as base64: @{n='mS-DS-ConsistencyGuid';"
        "e={[Convert]::ToBase64String($_.'mS-DS-ConsistencyGuid')}})"
    )


def test_column_count_mismatch():
    p = SAMPLES / "columns.csv"
    assert error(p) == (
        f"{p}:3: 5 columns where the header (line 1) has 3 (hint: a value with a comma or "
        "line break must be in double quotes; was the file cut or edited?)"
    )


def test_truncated_quoted_cell(tmp_path):
    p = tmp_path / "x.csv"
    p.write_text('DN,description\n"CN=A,DC=x",ok\n"CN=B,DC=x","cut in the mid')
    assert error(p) == (
        f"{p}:3: not a well-formed CSV row: unexpected end of data (hint: a value with a "
        "comma, quote or line break must be in double quotes (with quotes doubled); "
        "was the file cut short?)"
    )


def test_bad_binary_value(tmp_path):
    p = tmp_path / "x.csv"
    p.write_text("DN,objectGUID\nCN=A,X'abc'\n")
    assert error(p) == (
        f"{p}:2: column 'objectGUID': \"X'abc'\" is not a binary value (hint: binary values "
        "are X'hex' (csvde), a GUID, a SID (S-1-5-...) or base64)"
    )


def test_rows_without_a_dn(tmp_path):
    p = tmp_path / "x.csv"
    p.write_text("DN,cn\n,a\n")
    assert error(p) == f"{p}:2: a row without a DN"
    p.write_text('"DistinguishedName","cn"\n"","a"\n')
    assert error(p) == f"{p}:2: a row without a DistinguishedName"


def test_header_only_is_an_empty_export(tmp_path):
    p = tmp_path / "x.csv"
    p.write_text("DN,cn\n")
    assert error(p).startswith(f"{p}: no AD objects in the file")


def test_forced_format_that_does_not_fit(tmp_path):
    assert error(SAMPLES / "getaduser.csv", "csvde").startswith(
        f"{SAMPLES / 'getaduser.csv'}:1: the first column is '#TYPE "
        "Microsoft.ActiveDirectory.Management.ADUser', not DN"
    )
    p = tmp_path / "x.csv"
    p.write_text('"SamAccountName"\n"a"\n')
    assert error(p, "adcsv") == (
        f"{p}:1: no DistinguishedName column "
        "(hint: Get-ADUser always has one: was it left out of Select-Object?)"
    )


def test_properties_star_export_with_collections_the_tenant_leaves_out(tmp_path):
    """Get-ADUser -Properties * | Export-Csv: placeholders in columns of attributes the fake's
    schema lacks do not refuse the file; the PowerShell wrapper's own columns are dropped."""
    p = tmp_path / "x.csv"
    p.write_text(
        '"DistinguishedName","memberOf","thumbnailPhoto","PropertyNames","PropertyCount",'
        '"proxyAddresses"\n'
        '"CN=A,DC=x","Microsoft.ActiveDirectory.Management.ADPropertyValueCollection",'
        '"System.Byte[]","System.Collections.Generic.SortedDictionary`2+KeyCollection",'
        '"6","SMTP:a@x"\n'
    )
    (rec,) = read_ad(p)
    assert rec.attrs == {
        "memberOf": ["Microsoft.ActiveDirectory.Management.ADPropertyValueCollection"],
        "proxyAddresses": ["SMTP:a@x"],
    }


def test_export_csv_with_use_culture_semicolons(tmp_path):
    """Export-Csv -UseCulture in a German or French locale separates cells with ';'."""
    p = tmp_path / "x.csv"
    p.write_text(
        "#TYPE Microsoft.ActiveDirectory.Management.ADUser\n"
        '"DistinguishedName";"Surname";"proxyAddresses"\n'
        '"CN=Müller\\, Jörg,DC=x";"Müller";"SMTP:j@x;smtp:jm@x"\n'
    )
    (rec,) = read_ad(p)
    assert rec.dn == "CN=Müller\\, Jörg,DC=x"
    assert rec.attrs == {"sn": ["Müller"], "proxyAddresses": ["SMTP:j@x", "smtp:jm@x"]}
    p.write_text('"DistinguishedName";"Surname"\n"CN=A,DC=x";"A"\n')  # PowerShell 7: no #TYPE
    assert [r.attrs for r in read_ad(p)] == [{"sn": ["A"]}]


def test_csvde_members_split_on_unescaped_semicolons_only(tmp_path):
    # A DN escapes its own ';' (RFC 4514): "Smith\; External" is one member, not two.
    p = tmp_path / "g.csv"
    members = [
        r"CN=Ann Smith\; External,OU=Corp,DC=contoso,DC=com",
        "CN=Bo,OU=Corp,DC=contoso,DC=com",
    ]
    p.write_text(
        "DN,objectClass,member,proxyAddresses\r\n"
        f'"CN=G,OU=Corp,DC=contoso,DC=com",top;group,"{";".join(members)}",smtp:a@x.com;smtp:b@x.com\r\n',
        encoding="utf-8",
    )
    (rec,) = read_ad(p, "csvde")
    assert rec.attrs["member"] == members
    assert rec.attrs["proxyAddresses"] == ["smtp:a@x.com", "smtp:b@x.com"]

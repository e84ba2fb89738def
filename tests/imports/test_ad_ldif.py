"""The LDIF reader on hand-made samples of what ldifde and ldapsearch write, and its errors."""

from __future__ import annotations

import base64
import uuid
from pathlib import Path

import pytest

from harness.tenant.imports.ad import read_ad
from harness.tenant.imports.records import ExportError
from harness.tenant.imports.textfile import HINT
from mockservers.directory.ldif_io import LdifError, read_ldif

SAMPLES = Path(__file__).parent / "samples" / "ad"
GUID = uuid.UUID("d2a1c0b3-5e4f-4a6b-8c7d-9e0f1a2b3c4d").bytes_le
CGUID = uuid.UUID("0b1c2d3e-4f50-4617-8283-94a5b6c7d8e9").bytes_le
SID = bytes.fromhex("010500000000000515000000a1b2c3d4e5f60718293a4b5c51040000")


def records(name: str, fmt: str | None = "ldif"):
    return list(read_ad(SAMPLES / name, fmt))


def error(path: Path, fmt: str | None = "ldif") -> str:
    with pytest.raises(ExportError) as e:
        list(read_ad(path, fmt))
    return str(e.value)


def test_ldifde_export():
    recs = records("ldifde.ldif")
    assert [r.dn for r in recs] == [
        "DC=contoso,DC=com",
        "OU=Users,DC=contoso,DC=com",
        "CN=Jörg Müller,OU=Zürich,OU=Users,DC=contoso,DC=com",  # dn:: base64
        "CN=All Staff,OU=Users,DC=contoso,DC=com",
    ]
    assert [r.origin.line for r in recs] == [1, 8, 14, 38]
    user = recs[2].attrs
    assert "changetype" not in user  # changetype: add is accepted and dropped
    assert user["cn"] == ["Jörg Müller"]
    assert user["objectGUID"] == [GUID]
    assert user["objectSid"] == [SID]
    assert user["mS-DS-ConsistencyGuid"] == [CGUID]
    assert user["objectClass"] == ["top", "person", "organizationalPerson", "user"]
    x500 = (
        "X500:/o=ExchangeLabs/ou=Exchange Administrative Group (FYDIBOHF23SPDLT)"
        "/cn=Recipients/cn=0b1c2d3e4f5046178283-jmueller"
    )
    assert user["proxyAddresses"] == [
        "SMTP:joerg.mueller@contoso.com",
        "smtp:jmueller@contoso.mail.onmicrosoft.com",
        x500,  # folded at 80 columns, CRLF
    ]
    assert user["extensionAttribute1"] == ["x" * 150]
    # member;range=0-1 (ldifde on a big group): the option goes, the values stay
    assert recs[3].attrs["member"] == [
        "CN=A,OU=Users,DC=contoso,DC=com",
        "CN=B,OU=Users,DC=contoso,DC=com",
    ]


def test_ldapsearch_export():
    ann, bob = records("ldapsearch.ldif")
    # thumbnailPhoto is not in the fake's schema but is binary in AD: bytes, though its
    # base64 was folded at 76 columns in the middle of a 4-character group
    assert ann.attrs["thumbnailPhoto"] == [bytes(range(256)) * 2]
    assert ann.attrs["objectGUID"] == [GUID]
    assert ann.attrs["description"] == [" leading space and trailing "]
    assert bob.dn == "CN=Bob Ray,OU=Users,DC=fabrikam,DC=com"
    assert bob.origin.line == 19
    assert bob.attrs == {"objectClass": ["user"], "cn": ["Bob Ray"]}  # no blank line at EOF


def test_a_fold_that_splits_a_utf8_character_and_a_folded_comment():
    (rec,) = records("folded-midchar.ldif")
    assert rec.dn == "CN=Zoe,DC=contoso,DC=com"
    assert rec.origin.line == 5
    assert rec.attrs["displayName"] == ["a" * 62 + "Zoë Ångström"]
    assert rec.attrs["cn"] == ["Zoe"]


def test_utf16le_with_bom_as_ldifde_u_writes_it():
    (rec,) = records("utf16le-bom.ldif")
    assert rec.dn == "CN=Chloé Dubois,OU=Users,DC=contoso,DC=com"
    assert rec.attrs == {
        "objectClass": ["user"],
        "cn": ["Chloé Dubois"],
        "displayName": ["Chloé 😀"],
    }
    (rec,) = records("utf16le-split-surrogate.ldif")  # a fold between two UTF-16 surrogates
    assert rec.attrs["displayName"] == ["ab\U0001f600cd"]


def test_attribute_spellings_merge_and_options_drop(tmp_path):
    p = tmp_path / "x.ldif"
    p.write_text(
        "dn: CN=A,DC=x\nproxyAddresses: SMTP:a@x\nproxyaddresses: smtp:b@x\n"
        "userCertificate;binary:: AAE=\nmember;range=1500-*: CN=B,DC=x\ndescription:\n"
    )
    (rec,) = read_ad(p)
    assert rec.attrs == {
        "proxyAddresses": ["SMTP:a@x", "smtp:b@x"],
        "userCertificate": [b"\x00\x01"],
        "member": ["CN=B,DC=x"],
        "description": [""],
    }


def test_plain_text_of_a_binary_attribute_is_bytes(tmp_path):
    p = tmp_path / "x.ldif"
    p.write_text("dn: CN=A,DC=x\nmsExchMailboxGuid: abc\n")
    (rec,) = read_ad(p)
    assert rec.attrs["msExchMailboxGuid"] == [b"abc"]


def test_base64_that_is_not_utf8_on_a_text_attribute(tmp_path):
    p = tmp_path / "x.ldif"
    p.write_text("dn: CN=A,DC=x\ncn: A\ndisplayName:: " + base64.b64encode(b"\xff\xfe").decode())
    assert error(p) == (
        f"{p}:3: displayName: the base64 value is not UTF-8 text "
        "(hint: only binary attributes may hold bytes)"
    )


def test_truncated_file():
    p = SAMPLES / "truncated.ldif"
    assert error(p) == (
        f"{p}:6: the file ends in the middle of a folded line "
        "(hint: the export looks truncated; export it again)"
    )


def test_bad_base64():
    p = SAMPLES / "bad-base64.ldif"
    assert error(p) == (
        f"{p}:3: invalid base64 value (hint: a '::' value must be complete base64; "
        "the file may be truncated or edited)"
    )


def test_record_without_dn():
    p = SAMPLES / "no-dn.ldif"
    assert error(p) == (
        f"{p}:4: a record must start with 'dn:' (hint: records are separated by one "
        "blank line; was the 'dn:' line cut off?)"
    )


def test_a_file_of_only_attribute_lines_is_detected_as_ldif(tmp_path):
    p = tmp_path / "x.ldif"
    p.write_text("cn: B\nsn: B\n")
    assert error(p, None).startswith(f"{p}:1: a record must start with 'dn:'")


def test_change_records_other_than_add():
    p = SAMPLES / "modify.ldif"
    assert error(p) == (
        f"{p}:2: change records are not supported, only entries (hint: this record is "
        "'changetype: modify'; export entries with ldifde -f or ldapsearch)"
    )


def test_url_values():
    p = SAMPLES / "url.ldif"
    assert error(p) == (
        f"{p}:2: URL values (':<') are not supported "
        "(hint: put the value in the file, as base64 after '::')"
    )


def test_latin1_file():
    p = SAMPLES / "latin1.ldif"
    assert error(p) == f"{p}:5: not UTF-8: byte 0xE9 (hint: {HINT})"


def test_latin1_past_the_sniffed_start_names_its_line(tmp_path):
    p = tmp_path / "x.ldif"
    ok = b"dn: CN=A,DC=x\ncn: A\n\n"
    p.write_bytes(ok * 400 + b"dn: CN=B,DC=x\ncn: Beyonc\xe9\n")
    assert error(p) == f"{p}:1202: not UTF-8: byte 0xE9 (hint: {HINT})"


def test_utf16_without_bom():
    p = SAMPLES / "utf16le-nobom.ldif"
    assert error(p).startswith(f"{p}:1: looks like UTF-16LE without a byte order mark")


@pytest.mark.parametrize(
    ("text", "line", "what", "hint"),
    [
        (
            "dn: CN=A,DC=x\ncn: A\n\n continued\n",
            4,
            "continuation line without a line to continue",
            "a line starting with a space continues the line above; "
            "a blank line cannot be continued",
        ),
        (
            "dn: CN=A,DC=x\ncn: A\ndn: CN=B,DC=x\n",
            3,
            "'dn:' inside a record",
            "records are separated by one blank line; change records are not supported",
        ),
        (
            "dn: CN=A,DC=x\ncn: A\n  two spaces\nnot an attribute\n",
            4,
            "expected 'attribute: value'",
            "a folded line continues with exactly one leading space",
        ),
        ("version: 2\n\ndn: CN=A,DC=x\n", 1, "unsupported LDIF 'version: 2'", "only version 1"),
    ],
)
def test_malformed_lines(tmp_path, text, line, what, hint):
    p = tmp_path / "x.ldif"
    p.write_text(text)
    assert error(p) == f"{p}:{line}: {what} (hint: {hint})"


def test_an_empty_export_is_an_error(tmp_path):
    p = tmp_path / "x.ldif"
    p.write_text("version: 1\n\n# nothing exported\n")
    assert error(p) == (
        f"{p}: no AD objects in the file (hint: AD exports are LDIF (ldifde -f, ldapsearch "
        "-LLL), csvde -f CSV (DN first) or Get-ADUser | Export-Csv (with DistinguishedName); "
        "name it with --format ldif|csvde|adcsv)"
    )


def test_the_fake_directory_reads_through_the_same_reader():
    """read_ldif (the fake's loader) gives the importer's records, every value as bytes."""
    for name in ("ldapsearch.ldif", "folded-midchar.ldif", "utf16le-split-surrogate.ldif"):
        want = [
            (
                r.dn,
                [
                    (k, [v if isinstance(v, bytes) else v.encode() for v in vs])
                    for k, vs in r.attrs.items()
                ],
            )
            for r in read_ad(SAMPLES / name)
        ]
        assert list(read_ldif(SAMPLES / name)) == want
    # ...but it reads entries only, as before: changetype: add is refused there
    with pytest.raises(LdifError, match=r"ldifde\.ldif:2: change records are not supported"):
        list(read_ldif(SAMPLES / "ldifde.ldif"))

"""Exchange Online mailbox exports as admins make them: each format and quirk, read right."""

from __future__ import annotations

import codecs
from pathlib import Path

import pytest

from harness.tenant.imports.exo import detect_exo_format, read_mailboxes
from harness.tenant.imports.records import ExportError
from harness.tenant.imports.textfile import open_text

SAMPLES = Path(__file__).parent / "samples" / "cloud"
X500 = (
    "x500:/o=ExchangeLabs/ou=Exchange Administrative Group (FYDIBOHF23SPDLT)/cn=Recipients/"
    "cn=5e1b0c2a4f7d4a3e9c1b2d3e4f5a6b7c-ann"
)


def read(name: str | Path, fmt: str | None = None) -> tuple[list, list[str]]:
    warnings: list[str] = []
    path = name if isinstance(name, Path) else SAMPLES / name
    return list(read_mailboxes(path, fmt, warnings)), warnings


def test_powershell_7_json_array_typed_and_canonical() -> None:
    recs, warnings = read("exo-ps7.json")
    assert warnings == []
    assert [r.origin.line for r in recs] == [2, 32]
    assert recs[0].origin.path == str(SAMPLES / "exo-ps7.json")
    assert (
        recs[0].props
        == {
            "Guid": "6f1c2a8e-3b4d-4e5f-9a0b-1c2d3e4f5a6b",
            "ExchangeGuid": "0d9e8f7a-6b5c-4d3e-2f1a-0b9c8d7e6f5a",
            "ExternalDirectoryObjectId": "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d",
            "UserPrincipalName": "ann.archer@contoso.com",
            "Alias": "ann.archer",
            "DisplayName": "Ann Archer",
            "Name": "Ann Archer",
            "PrimarySmtpAddress": "ann.archer@contoso.com",
            "WindowsEmailAddress": "ann.archer@contoso.com",
            "EmailAddresses": [
                "SMTP:ann.archer@contoso.com",
                "smtp:ann.archer@contoso.mail.onmicrosoft.com",
                X500,
            ],
            "CustomAttribute1": "Sales",
            "CustomAttribute2": None,  # "" in Get-Mailbox: not set (AD has no empty value)
            "ExtensionCustomAttribute1": ["north", "west"],
            "ExtensionCustomAttribute2": [],
            "RecipientTypeDetails": "UserMailbox",
            "RecipientType": "UserMailbox",
            "IsDirSynced": True,
            "IsExchangeCloudManaged": True,
            "HiddenFromAddressListsEnabled": False,
            "LegacyExchangeDN": X500[5:],
            "DistinguishedName": (
                "CN=Ann Archer,OU=contoso.onmicrosoft.com,OU=Microsoft Exchange Hosted "
                "Organizations,DC=EURPR01A001,DC=PROD,DC=OUTLOOK,DC=COM"
            ),
            "WhenChanged": "2023-11-14T22:13:20.123456Z",  # +01:00 local, 7 digits: UTC, µs
            "WhenCreated": "2021-03-01T08:00:00Z",
            "Database": "EURPR01DG123-db045",  # not a property the harness uses: passed through
        }
    )
    # Braces and capitals (how some exports write a GUID) come out in the canonical form.
    assert recs[1].props["Guid"] == "7a2d3b9f-4c5e-4f60-8b1c-2d3e4f5a6b7c"
    # A property the export did not select is absent, not empty.
    assert "CustomAttribute1" not in recs[1].props
    assert recs[1].props["EmailAddresses"][2] == "SIP:bob.baker@contoso.com"


def test_get_exomailbox_property_sets_minimum_custom_address_list() -> None:
    (rec,), warnings = read("exo-exomailbox.json")
    assert warnings == []
    p = rec.props
    assert (p["Guid"], p["ExternalDirectoryObjectId"]) == (
        "6f1c2a8e-3b4d-4e5f-9a0b-1c2d3e4f5a6b",
        "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d",
    )
    assert (p["CustomAttribute1"], p["CustomAttribute15"]) == (None, "Ops")
    assert (p["ExtensionCustomAttribute1"], p["ExtensionCustomAttribute5"]) == ([], ["a"])
    assert p["HiddenFromAddressListsEnabled"] is False
    # Minimum's other properties pass through as they are, null included.
    assert (p["Identity"], p["ExchangeVersion"], p["AddressBookPolicy"]) == (
        "ann.archer",
        "0.20 (15.0.0.0)",
        None,
    )
    assert p["GrantSendOnBehalfTo"] == []
    assert "IsExchangeCloudManaged" not in p  # only Get-Mailbox has it: absent, not False


def test_single_mailbox_unwrapped_by_powershell_is_one_record() -> None:
    recs, _ = read("exo-single.json")
    assert len(recs) == 1
    assert recs[0].origin.line == 1
    assert recs[0].props["EmailAddresses"] == ["SMTP:ann.archer@contoso.com"]
    assert recs[0].props["IsExchangeCloudManaged"] is True


def test_windows_powershell_51_utf16_dates_and_numeric_recipient_types() -> None:
    path = SAMPLES / "exo-ps51-utf16.json"
    assert path.read_bytes().startswith(codecs.BOM_UTF16_LE)
    recs, warnings = read(path)
    first, room, odd = (r.props for r in recs)
    assert first["DisplayName"] == "Zoë Müller"
    assert first["EmailAddresses"] == [
        "SMTP:zoe.mueller@contoso.com",
        "smtp:zoë.müller@contoso.com",
    ]
    assert first["WhenChanged"] == "2023-11-14T22:13:20Z"  # \/Date(1700000000000)\/
    assert first["WhenCreated"] == "2021-03-01T08:00:00.123Z"
    assert room["WhenChanged"] == "1969-12-31T23:59:59Z"  # \/Date(-1000)\/
    assert first["RecipientTypeDetails"] == "RemoteUserMailbox"  # 2147483648
    assert room["RecipientTypeDetails"] == "RoomMailbox"  # 16
    assert odd["RecipientTypeDetails"] == "123456"  # unknown number: kept, and said
    assert [r.origin.line for r in recs] == [2, 18, 31]  # CRLF line ends, lines still right
    assert warnings == [
        f"{path}: RecipientTypeDetails 123456 is a number this reader does not know, kept as "
        "text, on 1 mailbox(es), e.g. mailbox 'odd.one@contoso.com' (line 31)"
    ]


def test_email_addresses_as_proxy_address_objects() -> None:
    (rec,), _ = read("exo-address-objects.json")
    # ProxyAddressString where present; else prefix + address, primary in capitals.
    assert rec.props["EmailAddresses"] == ["SMTP:ann.archer@contoso.com", "smtp:ann@contoso.com"]


def test_json_lines_and_a_joined_address_text() -> None:
    recs, _ = read("exo-lines.jsonl")
    assert [r.origin.line for r in recs] == [1, 3]
    assert recs[1].props["EmailAddresses"] == ["SMTP:bob.baker@contoso.com", "smtp:bob@contoso.com"]


def test_export_csv_with_type_line_joined_values_and_question_marks() -> None:
    path = SAMPLES / "exo-ps51.csv"
    recs, warnings = read(path)
    ann, rene = (r.props for r in recs)
    assert [r.origin.line for r in recs] == [3, 4]  # after #TYPE and the header
    assert ann["EmailAddresses"] == [
        "SMTP:ann.archer@contoso.com",
        "smtp:ann.archer@contoso.mail.onmicrosoft.com",
        # spaces inside an x500 address and ';' inside an X400 one do not split it
        "x500:/o=ExchangeLabs/ou=Exchange Administrative Group (FYDIBOHF23SPDLT)/cn=Recipients/"
        "cn=ann",
        "X400:C=US;A= ;P=Contoso;O=Exchange;S=Archer;G=Ann",
    ]
    assert rene["EmailAddresses"] == ["SMTP:rene.muller@contoso.com", "smtp:rene@contoso.com"]
    assert ann["CustomAttribute1"] == 'Sales, "North"'
    assert ann["ExtensionCustomAttribute1"] == ["north", "west"]
    assert rene["ExtensionCustomAttribute1"] == []
    assert (ann["IsDirSynced"], ann["IsExchangeCloudManaged"]) == (True, True)
    assert (ann["HiddenFromAddressListsEnabled"], rene["HiddenFromAddressListsEnabled"]) == (
        False,
        None,
    )
    assert rene["RecipientTypeDetails"] == "RemoteUserMailbox"
    # A culture's own date text has no zone: kept as it is.
    assert ann["WhenChanged"] == "11/14/2023 10:13:20 PM"
    assert rene["CustomAttribute1"] is None
    assert warnings == [
        f"{path}: 1 record(s) have '?' in a name or address, e.g. DisplayName 'Ren? M?ller' of "
        "mailbox 'rene.muller@contoso.com' (line 4): non-ASCII letters lost on "
        "export? Windows PowerShell 5.1 writes ASCII by default in Export-Csv (and with "
        "Out-File -Encoding ASCII), turning them into '?' (hint: export again with -Encoding "
        "UTF8)"
    ]


@pytest.mark.parametrize(
    ("encoding", "bom"),
    [("utf-8", codecs.BOM_UTF8), ("utf-16-le", codecs.BOM_UTF16_LE), ("utf-8", b"")],
)
def test_the_same_export_in_every_encoding_reads_the_same(
    tmp_path: Path, encoding: str, bom: bytes
) -> None:
    for name in ("exo-ps7.json", "exo-ps51.csv"):
        text = (SAMPLES / name).read_text(encoding="utf-8")
        copy = tmp_path / name
        copy.write_bytes(bom + text.encode(encoding))
        want, _ = read(name)
        got, _ = read(copy)
        assert [(r.props, r.origin.line) for r in got] == [(r.props, r.origin.line) for r in want]


def test_semicolon_delimited_csv_from_use_culture(tmp_path: Path) -> None:
    path = tmp_path / "m.csv"
    path.write_text(
        '"UserPrincipalName";"Guid";"EmailAddresses"\n'
        '"ann.archer@contoso.com";"6f1c2a8e-3b4d-4e5f-9a0b-1c2d3e4f5a6b";'
        '"SMTP:ann.archer@contoso.com;smtp:ann@contoso.com"\n',
        encoding="utf-8",
    )
    (rec,), _ = read(path)
    assert rec.props["EmailAddresses"] == ["SMTP:ann.archer@contoso.com", "smtp:ann@contoso.com"]


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("exo-ps7.json", "exo-json"),
        ("exo-single.json", "exo-json"),
        ("exo-lines.jsonl", "exo-json"),
        ("exo-ps51-utf16.json", "exo-json"),
        ("exo-ps51.csv", "exo-csv"),
        ("exo-arraylist.csv", "exo-csv"),
    ],
)
def test_format_detected_by_content(name: str, fmt: str) -> None:
    assert detect_exo_format(open_text(SAMPLES / name)) == fmt


def test_minimal_csv_detected(tmp_path: Path) -> None:
    path = tmp_path / "m.txt"
    path.write_text(
        "ExternalDirectoryObjectId,UserPrincipalName\n"
        "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d,ann.archer@contoso.com\n"
    )
    (rec,), _ = read(path)
    assert rec.props == {
        "ExternalDirectoryObjectId": "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d",
        "UserPrincipalName": "ann.archer@contoso.com",
    }


def test_format_named_explicitly_is_used_instead_of_detection() -> None:
    path = SAMPLES / "exo-ps7.json"
    with pytest.raises(ExportError) as e:
        read(path, "exo-csv")
    assert str(e.value) == (
        f"{path}:1: the header has no ExternalDirectoryObjectId or Guid column (hint: include "
        "it in the export: Select-Object Guid,ExternalDirectoryObjectId,UserPrincipalName,"
        "PrimarySmtpAddress,EmailAddresses,...)"
    )


def test_reading_twice_gives_the_same_records() -> None:
    first, w1 = read("exo-ps51.csv")
    second, w2 = read("exo-ps51.csv")
    assert [(r.props, r.origin) for r in first] == [(r.props, r.origin) for r in second]
    assert w1 == w2

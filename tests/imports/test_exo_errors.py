"""Broken mailbox exports: each gets one line, `file:line: what (hint: ...)`."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.tenant.imports.exo import read_mailboxes
from harness.tenant.imports.records import ExportError

SAMPLES = Path(__file__).parent / "samples" / "cloud"
DEPTH = "(hint: re-export with ConvertTo-Json -Depth 4)"
EXPORT = "(hint: export: Get-Mailbox -ResultSize Unlimited | ... | ConvertTo-Json -Depth 4)"
EDITED = "(hint: the file was cut short or edited; export it again)"


def error_of(path: Path, fmt: str | None = None) -> str:
    with pytest.raises(ExportError) as e:
        for _ in read_mailboxes(path, fmt):
            pass
    return str(e.value)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        (
            "exo-depth-psobject.json",
            ":10: mailbox 'bob.baker@contoso.com': EmailAddresses is the text "
            "'@{AddressString=bob.baker@contoso.com; IsPrimaryAddress=T...', not its value "
            + DEPTH,
        ),
        (
            "exo-depth-object-array.json",
            ":2: mailbox 'ann.archer@contoso.com': ExtensionCustomAttribute1 is the text "
            "'System.Object[]', not its value " + DEPTH,
        ),
        (
            "exo-arraylist.csv",
            ":3: mailbox 'bob.baker@contoso.com': EmailAddresses is the text "
            "'System.Collections.ArrayList', not its value (hint: Export-Csv writes a list as "
            "its type name; select it joined: @{n='EmailAddresses';e={$_.EmailAddresses -join "
            "';'}})",
        ),
        (
            "exo-extra-cell.csv",
            ":3: 4 cells, the header has 3 (hint: a value with an unquoted "
            "comma or line break? Export-Csv quotes every cell; export again rather than editing "
            "the file)",
        ),
        (
            "exo-bad-syntax.json",
            ":8: not valid JSON: Expecting ',' delimiter (column 5) " + EDITED,
        ),
        ("exo-truncated.json", ":5: the file ends inside a JSON value " + EDITED),
        (
            "exo-number.json",
            ":1: the JSON is a number, not a list of mailboxes or a mailbox object " + EXPORT,
        ),
        (
            "exo-string.json",
            ":1: the JSON is a string, not a list of mailboxes or a mailbox object " + EXPORT,
        ),
        (
            "exo-no-id.json",
            ":3: mailbox 'bob.baker@contoso.com': no ExternalDirectoryObjectId or Guid (hint: "
            "include it in the export: Select-Object Guid,ExternalDirectoryObjectId,"
            "UserPrincipalName,PrimarySmtpAddress,EmailAddresses,...)",
        ),
        (
            "exo-empty.json",
            ": no mailboxes in the export (hint: is it the right file? Get-Mailbox "
            "-ResultSize Unlimited | ...)",
        ),
        (
            "graph-page.json",
            ":1: this looks like a Graph users export, not Get-Mailbox output (hint: give it "
            "with --graph; --exo takes Get-Mailbox ... | ConvertTo-Json -Depth 4)",
        ),
    ],
)
def test_broken_sample_gives_one_line(name: str, message: str) -> None:
    path = SAMPLES / name
    assert error_of(path) == f"{path}{message}"


def write(tmp_path: Path, text: str, name: str = "m.json") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


GUID = '"Guid": "6f1c2a8e-3b4d-4e5f-9a0b-1c2d3e4f5a6b"'
UPN = '"UserPrincipalName": "ann.archer@contoso.com"'


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "[{" + GUID + ', "UserPrincipalName": ""}]',
            ":1: mailbox '<GUID>': no UserPrincipalName or PrimarySmtpAddress (hint: include it "
            "in the export: Select-Object Guid,ExternalDirectoryObjectId,UserPrincipalName,"
            "PrimarySmtpAddress,EmailAddresses,...)",
        ),
        (
            '[{"Guid": "not-a-guid", ' + UPN + "}]",
            ":1: mailbox 'ann.archer@contoso.com': Guid 'not-a-guid' is not a GUID",
        ),
        (
            "[{" + GUID + ", " + UPN + ', "IsDirSynced": "yes"}]',
            ":1: mailbox 'ann.archer@contoso.com': IsDirSynced is 'yes', not True or False",
        ),
        (
            "[{" + GUID + ", " + UPN + ', "CustomAttribute1": ["a", "b"]}]',
            ":1: mailbox 'ann.archer@contoso.com': CustomAttribute1 holds 2 values; one value "
            "expected " + DEPTH,
        ),
        (
            "[{" + GUID + ", " + UPN + ', "DisplayName": "@{FirstName=Ann; LastName=Archer}"}]',
            ":1: mailbox 'ann.archer@contoso.com': DisplayName is the text "
            "'@{FirstName=Ann; LastName=Archer}', not its value " + DEPTH,
        ),
        (
            "[{" + GUID + ", " + UPN + ', "EmailAddresses": "System.Collections.ArrayList"}]',
            ":1: mailbox 'ann.archer@contoso.com': EmailAddresses is the text "
            "'System.Collections.ArrayList', not its value " + DEPTH,
        ),
        (
            "[{" + GUID + ", " + UPN + ', "userprincipalname": "x@contoso.com"}]',
            ":1: mailbox 'ann.archer@contoso.com': UserPrincipalName appears twice",
        ),
        (
            "[{" + GUID + ", " + UPN + ', "EmailAddresses": [{"Prefix": "SMTP"}]}]',
            ":1: mailbox 'ann.archer@contoso.com': EmailAddresses holds an object without "
            "ProxyAddressString " + DEPTH,
        ),
        (
            "[\n{" + GUID + ", " + UPN + "},\n42\n]",
            ":3: a list element is a number, not a mailbox object " + EXPORT,
        ),
        (
            "[\n{" + GUID + ", " + UPN + "}\n{}]",
            ":3: not valid JSON: expected ',' or ']' after a list element, not '{' " + EDITED,
        ),
        ("[\n{" + GUID + ", " + UPN + "},\n", ":3: the file ends inside a JSON value " + EDITED),
        ("\n\n   \n", ":1: the file is empty " + EXPORT),
        (
            "true",
            ":1: the JSON is true/false, not a list of mailboxes or a mailbox object " + EXPORT,
        ),
        (
            '{"@odata.context": "x", "value": []}',
            ":1: this looks like a Graph users export, not Get-Mailbox output (hint: give it "
            "with --graph; --exo takes Get-Mailbox ... | ConvertTo-Json -Depth 4)",
        ),
        (
            "DisplayName: Ann\n",
            ":1: not a mailbox export this reader knows (neither JSON nor a CSV with "
            "Get-Mailbox columns) (hint: formats: exo-json, exo-csv; name the format with "
            "--format if it is one of them)",
        ),
    ],
)
def test_malformed_json_gives_one_line(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    assert error_of(path) == f"{path}{message}".replace("<GUID>", GUID[9:-1])


def test_minified_json_error_names_the_column(tmp_path: Path) -> None:
    path = write(tmp_path, "[{" + GUID + ", " + UPN + "}, {" + GUID + " " + UPN + "}]")
    col = len("[{" + GUID + ", " + UPN + "}, {" + GUID + " ") + 1
    assert (
        error_of(path)
        == f"{path}:1: not valid JSON: Expecting ',' delimiter (column {col}) " + EDITED
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '"Guid","DisplayName"\n"6f1c2a8e-3b4d-4e5f-9a0b-1c2d3e4f5a6b","Ann"\n',
            ":1: the header has no UserPrincipalName or PrimarySmtpAddress column (hint: "
            "include it in the export: Select-Object Guid,ExternalDirectoryObjectId,"
            "UserPrincipalName,PrimarySmtpAddress,EmailAddresses,...)",
        ),
        (
            '"Guid","UserPrincipalName"\n"6f1c2a8e-3b4d-4e5f-9a0b-1c2d3e4f5a6b"\n',
            ":2: 1 cells, the header has 2 (hint: a value with an unquoted comma or line break? "
            "Export-Csv quotes every cell; export again rather than editing the file)",
        ),
        (
            '"Guid","UserPrincipalName"\n"6f1c2a8e-3b4d-4e5f-9a0b-1c2d3e4f5a6b","ann"x\n',
            ":2: bad CSV: ',' expected after '\"' " + EDITED,
        ),
        (
            '"Guid","UserPrincipalName","IsExchangeCloudManaged"\n'
            '"6f1c2a8e-3b4d-4e5f-9a0b-1c2d3e4f5a6b","ann@contoso.com","Yes"\n',
            ":2: mailbox 'ann@contoso.com': IsExchangeCloudManaged is 'Yes', not True or False",
        ),
        (
            '"Guid","UserPrincipalName","ExtensionCustomAttribute2"\n'
            '"6f1c2a8e-3b4d-4e5f-9a0b-1c2d3e4f5a6b","ann@contoso.com",'
            '"Microsoft.Exchange.Data.MultiValuedProperty`1[System.String]"\n',
            ":2: mailbox 'ann@contoso.com': ExtensionCustomAttribute2 is the text "
            "'Microsoft.Exchange.Data.MultiValuedProperty`1[System.String]', not its value "
            "(hint: Export-Csv writes a list as its type name; select it joined: "
            "@{n='ExtensionCustomAttribute2';e={$_.ExtensionCustomAttribute2 -join ';'}})",
        ),
        (
            "#TYPE Deserialized.Microsoft.Exchange.Data.Directory.Management.Mailbox\n",
            ":1: no header row (hint: export again)",
        ),
    ],
)
def test_malformed_csv_gives_one_line(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text, "m.csv")
    assert error_of(path) == f"{path}{message}"


def test_empty_file_named_as_json_says_where_it_ends(tmp_path: Path) -> None:
    path = write(tmp_path, "\n\n   \n")
    assert error_of(path, "exo-json") == f"{path}:4: the file is empty " + EXPORT


def test_unknown_format_name(tmp_path: Path) -> None:
    path = SAMPLES / "exo-ps7.json"
    with pytest.raises(ExportError) as e:
        read_mailboxes(path, "exo-xml")  # refused at once, before any record is read
    assert str(e.value) == (
        f"{path}: unknown mailbox export format 'exo-xml' (hint: formats: exo-json, exo-csv)"
    )


def test_unknown_encoding_refused_with_the_line(tmp_path: Path) -> None:
    path = tmp_path / "m.json"
    path.write_bytes(b'[{"DisplayName": "Ren\xe9"}]')  # Latin-1, not UTF-8
    with pytest.raises(ExportError) as e:
        read_mailboxes(path)
    assert str(e.value).startswith(f"{path}:1: not UTF-8: byte 0xE9 (hint: ")

"""Graph user exports: saved /v1.0/users pages in every arrangement, and Get-MgUser JSON."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.tenant.imports.graph import detect_graph_format, read_graph_users
from harness.tenant.imports.textfile import open_text

SAMPLES = Path(__file__).parent / "samples" / "cloud"
ANN = "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d"
BOB = "b2c3d4e5-f6a7-4b8c-9d0e-1f2a3b4c5d6e"


def read(name: str | Path, fmt: str | None = None) -> tuple[list, list[str]]:
    warnings: list[str] = []
    path = name if isinstance(name, Path) else SAMPLES / name
    return list(read_graph_users(path, fmt, warnings)), warnings


def test_one_saved_page_with_next_link_warns_that_pages_are_missing() -> None:
    path = SAMPLES / "graph-page.json"
    (ann, cloud), warnings = read(path)
    assert ann.props == {
        "id": ANN,
        "userPrincipalName": "ann.archer@contoso.com",
        "onPremisesImmutableId": "jDLnlgYbkUyq8p8bNr9WZw==",
        "onPremisesSyncEnabled": True,
        "proxyAddresses": [
            "SMTP:ann.archer@contoso.com",
            "smtp:ann.archer@contoso.mail.onmicrosoft.com",
        ],
        "mail": "ann.archer@contoso.com",
        "onPremisesExtensionAttributes": {
            "extensionAttribute1": "Sales",
            "extensionAttribute2": None,
            "extensionAttribute15": None,
        },
    }
    # A cloud-only user: sync null, no immutable id; the id in capitals is canonicalised.
    assert cloud.props["id"] == "d55f6159-1b99-4476-8992-14bf25d7eb3e"
    assert cloud.props["onPremisesSyncEnabled"] is None
    assert cloud.props["onPremisesImmutableId"] is None
    assert cloud.props["proxyAddresses"] == []
    assert ann.origin.line == cloud.origin.line == 1  # the page they came in
    assert warnings == [
        f"{path}: the last page (line 1) has @odata.nextLink: the export stops before the end "
        "of the user list, 2 users read (hint: follow @odata.nextLink until a page has none "
        "and save every page, or use Get-MgUser -All)"
    ]


def test_pages_one_after_another() -> None:
    (ann, bob), warnings = read("graph-pages.json")
    assert (ann.props["id"], bob.props["id"]) == (ANN, BOB)
    assert (ann.origin.line, bob.origin.line) == (1, 2)
    assert bob.props["onPremisesSyncEnabled"] is False
    assert bob.props["onPremisesImmutableId"] == "AAECAwQFBgcICQoLDA0ODw=="
    assert warnings == []  # the last page has no nextLink: complete


def test_json_array_of_pages() -> None:
    (ann, bob), warnings = read("graph-page-array.json")
    assert [ann.props, bob.props] == [
        {"id": ANN, "mail": "ann.archer@contoso.com"},
        {"id": BOB, "mail": "bob.baker@contoso.com"},
    ]
    assert (ann.origin.line, bob.origin.line) == (2, 7)
    assert warnings == []


def test_json_array_of_users_with_question_marks() -> None:
    path = SAMPLES / "graph-users.json"
    (ann, bob), warnings = read(path)
    assert ann.props["displayName"] == "Ren? M?ller"
    assert (ann.origin.line, bob.origin.line) == (2, 3)
    assert warnings == [
        f"{path}: 1 record(s) have '?' in a name or address, e.g. displayName 'Ren? M?ller' of "
        "user 'ann.archer@contoso.com' (line 2): non-ASCII letters lost on "
        "export? Windows PowerShell 5.1 writes ASCII by default in Export-Csv (and with "
        "Out-File -Encoding ASCII), turning them into '?' (hint: export again with -Encoding "
        "UTF8)"
    ]


def test_get_mguser_pascal_case_normalised_to_graph_names() -> None:
    (rec,), warnings = read("mguser.json")
    assert warnings == []
    assert rec.props == {
        "aboutMe": None,
        "accountEnabled": True,
        "assignedLicenses": [],
        "displayName": "Ann Archer",
        "id": ANN,
        "mail": "ann.archer@contoso.com",
        # "Manager" is an object: nothing the harness could use, left out
        "onPremisesExtensionAttributes": {
            "extensionAttribute1": "Sales",
            "extensionAttribute2": None,
            "extensionAttribute10": "1024",
        },
        "onPremisesImmutableId": "jDLnlgYbkUyq8p8bNr9WZw==",
        "onPremisesLastSyncDateTime": "2023-11-14T22:13:20Z",  # \/Date(ms)\/ of PS 5.1
        "onPremisesSyncEnabled": True,
        "proxyAddresses": ["SMTP:ann.archer@contoso.com", "smtp:ann@contoso.com"],
        "userPrincipalName": "ann.archer@contoso.com",
        # from AdditionalProperties (its @odata.type dropped)
        "employeeHireDate": "2021-03-01T00:00:00Z",
        "onPremisesSamAccountName": "aarcher",
    }


def test_utf16_get_mguser_output_reads_the_same(tmp_path: Path) -> None:
    text = (SAMPLES / "mguser.json").read_text(encoding="utf-8")
    copy = tmp_path / "mguser.json"
    copy.write_bytes(b"\xff\xfe" + text.replace("\n", "\r\n").encode("utf-16-le"))
    (want,), _ = read("mguser.json")
    (got,), _ = read(copy)
    assert got.props == want.props


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("graph-page.json", "graph-json"),
        ("graph-pages.json", "graph-json"),
        ("graph-page-array.json", "graph-json"),
        ("graph-users.json", "graph-json"),
        ("mguser.json", "mguser-json"),
        ("mguser-depth.json", "mguser-json"),
    ],
)
def test_format_detected_by_content(name: str, fmt: str) -> None:
    assert detect_graph_format(open_text(SAMPLES / name)) == fmt


def test_both_formats_read_alike_when_named() -> None:
    for fmt in ("graph-json", "mguser-json"):
        (rec,), _ = read("mguser.json", fmt)
        assert rec.props["id"] == ANN

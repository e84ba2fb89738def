"""Broken Graph user exports: each gets one line, `file:line: what (hint: ...)`."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.tenant.imports.graph import read_graph_users
from harness.tenant.imports.records import ExportError

SAMPLES = Path(__file__).parent / "samples" / "cloud"
SAVE = "(hint: save the Graph response as it is, or Get-MgUser ... | ConvertTo-Json -Depth 4)"
EDITED = "(hint: the file was cut short or edited; export it again)"


def error_of(path: Path, fmt: str | None = None) -> str:
    with pytest.raises(ExportError) as e:
        for _ in read_graph_users(path, fmt):
            pass
    return str(e.value)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        (
            "mguser-depth.json",
            ":2: user 'ann.archer@contoso.com': onPremisesExtensionAttributes is the text "
            "'Microsoft.Graph.PowerShell.Models.MicrosoftGraphOnPremise...', not its value "
            "(hint: re-export with ConvertTo-Json -Depth 4)",
        ),
        (
            "graph-bad-id.json",
            ":1: user 'bob.baker@contoso.com': id 'User_a1b2c3d4' is not a GUID",
        ),
        ("graph-bad-value.json", ":1: a page whose value is not a list of users " + SAVE),
        (
            "graph-bad-syntax.json",
            ":4: not valid JSON: Expecting property name enclosed in double quotes (column 50) "
            + EDITED,
        ),
        ("graph-numbers.json", ":1: a list element is a number, not a user object " + SAVE),
        (
            "exo-ps7.json",
            ":1: this looks like Get-Mailbox output, not a Graph users export (hint: give it "
            "with --exo; --graph takes saved GET /v1.0/users pages or Get-MgUser JSON)",
        ),
        (
            "exo-ps51.csv",
            ":1: not a Graph users export: Graph exports are JSON (hint: formats: graph-json, "
            "mguser-json; name the format with --format)",
        ),
    ],
)
def test_broken_sample_gives_one_line(name: str, message: str) -> None:
    path = SAMPLES / name
    assert error_of(path) == f"{path}{message}"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('"users"', ":1: the JSON is a string, not a list of users or a user object " + SAVE),
        ("12", ":1: the JSON is a number, not a list of users or a user object " + SAVE),
        (
            '{"@odata.context": "x", "value": []}',
            ": no users in the export (hint: is it the right file? GET /v1.0/users?$select="
            "id,... or Get-MgUser -All)",
        ),
        (
            '[{"userPrincipalName": "ann@contoso.com", "mail": "ann@contoso.com"}]',
            ":1: user 'ann@contoso.com': no id (hint: select it: $select=id,... or Get-MgUser "
            "-Property Id,...)",
        ),
        (
            '[{"id": "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d", "Id": "a1b2c3d4-e5f6-4a7b-8c9d-'
            '0e1f2a3b4c5d"}]',
            ":1: user 'a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d': id twice",
        ),
        (
            '[{"id": "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d", "onPremisesSyncEnabled": "maybe"}]',
            ":1: user 'a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d': onPremisesSyncEnabled is "
            "'maybe', not True or False",
        ),
        (
            '[{"Id": "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d", "ProxyAddresses": "System.Object[]"}]',
            ":1: user 'a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d': proxyAddresses is the text "
            "'System.Object[]', not its value (hint: re-export with ConvertTo-Json -Depth 4)",
        ),
        (
            '[{"id": "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d", "onPremisesExtensionAttributes": 5}]',
            ":1: user 'a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d': onPremisesExtensionAttributes is "
            "not an object of extensionAttribute1..15 (hint: re-export with ConvertTo-Json "
            "-Depth 4)",
        ),
        (
            '{"value": [{"id": "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d"}, 7]}',
            ":1: user #2 is not an object " + SAVE,
        ),
        ("", ":1: the file is empty " + SAVE),
        ('{"value": [{"id": "a1b2', ":1: the file ends inside a JSON value " + EDITED),
    ],
)
def test_malformed_graph_json_gives_one_line(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "users.json"
    path.write_text(text, encoding="utf-8")
    assert error_of(path) == f"{path}{message}"


def test_unknown_format_name() -> None:
    path = SAMPLES / "graph-page.json"
    with pytest.raises(ExportError) as e:
        read_graph_users(path, "graph-csv")
    assert str(e.value) == (
        f"{path}: unknown Graph export format 'graph-csv' (hint: formats: graph-json, mguser-json)"
    )

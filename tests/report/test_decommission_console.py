"""`exwb decommission`'s console output at 80 columns (a pipe, a CI log) and on a wide terminal."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from harness.commands.decommission import print_outcome

SETUP = "/IAcceptExchangeServerLicenseTerms_DiagnosticDataOFF"
ARBITRATION = "SystemMailbox{1f05a927-3be2-4fb9-aa03-b59fe3b56f4c}"
LONG_ID = "remove-onprem-org-relationship"


def _step(step_id: str, command: str, status: str = "pending") -> dict[str, Any]:
    return {"id": step_id, "status": status, "command": command}


RESULT: dict[str, Any] = {
    "mode": "plan",
    "path": "soa-uninstall",
    "server": "EX01",
    "serverState": "Running",
    "blocked": True,
    "finished": False,
    "refused": None,
    "error": None,
    "blockers": [
        {
            "code": "ArbitrationMailboxes",
            "title": "3 arbitration or system mailbox(es) still on the server",
            "examples": [ARBITRATION],
            "remedy": "Get-Mailbox -Arbitration | Disable-Mailbox -Arbitration "
            "-DisableLastArbitrationMailboxAllowed (Setup refuses to remove the server)",
        }
    ],
    "steps": [
        _step(
            "disable-onprem-ioc",
            'Set-IntraOrganizationConnector "ExchangeHybridOnPremisesToOnline" -Enabled $false',
            "done",
        ),
        _step(
            LONG_ID,
            'Remove-OrganizationRelationship "On-premises to O365 - '
            '6e928435-4d02-507d-97ba-fb7efb408e8c" -Confirm:$false',
        ),
        _step("uninstall-exchange", f"on EX01: Setup.exe {SETUP} /Mode:Uninstall"),
    ],
    "leftovers": [],
}


def render(width: int) -> str:
    console = Console(record=True, width=width, file=io.StringIO(), soft_wrap=True)
    print_outcome(console, RESULT, {"markdown": Path("results/decommission/x/decommission.md")})
    return console.export_text()


@pytest.mark.parametrize("width", [80, 160])
def test_fits_the_width_and_never_splits_a_cmdlet_or_an_id(width):
    plain = render(width)
    lines = plain.splitlines()
    assert max(len(line) for line in lines) <= width
    words = {w for line in lines for w in line.replace("│", " ").split()}
    for whole in (
        SETUP,
        ARBITRATION + ",",
        "-DisableLastArbitrationMailboxAllowed",
        '"ExchangeHybridOnPremisesToOnline"',
        "Set-IntraOrganizationConnector",
        LONG_ID,
    ):
        assert whole.rstrip(",") in {w.rstrip(",") for w in words}, whole
    assert plain.count(LONG_ID) == 1


def test_a_wide_terminal_gets_tables_and_80_columns_a_list():
    assert "┏" in render(160)
    narrow = render(80)
    assert "┏" not in narrow
    assert (
        "1  disable-onprem-ioc" in narrow
        and "    command: Set-IntraOrganizationConnector" in narrow
    )

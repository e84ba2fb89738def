"""Graph's restart criteria: resetScope names and what each clears."""

from __future__ import annotations

import pytest

from harness.engine.state import PORTAL_RESTART, EngineState, Escrow, Quarantine, parse_reset_scope


def _state() -> EngineState:
    return EngineState(
        delta_link="https://graph/delta?$deltatoken=x",
        escrow={"u1": Escrow(50, "insufficientAccessRights")},
        quarantine=Quarantine("EncounteredQuarantineException", "2026-01-05T09:00:00Z"),
        successive_failures=3,
    )


def test_empty_criteria_is_the_portals_restart() -> None:
    assert parse_reset_scope("") == PORTAL_RESTART
    s = _state()
    s.restart()
    assert (s.delta_link, s.escrow, s.quarantine, s.successive_failures) == (None, {}, None, 0)


@pytest.mark.parametrize(
    ("scope", "watermark", "escrow", "quarantine"),
    [
        ("Watermark", False, True, True),
        ("escrows", True, False, True),
        ("QuarantineState", True, True, False),
        ("Escrows, Watermark", False, False, True),
        ("Full", False, False, False),
        ("None", True, True, True),
        ("ForceDeletes,ConnectorDataStore", True, True, True),
    ],
)
def test_each_scope_clears_only_its_part(
    scope: str, watermark: bool, escrow: bool, quarantine: bool
) -> None:
    s = _state()
    s.restart(scope)
    assert (s.delta_link is not None, bool(s.escrow), s.quarantine is not None) == (
        watermark,
        escrow,
        quarantine,
    )


def test_an_unknown_scope_is_named() -> None:
    with pytest.raises(ValueError, match="'Cookies' is not one of None, ConnectorDataStore"):
        parse_reset_scope("Escrows, Cookies")

"""docs/preflight.md lists every rule, from the code (the `preflight-rules` generated table)."""

from __future__ import annotations

from harness.preflight.rules import RULES
from tests.docs.pages import rendered


def test_the_rule_table_names_every_rule_with_its_severity() -> None:
    page = rendered("preflight.md")
    for r in RULES.values():
        assert f"| `{r.id}` | {r.severity.value} |" in page, r.id

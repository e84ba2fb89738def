"""Running every rule over a snapshot: counts, the first examples, and the verdict."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from harness.preflight.rules import RULES, Finding, Rule, Severity
from harness.preflight.snapshot import Snapshot

EXAMPLES = 5  # examples kept per rule; every finding is counted
EXIT_CLEAN = 0  # no error findings (warnings and info allowed)
EXIT_ERRORS = 1  # at least one finding at error severity


@dataclass(slots=True)
class Outcome:
    """One rule's result: how many findings, by attribute, and the first examples."""

    rule: Rule
    count: int = 0
    by_attribute: Counter[str] = field(default_factory=Counter)
    examples: list[Finding] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return self.count > 0 and self.rule.severity is Severity.ERROR

    def as_dict(self) -> dict[str, Any]:
        r = self.rule
        return {
            "id": r.id,
            "severity": r.severity.value,
            "title": r.title,
            "count": self.count,
            "byAttribute": dict(sorted(self.by_attribute.items())),
            "examples": [
                {
                    "object": f.object,
                    "attribute": f.attribute,
                    "value": f.value,
                    "detail": f.detail,
                    **({"others": list(f.others)} if f.others else {}),
                }
                for f in self.examples
            ],
            "fix": r.fix,
            "basis": r.basis,
        }


@dataclass(slots=True)
class PreflightReport:
    snapshot: Snapshot
    outcomes: list[Outcome]

    @property
    def errors(self) -> int:
        return sum(o.count for o in self.outcomes if o.failed)

    @property
    def exit_code(self) -> int:
        return EXIT_ERRORS if self.errors else EXIT_CLEAN

    def counts(self) -> dict[str, int]:
        snap = self.snapshot
        return {
            "ad_objects": len(snap.ad),
            "ad_users": sum(1 for e in snap.ad if e.kind == "user"),
            "cloud_recipients": len(snap.mailboxes),
            "synced": sum(1 for m in snap.mailboxes if m.synced),
            "cloud_managed": sum(1 for m in snap.mailboxes if m.synced and m.managed),
            "in_scope": sum(1 for m in snap.mailboxes if m.in_scope),
            "first_cycle_updates": sum(1 for m in snap.mailboxes if m.in_scope and m.changes),
        }

    def as_dict(self) -> dict[str, Any]:
        info = self.snapshot.info
        by_severity = Counter(o.rule.severity.value for o in self.outcomes if o.count)
        return {
            "format": "exwb-preflight/1",
            "source": info.source,
            "profile": self.snapshot.profile.name,
            "baseDn": info.base_dn,
            "imported": info.imported,
            "pseudonymised": info.pseudonymised,
            "writableOus": list(info.writable_ous),
            "writableOusFrom": info.writable_from,
            "counts": self.counts(),
            "rulesWithFindings": {s.value: by_severity.get(s.value, 0) for s in Severity},
            "verdict": "errors" if self.errors else "clean",
            "rules": [o.as_dict() for o in self.outcomes],
        }


def run_preflight(snap: Snapshot, examples: int = EXAMPLES) -> PreflightReport:
    """Every rule of `RULES`, in their registered order, over `snap`."""
    outcomes: list[Outcome] = []
    for r in RULES.values():
        out = Outcome(r)
        for finding in r.check(snap):
            out.count += 1
            out.by_attribute[finding.attribute] += 1
            if len(out.examples) < examples:
                out.examples.append(finding)
        outcomes.append(out)
    return PreflightReport(snap, outcomes)

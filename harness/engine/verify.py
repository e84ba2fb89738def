"""Round-trip parity: does AD hold, for every in-scope mailbox, what the profile wants?

Like Microsoft's validation script: per attribute, the number of in-scope objects that match and
that do not, with examples. Reads the cloud with a full delta round (no state is kept) and AD
with one paged search.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from harness.core.gcpause import paused
from harness.engine.rules import MappingError, Profile
from harness.engine.source import CloudCredentials, GraphSource
from harness.engine.target import LdapCredentials, LdapTarget, plan

EXAMPLES = 5


@dataclass(slots=True)
class Parity:
    in_scope: int = 0
    unmatched: list[str] = field(default_factory=list)  # cloud ids with no AD user
    matches: Counter = field(default_factory=Counter)
    mismatches: Counter = field(default_factory=Counter)
    examples: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    @property
    def clean(self) -> bool:
        return not self.unmatched and not sum(self.mismatches.values())


def verify(cloud: CloudCredentials, ldap: LdapCredentials, profile: Profile) -> Parity:
    out = Parity()
    targets = profile.targets
    compared = 0  # in-scope objects matched to an AD user and mapped: each attribute matches or not
    with (
        paused(),
        GraphSource(cloud, read_ahead=True) as source,
        LdapTarget(ldap, list(targets), match=profile.match) as target,
    ):
        index = target.index()
        for page in source.pages(None):
            for record in page.records:
                if not (record.get("IsDirSynced") and record.get("IsExchangeCloudManaged")):
                    continue
                out.in_scope += 1
                obj = index.get(profile.match.cloud_key(record) or "")
                if obj is None:
                    out.unmatched.append(record["id"])
                    continue
                try:
                    desired = profile.desired(record)
                except MappingError:
                    out.unmatched.append(record["id"])
                    continue
                compared += 1
                changes = plan(obj.values, desired)
                if not changes:
                    continue
                differing = {attr for _, attr, _ in changes}
                for attr in targets:
                    if attr not in differing:
                        continue
                    out.mismatches[attr] += 1
                    shown = out.examples.setdefault(attr, [])
                    if len(shown) < EXAMPLES:
                        shown.append(
                            {
                                "dn": obj.dn,
                                "ad": list(obj.values.get(attr, ())),
                                "cloud": list(desired.get(attr, ())),
                            }
                        )
    for attr in targets:
        if n := compared - out.mismatches[attr]:
            out.matches[attr] = n
    return out

"""The first writeback cycle, previewed: what a dry run would write, and what AD would refuse.

`exwb cycle --mode dry-run` plans every in-scope object as a real cycle does; this module turns
the plans into a `Preview`: per attribute how many objects change, each object's old -> new
values, the objects AD would refuse (code and AD's diagnostic) and the ones skipped and why.

Failures are predicted without writing, in the order AD checks a modify:

1. **Access.** AD's constructed attribute ``allowedAttributesEffective`` (MS-ADTS 3.1.1.4.5.x)
   lists what the bound principal may write on an object. It is read for every planned target
   as the writeback account, one OR search per `FIND_BATCH` targets (by source anchor, an
   indexed attribute), never one request per object. A planned attribute missing from it is
   50 insufficientAccessRights. A directory that does not expose the attribute (OpenLDAP
   slapd; AD DS lists LDAP_CAP_ACTIVE_DIRECTORY_OID in the root DSE's supportedCapabilities)
   is not guessed at: the preview says access was not checked.
2. **Schema.** A value over the target's rangeUpper is 19 constraintViolation, one that does
   not parse in its syntax 21 invalidAttributeSyntax (`harness.core.aderrors`, the texts and
   checks the fake AD answers with). Two values for a single-valued target never reach AD: the
   engine refuses them itself (`plan`), and the preview reports that refusal as the real cycle
   logs it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from harness.core.aderrors import insufficient_access, value_refusal
from harness.core.adschema import DEFAULT_SCHEMA
from harness.core.dn import InvalidDN, normalize_dn
from harness.core.ldapresult import LdapError, Result
from harness.engine.ldapwire import Change, all_of, any_of, equal, present
from harness.engine.log import Entry
from harness.engine.target import FIND_BATCH, AdObject, LdapTarget

ALLOWED_ATTRIBUTES = "allowedAttributesEffective"
AD_CAPABILITY = "1.2.840.113556.1.4.800"  # LDAP_CAP_ACTIVE_DIRECTORY_OID
NOT_CHECKED = "access not checked (the directory does not expose allowedAttributesEffective)"


class Outcome(StrEnum):
    """What the first cycle would do with one object."""

    CHANGE = "change"  # written, and AD would accept it
    FAILURE = "failure"  # AD (or the engine) would refuse it
    SKIPPED = "skipped"  # never written: the reason says why


@dataclass(frozen=True, slots=True)
class AttributeChange:
    attribute: str
    old: tuple[str, ...]
    new: tuple[str, ...]


@dataclass(slots=True)
class ObjectPreview:
    source_id: str
    upn: str
    dn: str | None
    outcome: Outcome
    reason: str = ""  # why skipped, or what failed (AD's problem in words)
    code: int | None = None  # LDAP result code of a predicted failure (0: the engine's own)
    diagnostic: str = ""  # AD's diagnosticMessage, as AD would return it
    changes: tuple[AttributeChange, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {
            "sourceId": self.source_id,
            "userPrincipalName": self.upn,
            "dn": self.dn,
            "outcome": self.outcome.value,
            "reason": self.reason,
            "errorCode": self.code,
            "diagnostic": self.diagnostic,
            "changes": [
                {"attribute": c.attribute, "oldValue": list(c.old), "newValue": list(c.new)}
                for c in self.changes
            ],
        }


@dataclass(slots=True)
class Preview:
    """Everything a dry run found, in the order the cycle met the objects."""

    profile: str
    objects: list[ObjectPreview] = field(default_factory=list)
    unchanged: int = 0  # in scope, AD already holds the cloud's values
    access: str = NOT_CHECKED  # how access was predicted
    access_checked: bool = False
    guard: str | None = None  # the mass-change guard would stop the real cycle
    upns: dict[str, str] = field(default_factory=dict, repr=False)  # source id -> UPN

    def outcomes(self) -> dict[str, int]:
        counts = Counter(o.outcome.value for o in self.objects)
        return {k.value: counts[k.value] for k in Outcome} | {"unchanged": self.unchanged}

    def by_attribute(self) -> dict[str, dict[str, int]]:
        """Per attribute: objects whose change would be written, and objects that would fail."""
        out: dict[str, dict[str, int]] = {}
        for o in self.objects:
            if o.outcome is Outcome.SKIPPED:
                continue
            for c in o.changes:
                counts = out.setdefault(c.attribute, {"change": 0, "failure": 0})
                counts[o.outcome.value] += 1
        return dict(sorted(out.items(), key=lambda kv: (-sum(kv[1].values()), kv[0])))

    def failures(self) -> dict[str, int]:
        """Predicted failures by code and problem."""
        counts = Counter(
            f"{o.code}: {o.reason}" for o in self.objects if o.outcome is Outcome.FAILURE
        )
        return dict(sorted(counts.items()))

    def skips(self) -> dict[str, int]:
        counts = Counter(o.reason for o in self.objects if o.outcome is Outcome.SKIPPED)
        return dict(sorted(counts.items()))

    def as_dict(self) -> dict[str, Any]:
        return {
            "profile": self.profile,
            "outcomes": self.outcomes(),
            "byAttribute": self.by_attribute(),
            "failures": self.failures(),
            "skipped": self.skips(),
            "accessChecked": self.access_checked,
            "access": self.access,
            "massChangeGuard": self.guard,
            "objects": [o.as_dict() for o in sorted(self.objects, key=_order)],
        }

    # --- filled in by the cycle ---

    def finished(self, e: Entry) -> None:
        """An object the cycle finished without planning a write (skipped, unchanged, or
        refused by the engine before AD: a duplicate anchor, a value it cannot map)."""
        if e.status == "Success":
            self.unchanged += 1
            return
        outcome = Outcome.FAILURE if e.status == "Failure" else Outcome.SKIPPED
        self.objects.append(
            ObjectPreview(
                e.source_id,
                self.upns.get(e.source_id, ""),
                e.target_dn,
                outcome,
                e.reason,
                e.error_code if outcome is Outcome.FAILURE else None,
                e.steps[-1]["description"] if outcome is Outcome.FAILURE and e.steps else "",
                _changes(e.modified),
            )
        )

    def planned(self, e: Entry, upn: str, refusal: LdapError | None) -> ObjectPreview:
        """An object the cycle would write; `refusal` is what AD would answer instead."""
        o = ObjectPreview(
            e.source_id,
            upn or self.upns.get(e.source_id, ""),
            e.target_dn,
            Outcome.CHANGE if refusal is None else Outcome.FAILURE,
            _problem(refusal) if refusal is not None else "",
            refusal.code if refusal is not None else None,
            refusal.message if refusal is not None else "",
            _changes(e.modified),
        )
        self.objects.append(o)
        return o


_RANK = {Outcome.FAILURE: 0, Outcome.CHANGE: 1, Outcome.SKIPPED: 2}


def _order(o: ObjectPreview) -> tuple[int, str, str]:
    """Failures first, then changes, then skips; by DN within each: the same bytes whatever
    order Graph's pages came in."""
    return _RANK[o.outcome], o.dn or "", o.source_id


def _changes(modified: Iterable[Mapping[str, Any]]) -> tuple[AttributeChange, ...]:
    return tuple(
        AttributeChange(m["displayName"], tuple(m["oldValue"]), tuple(m["newValue"]))
        for m in modified
    )


def _problem(e: LdapError) -> str:
    """RFC 4511's name of the result code: 50 -> insufficientAccessRights."""
    try:
        first, *rest = Result(e.code).name.lower().split("_")
    except ValueError:
        return f"LDAP {e.code}"
    return first + "".join(w.capitalize() for w in rest)


# --- predicting ---------------------------------------------------------------------------


def predict(changes: Sequence[Change], allowed: frozenset[str] | None) -> LdapError | None:
    """What AD would answer to this modify instead of success, or None.

    `allowed`: the casefolded names of allowedAttributesEffective on the target (None: the
    directory does not say, so access is not predicted).
    """
    if allowed is not None and any(attr.casefold() not in allowed for _, attr, _ in changes):
        return insufficient_access()
    for _op, attr, values in changes:
        refusal = value_refusal(DEFAULT_SCHEMA.require(attr), [v.encode() for v in values])
        if refusal is not None:
            return refusal
    return None


@dataclass(frozen=True, slots=True)
class TargetFacts:
    """What the preview reads of one planned target besides its values."""

    allowed: frozenset[str] | None  # casefolded allowedAttributesEffective (None: absent)
    upn: str  # its userPrincipalName, to name it in the preview (the source has only ids)


class AccessReader:
    """Reads allowedAttributesEffective (and the UPN) of planned targets as the engine's
    bound account."""

    def __init__(self, target: LdapTarget) -> None:
        self.target = target
        self.exposed = AD_CAPABILITY in _root_capabilities(target)
        # Most targets share one list (the same rights in the same OUs): decode it once.
        self._sets: dict[tuple[bytes, ...], frozenset[str]] = {}

    def read(self, objs: Sequence[AdObject]) -> dict[str, TargetFacts]:
        """Per DN of `objs` (as the directory spells it), what the account may write there and
        the UPN (one OR search per `FIND_BATCH` anchors). Sets `exposed` when any entry
        carried the attribute."""
        rule = self.target.match
        keys = [v for o in objs if o.anchor is not None and (v := rule.assertion(o.anchor))]
        found: dict[str, TargetFacts] = {}
        for i in range(0, len(keys), FIND_BATCH):
            flt = all_of(
                equal("objectClass", "user"),
                any_of(*(equal(rule.attribute, v) for v in keys[i : i + FIND_BATCH])),
            )
            wanted = [ALLOWED_ATTRIBUTES, "userPrincipalName"]
            for dn, attrs in self.target.search_raw(flt, wanted):
                values = _values_of(attrs, ALLOWED_ATTRIBUTES)
                if values is not None:
                    self.exposed = True
                raw = tuple(values or ())
                allowed = self._sets.get(raw)
                if allowed is None:
                    allowed = frozenset(v.decode("utf-8").casefold() for v in raw)
                    self._sets[raw] = allowed
                upn = b"".join((_values_of(attrs, "userPrincipalName") or [b""])[:1])
                found[dn] = TargetFacts(
                    allowed if values is not None else None, upn.decode("utf-8", "replace")
                )
        return found


def _root_capabilities(target: LdapTarget) -> list[str]:
    entries = target.search_raw(present("objectClass"), ["supportedCapabilities"], base="")
    for _dn, attrs in entries:
        return [
            v.decode("ascii", "replace") for v in _values_of(attrs, "supportedCapabilities") or ()
        ]
    return []


def _values_of(attrs: Mapping[str, list[bytes]], name: str) -> list[bytes] | None:
    want = name.casefold()
    for k, v in attrs.items():
        if k.split(";", 1)[0].casefold() == want:
            return v
    return None


def _ndn(dn: str) -> str:
    try:
        return normalize_dn(dn)
    except InvalidDN:
        return dn


NO_FACTS = TargetFacts(None, "")


class FactsByDn:
    """`AccessReader.read`'s answers, looked up by an object's DN. The directory spells a DN
    the same way in both searches, so the exact text finds it; only a miss pays for
    normalising (a 200,000-object preview normalised every DN for nothing otherwise)."""

    def __init__(self, facts: dict[str, TargetFacts]) -> None:
        self.facts = facts
        self._normalised: dict[str, TargetFacts] | None = None

    def get(self, dn: str) -> TargetFacts:
        found = self.facts.get(dn)
        if found is not None:
            return found
        if self._normalised is None:
            self._normalised = {_ndn(k): v for k, v in self.facts.items()}
        return self._normalised.get(_ndn(dn), NO_FACTS)

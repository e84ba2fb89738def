"""Joining the cloud's recipients to the AD users they were synced from (Microsoft facts §8.5).

Rules, strongest first: the mailbox's `ExternalDirectoryObjectId` is a Graph user `id` whose
`onPremisesImmutableId` is base64 of the AD user's `mS-DS-ConsistencyGuid` (or of its
`objectGUID` when it has none): rule ``graph``. Mailboxes the Graph export lacks (or all of
them, without one) fall back to the user principal name (``upn``), then to the primary SMTP
address (``smtp``), both case-insensitive. Only small references are kept per object, so the
indexes of 200,000 users and mailboxes stay small; every ambiguity is returned, never dropped.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from harness.tenant.imports.records import Origin

RULES = ("graph", "upn", "smtp")


@dataclass(slots=True)
class UserRef:
    """What the joins need of one AD user."""

    dn: str
    origin: Origin
    anchor: str | None  # base64 of mS-DS-ConsistencyGuid, else of objectGUID
    anchor_from_object_guid: bool  # the anchor came from objectGUID (no consistency GUID)
    upn: str | None  # case-folded
    smtp: str | None  # case-folded primary SMTP address (proxyAddresses SMTP:, else mail)
    joined: list[int] = field(default_factory=list)  # indexes of the mailboxes joined to it


@dataclass(slots=True)
class MailboxRef:
    """What the joins need of one cloud recipient."""

    id: str
    origin: Origin
    synced: bool | None  # IsDirSynced / onPremisesSyncEnabled; None when neither export says
    in_graph: bool  # the Graph export has this object
    immutable_id: str | None  # Graph's onPremisesImmutableId
    upn: str | None  # case-folded
    smtp: str | None  # case-folded


@dataclass(slots=True)
class Unmatched:
    mailbox: int
    why: str


@dataclass(slots=True)
class Ambiguous:
    mailbox: int
    rule: str
    users: list[int]


@dataclass(slots=True)
class JoinResult:
    """Per mailbox, the AD user it joins (or None) and by which rule; the problems found."""

    user_of: list[int | None]
    rule_of: list[str | None]
    rule_counts: dict[str, int]
    unmatched: list[Unmatched]
    ambiguous: list[Ambiguous]  # one mailbox, several AD users
    shared: list[int]  # AD users joined by two or more mailboxes
    cloud_only: int


def _index(keys: Iterable[str | None]) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for i, key in enumerate(keys):
        if key:
            out.setdefault(key, []).append(i)
    return out


def join(users: Sequence[UserRef], mailboxes: Sequence[MailboxRef]) -> JoinResult:
    """Join every mailbox to at most one user; `UserRef.joined` is filled in as a side effect."""
    by_anchor = _index(u.anchor for u in users)
    by_upn = _index(u.upn for u in users)
    by_smtp = _index(u.smtp for u in users)
    result = JoinResult(
        user_of=[None] * len(mailboxes),
        rule_of=[None] * len(mailboxes),
        rule_counts=dict.fromkeys(RULES, 0),
        unmatched=[],
        ambiguous=[],
        shared=[],
        cloud_only=0,
    )
    for i, m in enumerate(mailboxes):
        rule: str | None = None
        found: list[int] = []
        if m.in_graph:
            if m.immutable_id is None:
                result.cloud_only += 1  # Graph says: no on-premises anchor
                continue
            rule, found = "graph", by_anchor.get(m.immutable_id, [])
            if not found:
                why = f"onPremisesImmutableId {m.immutable_id} matches no AD user"
                result.unmatched.append(Unmatched(i, why))
                continue
        elif m.synced is False:
            result.cloud_only += 1
            continue
        else:
            for fallback, key, index in (("upn", m.upn, by_upn), ("smtp", m.smtp, by_smtp)):
                found = index.get(key, []) if key else []
                if found:
                    rule = fallback
                    break
            if not found:
                why = "no AD user has its UPN or primary SMTP address"
                result.unmatched.append(Unmatched(i, why))
                continue
        assert rule is not None
        if len(found) > 1:
            result.ambiguous.append(Ambiguous(i, rule, list(found)))
            continue
        result.user_of[i] = found[0]
        result.rule_of[i] = rule
        result.rule_counts[rule] += 1
        users[found[0]].joined.append(i)
    result.shared = [j for j, u in enumerate(users) if len(u.joined) > 1]
    return result

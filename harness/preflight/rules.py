"""The pre-flight rules: one function per rule, registered with its id, severity, title, basis
and fix.

A rule reads a `Snapshot` and yields one `Finding` per offending value (object, attribute,
value, and what is wrong); `run.py` counts them and keeps the first examples. Rules yield in
the snapshot's order (AD in file or search order, mailboxes in cloud order), so the output is
deterministic. The IdFix rules follow Microsoft facts §8.4 (IdFix is retired since 30 June
2026) and skip the well-known system objects it skipped; the writeback rules read the first
cycle as the engine plans it (`Snapshot.mailboxes[*].changes`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import cast

from harness.core.adschema import DEFAULT_SCHEMA, InvalidValue
from harness.core.dn import split_rdn
from harness.engine.ldapwire import Change
from harness.engine.rules import MappingError
from harness.preflight import tlds
from harness.preflight.snapshot import AdEntry, Mailbox, Snapshot, address_key

SHOWN = 80  # characters of a value an example shows; longer ones are cut, their length kept


class Severity(StrEnum):
    ERROR = "error"  # the sync or the first cycle fails, or mail breaks: fix before enabling
    WARNING = "warning"  # works, but probably not as intended
    INFO = "info"  # what the first cycle will do


@dataclass(frozen=True, slots=True)
class Finding:
    """One offending value: the object (DN, or the mailbox's UPN/id), attribute and value."""

    object: str
    attribute: str
    value: str
    detail: str = ""
    others: tuple[str, ...] = ()  # the other objects involved (duplicates, double joins)


Check = Callable[[Snapshot], Iterator[Finding]]


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    severity: Severity
    title: str
    fix: str
    basis: str  # where the rule comes from
    check: Check


RULES: dict[str, Rule] = {}

IDFIX = "IdFix (Microsoft facts §8.4)"
WRITEBACK = "writeback engine (Microsoft facts §1)"


def rule(id: str, severity: Severity, title: str, fix: str, basis: str) -> Callable[[Check], Check]:
    def register(check: Check) -> Check:
        if id in RULES:
            raise ValueError(f"rule {id} is registered twice")
        RULES[id] = Rule(id, severity, title, " ".join(fix.split()), basis, check)
        return check

    return register


def shown(value: str) -> str:
    """A value as an example shows it: cut past `SHOWN` characters, its length named."""
    if len(value) <= SHOWN:
        return value
    return f"{value[: SHOWN - 20]}... ({len(value):,} characters)"


# --- IdFix ------------------------------------------------------------------------------------

SMTP_INVALID = re.compile(r'[\s<>();,\[\]"]')
X_INVALID = re.compile(r"[\[\]\"'\x00-\x1f\x7f]")  # x400/x500: looser (spaces are normal there)
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
SMTP_SHAPE = re.compile(
    rf"^{_ATOM}(?:\.{_ATOM})*@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{{0,61}}[A-Za-z0-9])?\.)+"
    r"[A-Za-z](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$"
)
SAM_INVALID = re.compile(r'["\[\]:;|=+*?<>/\\,]')
UPN_INVALID = re.compile(r"[\s\\%&*+/=?'{}|<>();:,\[\]\"]|[^\x00-\x7f]")


def _objects(snap: Snapshot) -> Iterator[AdEntry]:
    return (e for e in snap.ad if not e.system)


def _smtp(entry: AdEntry) -> Iterator[tuple[str, str, str]]:
    """(attribute, value as stored, SMTP address) of every SMTP address the object holds."""
    for v in entry.values.get("mail", ()):
        yield "mail", v, v
    for attr in ("proxyAddresses", "targetAddress"):
        for v in entry.values.get(attr, ()):
            if v[:5].casefold() == "smtp:":
                yield attr, v, v[5:]


def _long(attr: str, limit: int) -> Check:
    def check(snap: Snapshot) -> Iterator[Finding]:
        for e in _objects(snap):
            for v in e.values.get(attr, ()):
                if len(v) > limit:
                    yield Finding(e.dn, attr, shown(v), f"{len(v):,} characters, at most {limit}")

    return check


rule(
    "idfix-proxy-length",
    Severity.ERROR,
    "proxyAddresses value longer than 256 characters",
    "Shorten or remove the value: Entra ID refuses proxyAddresses values over 256 characters.",
    IDFIX,
)(_long("proxyAddresses", 256))


def _address_findings(snap: Snapshot) -> dict[str, list[Finding]]:
    """The findings of the four address rules, from one pass over every address (a 200,000-user
    tenant holds a million), kept in the snapshot for the rules that share it."""
    found = snap.memo.get("addresses")
    if found is not None:
        return cast("dict[str, list[Finding]]", found)
    chars: list[Finding] = []
    shape: list[Finding] = []
    tld: list[Finding] = []
    local: list[Finding] = []
    expected = tlds.PSEUDONYM_TLD if snap.info.pseudonymised else None
    known, reserved = tlds.KNOWN, tlds.NON_ROUTABLE
    for e in _objects(snap):
        for attr, value, address in _smtp(e):
            if not SMTP_SHAPE.match(address):  # the shape admits none of the invalid characters
                bad = SMTP_INVALID.search(address)
                if bad:
                    chars.append(Finding(e.dn, attr, shown(value), f"holds {bad.group()!r}"))
                else:
                    shape.append(Finding(e.dn, attr, shown(value), "not local-part@domain.tld"))
                continue
            top = address.rpartition(".")[2].casefold()
            if top in known or top.startswith("xn--"):
                continue
            if top not in reserved:
                tld.append(Finding(e.dn, attr, shown(value), f".{top} is not a known TLD"))
            elif top != expected:
                local.append(Finding(e.dn, attr, shown(value), f".{top} is not routable"))
        for v in e.values.get("proxyAddresses", ()):
            if v[:5].casefold() in ("x400:", "x500:"):
                bad = X_INVALID.search(v[5:])
                if bad:
                    chars.append(
                        Finding(e.dn, "proxyAddresses", shown(v), f"holds {bad.group()!r}")
                    )
    found = {
        "idfix-smtp-characters": chars,
        "idfix-smtp-format": shape,
        "idfix-smtp-tld": tld,
        "idfix-smtp-nonroutable": local,
    }
    snap.memo["addresses"] = found
    return found


def _addresses(rule_id: str) -> Check:
    def check(snap: Snapshot) -> Iterator[Finding]:
        yield from _address_findings(snap)[rule_id]

    return check


rule(
    "idfix-smtp-characters",
    Severity.ERROR,
    "invalid character in an address",
    """Remove the character. SMTP addresses (mail, smtp: proxies, targetAddress) may not hold
    whitespace or < > ( ) ; , [ ] "; x400: and x500: values may not hold [ ] " ' or control
    characters.""",
    IDFIX,
)(_addresses("idfix-smtp-characters"))

rule(
    "idfix-smtp-format",
    Severity.ERROR,
    "address not in RFC 5322 shape",
    """Correct the address to local-part@domain.tld (dot-atom local part, no leading, trailing
    or double dots, at least two domain labels).""",
    IDFIX,
)(_addresses("idfix-smtp-format"))

rule(
    "idfix-smtp-tld",
    Severity.ERROR,
    "address under an unknown top-level domain",
    """Correct the domain. Known: the common generic TLDs and every country-code TLD
    (harness/preflight/tlds.py); if the TLD is real but not listed, this finding can be
    ignored.""",
    IDFIX,
)(_addresses("idfix-smtp-tld"))

rule(
    "idfix-smtp-nonroutable",
    Severity.WARNING,
    "address under a non-routable top-level domain",
    """Mail to .example, .test, .local, .lan, .internal, .corp and similar never leaves the
    organisation: replace them with an accepted domain. In a pseudonymised tenant (tenant.json)
    .example is what pseudonymisation writes and is not reported.""",
    IDFIX,
)(_addresses("idfix-smtp-nonroutable"))


def _spelling(entry: AdEntry, key: str) -> tuple[str, str]:
    """The attribute and value by which `entry` holds the address `key`."""
    for attr in ("proxyAddresses", "mail"):
        for v in entry.values.get(attr, ()):
            if address_key(attr, v) == key:
                return attr, v
    return "proxyAddresses", key


@rule(
    "idfix-duplicate-address",
    Severity.ERROR,
    "address held by more than one object",
    """Keep the address on one object and remove it from the others (every object is named):
    Entra ID and Exchange Online refuse a duplicate proxy address, compared case-insensitively
    across mail and proxyAddresses.""",
    IDFIX,
)
def duplicate_addresses(snap: Snapshot) -> Iterator[Finding]:
    for key, held in snap.addresses.items():
        if isinstance(held, int):
            continue
        objs = [snap.ad[i] for i in held if not snap.ad[i].system]
        if len(objs) < 2:
            continue
        attr, value = _spelling(objs[0], key)
        others = tuple(o.dn for o in objs[1:])
        yield Finding(objs[0].dn, attr, shown(value), f"also on {'; '.join(others)}", others)


def _duplicates(attr: str) -> Check:
    def check(snap: Snapshot) -> Iterator[Finding]:
        first: dict[str, int | list[int]] = {}
        for i, e in enumerate(snap.ad):
            if e.system:
                continue
            for v in e.values.get(attr, ()):
                k = v.casefold()
                held = first.get(k)
                if held is None:
                    first[k] = i
                elif isinstance(held, int):
                    if held != i:
                        first[k] = [held, i]
                elif i not in held:
                    held.append(i)
        for held in first.values():
            if isinstance(held, list):
                objs = [snap.ad[i] for i in held]
                value = objs[0].values[attr][0]
                others = tuple(o.dn for o in objs[1:])
                yield Finding(
                    objs[0].dn, attr, shown(value), f"also on {'; '.join(others)}", others
                )

    return check


rule(
    "idfix-duplicate-upn",
    Severity.ERROR,
    "userPrincipalName held by more than one object",
    "Give each object its own userPrincipalName: Entra ID refuses the second one.",
    IDFIX,
)(_duplicates("userPrincipalName"))

rule(
    "idfix-duplicate-mailnickname",
    Severity.ERROR,
    "mailNickname held by more than one object",
    "Give each object its own mailNickname (the Exchange alias).",
    IDFIX,
)(_duplicates("mailNickname"))

rule(
    "idfix-mail-length",
    Severity.ERROR,
    "mail longer than 256 characters",
    "Shorten the address: at most 256 characters.",
    IDFIX,
)(_long("mail", 256))


@rule(
    "idfix-mailnickname",
    Severity.ERROR,
    "mailNickname too long or with a leading or trailing dot",
    "Shorten the alias to at most 64 characters and remove leading and trailing dots.",
    IDFIX,
)
def mail_nickname(snap: Snapshot) -> Iterator[Finding]:
    for e in _objects(snap):
        for v in e.values.get("mailNickname", ()):
            if len(v) > 64:
                yield Finding(e.dn, "mailNickname", shown(v), f"{len(v)} characters, at most 64")
            elif v.startswith(".") or v.endswith("."):
                yield Finding(e.dn, "mailNickname", shown(v), "starts or ends with a dot")


@rule(
    "idfix-displayname",
    Severity.ERROR,
    "displayName blank or longer than 255 characters",
    "Give the object a display name of 1 to 255 characters.",
    IDFIX,
)
def display_name(snap: Snapshot) -> Iterator[Finding]:
    for e in _objects(snap):
        for v in e.values.get("displayName", ()):
            if not v.strip():
                yield Finding(e.dn, "displayName", repr(v), "blank")
            elif len(v) > 255:
                yield Finding(e.dn, "displayName", shown(v), f"{len(v)} characters, at most 255")


rule(
    "idfix-givenname-length",
    Severity.ERROR,
    "givenName longer than 63 characters",
    "Shorten the first name to at most 63 characters.",
    IDFIX,
)(_long("givenName", 63))

rule(
    "idfix-targetaddress-length",
    Severity.ERROR,
    "targetAddress longer than 255 characters",
    "Shorten the target address to at most 255 characters.",
    IDFIX,
)(_long("targetAddress", 255))


@rule(
    "idfix-samaccountname",
    Severity.ERROR,
    "sAMAccountName too long or with an invalid character",
    """Rename the account: at most 20 characters, none of " [ ] : ; | = + * ? < > / \\ ,
    (computer and other $-accounts are not checked).""",
    IDFIX,
)
def sam_account_name(snap: Snapshot) -> Iterator[Finding]:
    for e in _objects(snap):
        for v in e.values.get("sAMAccountName", ()):
            bad = SAM_INVALID.search(v)
            if len(v) > 20:
                yield Finding(e.dn, "sAMAccountName", shown(v), f"{len(v)} characters, at most 20")
            elif bad:
                yield Finding(e.dn, "sAMAccountName", shown(v), f"holds {bad.group()!r}")


@rule(
    "idfix-upn",
    Severity.ERROR,
    "userPrincipalName too long, badly shaped or with an invalid character",
    """Correct the UPN: name@domain, at most 113 characters (64 before the @, 48 after), no
    whitespace, \\ % & * + / = ? ' { } | < > ( ) ; : , [ ] " and no non-ASCII letters.""",
    IDFIX,
)
def upn(snap: Snapshot) -> Iterator[Finding]:
    for e in _objects(snap):
        for v in e.values.get("userPrincipalName", ()):
            local, at, domain = v.rpartition("@")
            bad = UPN_INVALID.search(v)
            if not at or not local or not domain:
                why = "no name@domain"
            elif len(v) > 113:
                why = f"{len(v)} characters, at most 113"
            elif len(local) > 64:
                why = f"{len(local)} characters before the @, at most 64"
            elif len(domain) > 48:
                why = f"{len(domain)} characters after the @, at most 48"
            elif bad:
                why = f"holds {bad.group()!r}"
            else:
                continue
            yield Finding(e.dn, "userPrincipalName", shown(v), why)


# --- the first writeback cycle ----------------------------------------------------------------


def _in_scope(snap: Snapshot) -> Iterator[tuple[Mailbox, AdEntry]]:
    for m in snap.mailboxes:
        if m.in_scope:
            assert m.ad is not None
            yield m, snap.ad[m.ad]


def _written(changes: list[Change]) -> Iterator[tuple[str, str]]:
    """(attribute, value) of every value a modify writes (not the ones it deletes)."""
    for op, name, values in changes:
        if op != "delete":
            for v in values:
                yield name, v


@rule(
    "wb-schema-length",
    Severity.ERROR,
    "a value Exchange Online holds is longer than AD allows",
    """Shorten the value in Exchange Online (Set-Mailbox): AD refuses a value over the target
    attribute's rangeUpper with constraintViolation (19) and the object fails every cycle.""",
    WRITEBACK,
)
def schema_length(snap: Snapshot) -> Iterator[Finding]:
    for m, e in _in_scope(snap):
        for name, v in _written(m.changes):
            attr = DEFAULT_SCHEMA.require(name)
            if attr.too_long(v.encode("utf-8")):
                why = f"{len(v):,} characters, AD allows {attr.range_upper:,} (from {m.label})"
                yield Finding(e.dn, name, shown(v), why)


@rule(
    "wb-schema-syntax",
    Severity.ERROR,
    "a value Exchange Online holds does not fit the AD attribute's syntax",
    """Correct the value in Exchange Online or the profile's expression: AD refuses it (an
    integer, boolean or DN target given other text) and the object fails every cycle.""",
    WRITEBACK,
)
def schema_syntax(snap: Snapshot) -> Iterator[Finding]:
    for m, e in _in_scope(snap):
        for name, v in _written(m.changes):
            try:
                DEFAULT_SCHEMA.require(name).key(v.encode("utf-8"))
            except InvalidValue as err:
                yield Finding(e.dn, name, shown(v), f"{err} (from {m.label})")


def _mapping_failures(snap: Snapshot, m: Mailbox) -> Iterator[tuple[str, str, bool]]:
    """(target, why, single-valued?) of each mapping that cannot be planned for `m`."""
    rec = snap.record(m.index)
    for mapping in snap.profile.mappings:
        attr = DEFAULT_SCHEMA.require(mapping.target)
        raw = rec.get(mapping.source) if mapping.source is not None else None
        try:
            values = mapping.values(rec)
        except MappingError as err:
            yield mapping.target, str(err), attr.single and isinstance(raw, list | tuple)
            continue
        if attr.single and len(values) > 1:
            yield mapping.target, f"{len(values)} values for a single-valued attribute", True


@rule(
    "wb-schema-single",
    Severity.ERROR,
    "several values for a single-valued AD attribute",
    """Map the target from a single value (or an expression that picks one): AD holds one
    value in a single-valued attribute, so the engine fails the object.""",
    WRITEBACK,
)
def schema_single(snap: Snapshot) -> Iterator[Finding]:
    for m in snap.mailboxes:
        if m.error is not None and m.ad is not None and m.managed:
            for target, why, single in _mapping_failures(snap, m):
                if single:
                    yield Finding(snap.ad[m.ad].dn, target, m.label, why)


@rule(
    "wb-mapping",
    Severity.ERROR,
    "a mailbox the profile cannot map",
    """Correct the mailbox's value (for example an unknown RecipientTypeDetails) or the
    profile's expression: the engine logs the object as a Failure every cycle.""",
    WRITEBACK,
)
def mapping_failure(snap: Snapshot) -> Iterator[Finding]:
    for m in snap.mailboxes:
        if m.error is not None and m.ad is not None and m.managed:
            failures = [(t, why) for t, why, single in _mapping_failures(snap, m) if not single]
            for target, why in failures:
                yield Finding(snap.ad[m.ad].dn, target, m.label, why)


@rule(
    "wb-no-anchor",
    Severity.ERROR,
    "a cloud-managed mailbox with no AD user",
    """Restore the AD user, or set its mS-DS-ConsistencyGuid to the bytes of the mailbox's
    onPremisesImmutableId: the engine matches on mS-DS-ConsistencyGuid only, so nothing of
    this mailbox is written back.""",
    WRITEBACK,
)
def no_anchor(snap: Snapshot) -> Iterator[Finding]:
    for m in snap.mailboxes:
        if not (m.dir_synced and m.managed):
            continue
        if m.anchor is None:
            yield Finding(m.label, "onPremisesImmutableId", "", "IsDirSynced but no anchor")
        elif m.anchor not in snap.users_by_anchor:
            guid = snap.guid_anchors.get(m.anchor)
            why = (
                f"{snap.ad[guid].dn} holds it as objectGUID but has no such mS-DS-ConsistencyGuid"
                if guid is not None
                else "no AD user holds this mS-DS-ConsistencyGuid"
            )
            yield Finding(m.label, "onPremisesImmutableId", m.anchor, why)


@rule(
    "wb-duplicate-anchor",
    Severity.ERROR,
    "one anchor held by several AD users",
    """Clear mS-DS-ConsistencyGuid on every user but the one the mailbox belongs to: the
    engine will not guess and fails the mailbox.""",
    WRITEBACK,
)
def duplicate_anchor(snap: Snapshot) -> Iterator[Finding]:
    for anchor, held in snap.users_by_anchor.items():
        if len(held) > 1 and held[0] in snap.joined_by:
            others = tuple(snap.ad[i].dn for i in held[1:])
            named = ", ".join(snap.mailboxes[j].label for j in snap.joined_by[held[0]])
            why = f"also on {'; '.join(others)}; named by {named}"
            yield Finding(snap.ad[held[0]].dn, "mS-DS-ConsistencyGuid", anchor, why, others)


@rule(
    "wb-joined-twice",
    Severity.ERROR,
    "an AD user joined by two mailboxes",
    """Find which cloud object really belongs to the user and remove the other's
    onPremisesImmutableId: both would write to the same AD object, the last one winning.""",
    WRITEBACK,
)
def joined_twice(snap: Snapshot) -> Iterator[Finding]:
    for i, mbxs in snap.joined_by.items():
        e = snap.ad[i]
        if len(mbxs) > 1 and e.anchor is not None and len(snap.users_by_anchor[e.anchor]) == 1:
            labels = tuple(snap.mailboxes[j].label for j in mbxs)
            why = f"joined by {', '.join(labels)}"
            yield Finding(e.dn, "mS-DS-ConsistencyGuid", e.anchor, why, labels)


@rule(
    "wb-outside-writable-ou",
    Severity.ERROR,
    "an in-scope AD user outside the OUs the writeback account may write",
    """Move the user into a writable OU, or delegate write access on its OU to the writeback
    account (and give it with --writeback-ou): AD answers insufficientAccessRights (50) to
    every write of the user.""",
    WRITEBACK,
)
def outside_writable(snap: Snapshot) -> Iterator[Finding]:
    for m, e in _in_scope(snap):
        if not snap.writable(e.dn):
            why = (
                f"the first cycle writes {len(m.changes)} change(s) from {m.label}: fails with 50"
                if m.changes
                else f"nothing to write yet from {m.label}: its first cloud edit fails with 50"
            )
            yield Finding(e.dn, "distinguishedName", split_rdn(e.dn)[1], why)


@rule(
    "wb-address-collision",
    Severity.ERROR,
    "an address the first cycle writes is already held by another AD object",
    """Remove the address from the other object (or from the mailbox in Exchange Online): AD
    accepts the duplicate, but on-premises mail for it then routes to either object.""",
    WRITEBACK,
)
def address_collision(snap: Snapshot) -> Iterator[Finding]:
    for m, e in _in_scope(snap):
        for name, v in _written(m.changes):
            if name not in ("proxyAddresses", "mail"):
                continue
            key = address_key(name, v)
            others = [i for i in snap.holders(key) if i != m.ad] if key else []
            for i in others:
                scope = "synchronized" if snap.in_sync_scope(i) else "outside sync scope"
                why = f"already on {snap.ad[i].dn} ({scope})"
                yield Finding(e.dn, name, shown(v), why, (snap.ad[i].dn,))


@rule(
    "wb-mailbox-limit",
    Severity.ERROR,
    "more cloud-managed mailboxes than the profile supports",
    """Split the writeback across configurations or move to the GA job (600,000 mailboxes);
    the preview's 200,000 is this harness's assumption, no source documents a cap.""",
    WRITEBACK,
)
def mailbox_limit(snap: Snapshot) -> Iterator[Finding]:
    managed = sum(1 for m in snap.mailboxes if m.synced and m.managed)
    limit = snap.profile.mailbox_limit
    if managed > limit:
        why = f"{managed:,} cloud-managed mailboxes, the profile supports {limit:,}"
        yield Finding(f"profile {snap.profile.name}", "mailbox_limit", str(limit), why)


@rule(
    "wb-preview-no-mail",
    Severity.WARNING,
    "a preview-era profile without the mail mapping",
    """Add the mail <- WindowsEmailAddress mapping ("Restore default mappings" adds it, restarts
    the job and also wipes custom mappings and scoping filters; Microsoft facts §8.1): until
    then AD's mail stays stale when the primary address changes in the cloud.""",
    "Microsoft facts §8.1",
)
def preview_no_mail(snap: Snapshot) -> Iterator[Finding]:
    if "mail" in snap.profile.targets:
        return
    stale = 0
    for m, e in _in_scope(snap):
        want = snap.record(m.index).get("WindowsEmailAddress") or ""
        have = e.values.get("mail", ())
        if (have[0] if have else "") != want:
            stale += 1
            yield Finding(e.dn, "mail", shown(have[0] if have else ""), f"stays; cloud has {want}")
    if not stale:
        yield Finding(f"profile {snap.profile.name}", "mail", "", "no mail mapping")


def _changed(m: Mailbox, e: AdEntry) -> Iterator[tuple[str, str]]:
    """(attribute, "old -> new") of each attribute a modify changes."""
    by_attr: dict[str, list[Change]] = {}
    for c in m.changes:
        by_attr.setdefault(c[1], []).append(c)
    for name, changes in by_attr.items():
        old = e.values.get(name, ())
        new = list(old)
        for op, _, values in changes:
            if op == "replace":
                new = list(values)
            elif op == "delete":
                new = [v for v in new if v not in values]
            else:
                new += values
        yield name, f"{shown('; '.join(old)) or '(none)'} -> {shown('; '.join(new)) or '(none)'}"


@rule(
    "wb-unmanaged-drift",
    Severity.WARNING,
    "a mailbox that is not cloud-managed differs from AD",
    """Nothing is written today (IsExchangeCloudManaged is false), but these values are
    written to AD the day the flag is set: align them first if AD's values are the right
    ones.""",
    WRITEBACK,
)
def unmanaged_drift(snap: Snapshot) -> Iterator[Finding]:
    for m in snap.mailboxes:
        if m.synced and not m.managed and m.ad is not None and m.changes:
            e = snap.ad[m.ad]
            for name, change in _changed(m, e):
                yield Finding(e.dn, name, change, f"from {m.label}")


@rule(
    "wb-first-cycle",
    Severity.INFO,
    "values the first writeback cycle writes",
    """Review them (`exwb cycle --mode dry-run` shows every one): the first cycle writes
    Exchange Online's values over AD's for every cloud-managed mailbox.""",
    WRITEBACK,
)
def first_cycle(snap: Snapshot) -> Iterator[Finding]:
    for m, e in _in_scope(snap):
        for name, change in _changed(m, e):
            yield Finding(e.dn, name, change, f"from {m.label}")


def rules_markdown() -> str:
    """The rule table of docs/preflight.md (`docs/hooks.py`)."""
    from harness.report.markdown import table

    rows = [(f"`{r.id}`", r.severity.value, r.title, r.fix, r.basis) for r in RULES.values()]
    return "\n".join(table(["rule", "severity", "finds", "fix", "basis"], rows, raw={0}))

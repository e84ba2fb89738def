"""Checking expectations against the running tenant, over LDAP and HTTP as a client would.

Each kind's check (named in `harness.scenario.registry`) returns (passed, detail): the detail
says what was measured and, on failure, shows a few examples. A failed expectation does not
stop the scenario; a step error does.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

from harness.clients.exo import CmdletError
from harness.core import clock
from harness.core.adschema import DEFAULT_SCHEMA, InvalidValue, Syntax
from harness.core.dn import normalize_dn
from harness.engine import log as provlog
from harness.engine.ldapwire import LdapConnection, LdapError
from harness.engine.rules import MappingError
from harness.engine.source import GraphSource, SourceError
from harness.engine.state import EngineState
from harness.engine.target import LdapTarget, plan
from harness.engine.verify import verify
from harness.scenario import model as m
from harness.scenario.ldapfilter import FilterSyntaxError, escape_value, parse_filter
from harness.scenario.world import CycleRecord, StepError, Target, World

EXAMPLES = 3
Result = tuple[bool, str]


def _examples(items: list[str], total: int | None = None) -> str:
    shown = "; ".join(items[:EXAMPLES])
    more = (total if total is not None else len(items)) - min(len(items), EXAMPLES)
    return shown + (f"; and {more:,} more" if more > 0 else "")


# --- convergence ------------------------------------------------------------------------------


def _parity(world: World) -> Any:
    try:
        return verify(world.cloud_reader, world.reader, world.profile)
    except (SourceError, LdapError) as err:
        raise StepError(f"parity check: {err}") from None


def converged(world: World, step: m.Expect, e: m.Converged) -> Result:
    if e.select is None:
        p = _parity(world)
        bad = {a: n for a, n in p.mismatches.items() if n}
        if not bad and not p.unmatched:
            n = len(world.profile.targets)
            return True, f"{p.in_scope:,} in-scope mailboxes equal AD on {n} attribute(s)"
        return False, _parity_problems(p)
    targets = world.select(e.select, step.index, ad=True)
    try:
        with GraphSource(world.cloud_reader) as source:
            records = {t.id: source.user(t.id) for t in targets}
        with LdapTarget(world.reader, list(world.profile.targets)) as ad:
            found = ad.find_many(t.anchor for t in targets if t.anchor)
    except (SourceError, LdapError) as err:
        raise StepError(f"converged: {err}") from None
    problems = []
    for t in targets:
        record, obj = records[t.id], found.get(t.anchor or "")
        if record is None or obj is None:
            problems.append(f"{t.upn}: {'no cloud user' if record is None else 'no AD user'}")
            continue
        try:
            changes = plan(obj.values, world.profile.desired(record))
        except (MappingError, ValueError) as err:
            problems.append(f"{t.upn}: {err}")
            continue
        for _, attr, _ in changes[:1]:
            want = list(world.profile.desired(record).get(attr, ()))
            problems.append(f"{t.upn}: {attr} AD {list(obj.values.get(attr, ()))} != cloud {want}")
    if not problems:
        n = len(world.profile.targets)
        return True, f"{len(targets):,} of {len(targets):,} equal on {n} attribute(s)"
    return False, f"{len(problems):,} of {len(targets):,} differ: {_examples(problems)}"


def _parity_problems(p: Any) -> str:
    parts = []
    bad = {a: n for a, n in p.mismatches.items() if n}
    if bad:
        counts = ", ".join(f"{a} {n:,}" for a, n in sorted(bad.items()))
        parts.append(f"mismatches of {p.in_scope:,} in scope: {counts}")
        shown = [
            f"{ex['dn']}: {a} AD {ex['ad']} != cloud {ex['cloud']}"
            for a, exs in sorted(p.examples.items())
            for ex in exs
        ]
        parts.append(f"e.g. {_examples(shown, len(shown))}")
    if p.unmatched:
        parts.append(f"{len(p.unmatched):,} in-scope mailbox(es) without an AD user")
    return "; ".join(parts)


def parity_clean(world: World, step: m.Expect, e: m.ParityClean) -> Result:
    p = _parity(world)
    if p.clean:
        matched = sum(p.matches.values())
        return True, f"clean: {p.in_scope:,} in scope, {matched:,} attribute values match"
    return False, _parity_problems(p)


# --- values -----------------------------------------------------------------------------------


def _ad_key(attribute: str) -> Callable[[str], object]:
    """How AD compares values of `attribute`: exact text for strings (SMTP: vs smtp: matters),
    the schema's key for integers and Booleans (TRUE = true, 0512 = 512)."""
    attr = DEFAULT_SCHEMA.require(attribute)
    if attr.syntax in (Syntax.STRING, Syntax.OCTETS):
        return lambda v: v

    def key(v: str) -> object:
        try:
            return attr.key(v.encode("utf-8"))
        except InvalidValue:
            return v

    return key


def _cloud_text(value: Any) -> list[str]:
    if value is None or value == "":
        return []
    if isinstance(value, bool):
        return ["true" if value else "false"]
    if isinstance(value, list):
        return [str(v) for v in value]
    return [str(value)]


def _compare(
    e: m.Values, have: list[str], fields: dict[str, str | None], key: Callable[[str], object]
) -> str | None:
    """Why `have` does not meet `e`, or None."""
    have_keys = Counter(key(v) for v in have)
    if e.values is not None:
        want = [t.render(fields) for t in e.values]
        if Counter(key(v) for v in want) != have_keys:
            return f"has {have} (want {want})"
    missing = [w for w in (t.render(fields) for t in e.contains) if key(w) not in have_keys]
    if missing:
        return f"lacks {missing} (has {have})"
    present = [w for w in (t.render(fields) for t in e.lacks) if key(w) in have_keys]
    if present:
        return f"still has {present}"
    return None


def _values_report(e: m.Values, targets: list[Target], problems: list[str], where: str) -> Result:
    if not problems:
        return True, f"{len(targets):,} of {len(targets):,} as expected in {where}"
    return False, f"{len(problems):,} of {len(targets):,} differ in {where}: {_examples(problems)}"


def ad(world: World, step: m.Expect, e: m.Values) -> Result:
    targets = world.select(e.select, step.index, ad=True)
    try:
        with LdapTarget(world.reader, [e.attribute]) as ad:
            found = ad.find_many(t.anchor for t in targets if t.anchor)
    except LdapError as err:
        raise StepError(f"reading {e.attribute}: {err}") from None
    key = _ad_key(e.attribute)
    problems = []
    for i, t in enumerate(targets, 1):
        obj = found.get(t.anchor or "")
        have = list(obj.values.get(e.attribute, ())) if obj is not None else []
        why = _compare(e, have, t.fields(i, world.domain), key)
        if why is not None:
            problems.append(f"{t.dn}: {e.attribute} {why}")
    return _values_report(e, targets, problems, f"AD ({e.attribute})")


def cloud(world: World, step: m.Expect, e: m.CloudValues) -> Result:
    targets = world.select(e.select, step.index)
    problems = []
    for i, t in enumerate(targets, 1):
        try:
            (rec,) = world.exo.invoke("Get-Recipient", Identity=t.id)["value"]
        except CmdletError as err:
            raise StepError(f"Get-Recipient {t.upn}: {err}") from None
        value = rec.get(e.attribute)
        # Booleans compare as words, whatever their case; everything else exactly.
        key: Callable[[str], object] = str.casefold if isinstance(value, bool) else str
        why = _compare(e, _cloud_text(value), t.fields(i, world.domain), key)
        if why is not None:
            problems.append(f"{t.upn}: {e.attribute} {why}")
    return _values_report(e, targets, problems, f"Exchange Online ({e.attribute})")


# --- a line-of-business search ------------------------------------------------------------------


def ldap_search(world: World, step: m.Expect, e: m.LdapSearch) -> Result:
    targets: list[Target | None] = [None]
    if e.select is not None:
        targets = list(world.select(e.select, step.index, ad=True))
    creds = world.reader
    problems, counts = [], []
    try:
        with LdapConnection(creds.url) as conn:
            conn.bind(creds.bind_dn, creds.password)
            for i, t in enumerate(targets, 1):
                fields = t.fields(i, world.domain) if t else {"domain": world.domain}
                text = e.filter.render(fields, escape_value)
                base = e.base.render(fields) if e.base is not None else creds.base_dn
                try:
                    entries = [
                        dn for dn, _ in conn.search(base, e.scope, parse_filter(text).ber, ["1.1"])
                    ]
                except LdapError as err:
                    problems.append(f"{text}: LDAP {err.code}: {err.message.strip()[:200]}")
                    continue
                except FilterSyntaxError as err:
                    raise StepError(f"ldap_search: {err}") from None
                counts.append(len(entries))
                if not e.entries.holds(len(entries)):
                    problems.append(f"{text}: {len(entries):,} entries (want {e.entries})")
                elif _someone_else(t, e, entries):
                    problems.append(f"{text}: found {entries[0]}, not {t.dn if t else ''}")
    except LdapError as err:
        raise StepError(f"ldap_search as the reader: {err}") from None
    runs = len(targets)
    if not problems:
        found = f"{counts[0]:,} entries" if runs == 1 else f"entries {e.entries} for each of {runs}"
        if runs > 1 and e.entries.exactly == 1:
            found += ", each the selected user"
        return True, f"{found} (bound as the reader)"
    return False, f"{len(problems):,} of {runs:,} searches off: {_examples(problems)}"


def _someone_else(t: Target | None, e: m.LdapSearch, entries: list[str]) -> bool:
    """Whether a search for one selected user found another entry."""
    if t is None or t.dn is None or e.entries.exactly != 1:
        return False
    return normalize_dn(entries[0]) != normalize_dn(t.dn)


# --- the provisioning log ---------------------------------------------------------------------


def _entries(record: CycleRecord) -> Iterable[dict[str, Any]]:
    for path in record.logs:
        yield from provlog.read(path)


def _which(record: CycleRecord) -> str:
    name = f" {record.name}" if record.name else ""
    return f"{record.mode} cycle{name} (step {record.step})"


def log(world: World, step: m.Expect, e: m.LogCounts) -> Result:
    record = world.cycle(e.cycle)
    statuses: Counter[str] = Counter()
    actions: Counter[str] = Counter()
    for entry in _entries(record):
        statuses[provlog.status(entry)] += 1
        actions[provlog.action(entry)] += 1
    objects = sum(statuses.values())
    off = [
        f"{k} {statuses[k]:,} (want {c})" for k, c in e.statuses.items() if not c.holds(statuses[k])
    ]
    off += [
        f"{k} {actions[k]:,} (want {c})" for k, c in e.actions.items() if not c.holds(actions[k])
    ]
    if e.objects is not None and not e.objects.holds(objects):
        off.append(f"objects {objects:,} (want {e.objects})")
    seen = f"{objects:,} entries: {dict(statuses)}, actions {dict(actions)}"
    if off:
        return False, f"{_which(record)}: {', '.join(off)}; log has {seen}"
    return True, f"{_which(record)}: {seen}"


def error_codes(world: World, step: m.Expect, e: m.ErrorCodes) -> Result:
    record = world.cycle(e.cycle)
    codes = Counter(
        code for entry in _entries(record) if (code := provlog.error_code(entry)) is not None
    )
    missing = [c for c in e.present if not codes[c]]
    unwanted = [c for c in e.absent if codes[c]]
    seen = ", ".join(f"LDAP {c} x{n:,}" for c, n in sorted(codes.items())) or "no error codes"
    if missing or unwanted:
        parts = [f"missing {missing}"] if missing else []
        parts += [f"present but unwanted {unwanted}"] if unwanted else []
        return False, f"{_which(record)}: {'; '.join(parts)} (log has {seen})"
    return True, f"{_which(record)}: {seen}"


# --- scope, job, forward ------------------------------------------------------------------------


def out_of_scope_untouched(world: World, step: m.Expect, e: m.OutOfScopeUntouched) -> Result:
    before = world.snapshot
    if before is None:
        raise StepError("no AD snapshot was taken at the start")
    now = world.ad_users()
    recipients = world.recipients()
    anchors = {
        str(r["ExternalDirectoryObjectId"]): r.get("onPremisesImmutableId") for r in recipients
    }
    in_scope = set(before.managed)
    in_scope |= {
        str(r["onPremisesImmutableId"])
        for r in recipients
        if r.get("IsExchangeCloudManaged") and r.get("onPremisesImmutableId")
    }
    in_scope |= {str(anchors[i]) for i in world.flipped if anchors.get(i)}
    checked, changed = 0, []
    for dn, (anchor, values) in before.users.items():
        if (anchor is not None and anchor in in_scope) or dn in world.ad_edited:
            continue
        checked += 1
        after = now.get(dn)
        if after is None:
            changed.append(f"{dn}: gone")
        elif after[1] != values:
            attrs = sorted(a for a in values if after[1].get(a) != values[a])
            changed.append(f"{dn}: {', '.join(attrs)}")
    if changed:
        return (
            False,
            f"{len(changed):,} of {checked:,} out-of-scope AD users changed: {_examples(changed)}",
        )
    return (
        True,
        f"{checked:,} out-of-scope AD users unchanged (uSNChanged and the profile's attributes)",
    )


def _when_off(what: str, got: str | None, want: m.When) -> str | None:
    """How `got` (ISO 8601 or None) misses `want`, or None when it matches."""
    target = want.resolve(clock.now())
    expected = clock.iso(target) if target is not None else None
    if got == expected:
        return None
    shown = expected or "none"
    if want.offset is not None:
        shown += f" ({want.text} from {clock.now_iso()})"
    return f"{what} {got or 'none'} (want {shown})"


def job(world: World, step: m.Expect, e: m.JobState) -> Result:
    status = world.job.status()
    code = status["status"]["code"]
    quarantine = status["status"]["quarantine"]
    reason = quarantine["reason"] if quarantine else None
    escrowed = int(status["exwb"]["escrowed"])
    # In quarantine, Graph's quarantine.nextAttempt; otherwise the next scheduled cycle (the
    # job's next_run: the two agree by construction of WritebackJob).
    nxt = world.job.next_run()
    next_text = quarantine["nextAttempt"] if quarantine else (clock.iso(nxt) if nxt else None)
    off = []
    if e.state is not None and code != e.state:
        off.append(f"state {code} (want {e.state})")
    if e.reason is not None and reason != e.reason:
        off.append(f"quarantine reason {reason} (want {e.reason})")
    if e.escrowed is not None and not e.escrowed.holds(escrowed):
        off.append(f"{escrowed:,} escrowed (want {e.escrowed})")
    if e.next_attempt is not None:
        miss = _when_off("next attempt", next_text, e.next_attempt)
        if miss:
            off.append(miss)
    seen = f"job {code}" + (f" ({reason})" if reason else "") + f", {escrowed:,} escrowed"
    seen += f", next attempt {next_text or 'none'}"
    return (False, f"{', '.join(off)}; {seen}") if off else (True, seen)


def escrow(world: World, step: m.Expect, e: m.EscrowState) -> Result:
    targets = world.select(e.select, step.index)
    entries = EngineState.load(world.state_dir).escrow
    off: list[str] = []
    seen: Counter[str] = Counter()
    for t in targets:
        entry = entries.get(t.id)
        if e.absent:
            if entry is not None:
                off.append(f"{t.upn}: escrowed ({entry.attempts} attempt(s), {entry.reason})")
            continue
        if entry is None:
            off.append(f"{t.upn}: not escrowed")
            continue
        seen[f"{entry.attempts} attempt(s), next {entry.next_attempt or 'next cycle'}"] += 1
        if e.attempts is not None and not e.attempts.holds(entry.attempts):
            off.append(f"{t.upn}: {entry.attempts} attempt(s) (want {e.attempts})")
        if e.next_attempt is not None:
            got = entry.next_attempt or None
            miss = _when_off(
                "next attempt", got and clock.iso(clock.parse_iso(got)), e.next_attempt
            )
            if miss:
                off.append(f"{t.upn}: {miss}")
    if e.absent:
        text = f"{len(targets) - len(off):,} of {len(targets):,} not escrowed"
    else:
        text = "; ".join(f"{n:,} with {k}" for k, n in seen.items()) or "none escrowed"
    return (False, f"{_examples(off)}; {text}") if off else (True, text)


def cycles(world: World, step: m.Expect, e: m.CyclesRan) -> Result:
    if not world.waits:
        raise StepError("no wait step has run yet")
    w = world.waits[-1]
    off = []
    if not e.count.holds(w.cycles):
        off.append(f"{w.cycles:,} cycle(s) ran (want {e.count})")
    if e.failed is not None and not e.failed.holds(w.failed):
        off.append(f"{w.failed:,} could not run (want {e.failed})")
    text = f"{w.cycles:,} scheduled cycle(s) during the wait of step {w.step} ({w.span})"
    text += f", {w.failed:,} could not run"
    return (False, f"{', '.join(off)}; {text}") if off else (True, text)


def forward_counts(world: World, step: m.Expect, e: m.ForwardCounts) -> Result:
    if not world.forwards:
        raise StepError("no forward-sync cycle has run yet")
    report = world.forwards[-1].as_dict()
    off, seen = [], []
    for key, count in e.counts.items():
        value = int(report[m.FORWARD_COUNTS[key]])
        seen.append(f"{key} {value:,}")
        if not count.holds(value):
            off.append(f"{key} {value:,} (want {count})")
    text = f"forward sync with Connect {report['connectBuild']}: {', '.join(seen)}"
    return (False, f"{', '.join(off)}; {text}") if off else (True, text)


def decommission_state(world: World, step: m.Expect, e: m.DecommissionState) -> Result:
    if not world.decommissions:
        raise StepError("no decommission step has run yet")
    r = world.decommissions[-1]
    codes = sorted(b["code"] for b in r["blockers"])
    seen = (
        f"{'blocked by ' + ', '.join(codes) if codes else 'not blocked'}, server "
        f"{r['serverState']}, {'finished' if r['finished'] else 'not finished'}"
        + (", refused" if r["refused"] else "")
        + f", {len(r['leftovers'])} leftover(s)"
    )
    off = []
    for key, want in (("blocked", e.blocked), ("finished", e.finished)):
        if want is not None and bool(r[key]) != want:
            off.append(f"{key} is {bool(r[key])}, want {want}")
    if e.refused is not None and bool(r["refused"]) != e.refused:
        off.append(f"refused is {bool(r['refused'])}, want {e.refused}")
    if e.blockers is not None and codes != sorted(e.blockers):
        missing = sorted(set(e.blockers) - set(codes))
        extra = sorted(set(codes) - set(e.blockers))
        off.append(
            "blockers differ"
            + (f": missing {', '.join(missing)}" if missing else "")
            + (f"; unexpected {', '.join(extra)}" if extra else "")
        )
    if e.server is not None and r["serverState"] != e.server:
        off.append(f"server {r['serverState']}, want {e.server}")
    if e.leftovers is not None and not e.leftovers.holds(len(r["leftovers"])):
        off.append(f"{len(r['leftovers'])} leftover(s), want {e.leftovers}")
    return (False, f"{'; '.join(off)} ({seen})") if off else (True, seen)


def fault_counts(world: World, step: m.Expect, e: m.FaultCounts) -> Result:
    injected = world.plan().injected()
    shown = ", ".join(f"{k} {n:,}" for k, n in injected.items()) or "none"
    bad = [
        f"{k}: {injected.get(k, 0):,}, expected {count}"
        for k, count in e.counts.items()
        if not count.holds(injected.get(k, 0))
    ]
    if bad:
        return False, f"{'; '.join(bad)} (injected so far: {shown})"
    return True, f"injected so far: {shown}"

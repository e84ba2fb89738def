"""The ``expect:`` step's entries, read from YAML and validated (see `ExpectationReader`).

Each parser takes its kind's `Schema` from `harness.scenario.registry`, which declares the keys
(every expectation's keys include ``name``).
"""

from __future__ import annotations

from functools import cache

import yaml

from harness.core.adschema import DEFAULT_SCHEMA
from harness.core.yamlnodes import BOOL, Fields, closest, names
from harness.scenario import model as m
from harness.scenario.ldapfilter import FilterSyntaxError, parse_filter
from harness.scenario.reader import ScenarioReader, Schema
from harness.scenario.templates import FIELDS, Template
from harness.tenant.model import CloudMailbox
from mockservers.cloud.opath import render_recipient
from mockservers.faults import KINDS, SERVERS

_SCOPES = ("base", "one", "sub")
_OBJECT_FIELDS = frozenset({"index", "id", "upn", "alias", "mail", "dn"})


def _cycle_words(cycle: str | None) -> str:
    return "the last cycle" if cycle in (None, "last") else f"cycle {cycle}"


@cache
def cloud_properties() -> tuple[str, ...]:
    """The property names Get-Mailbox returns (from the fake's own renderer, so they agree)."""
    blank = CloudMailbox("", "", "", "", None, False, False, "UserMailbox", (), "", "")
    return tuple(render_recipient(blank))


class ExpectationReader(ScenarioReader):
    """Parsers of the expectation kinds: ``(schema, line, body) -> Expectation``."""

    def _fields_or_true(self, schema: Schema, body: yaml.Node) -> Fields:
        """The body's keys; a bare ``true`` means no parameters."""
        if isinstance(body, yaml.ScalarNode) and body.tag == BOOL:
            if not self.boolean(body, schema.kind):
                raise self.error(
                    body, f"{schema.kind}: false expects nothing", "remove it, or write true"
                )
            return {}
        return self.fields(schema, body)

    def _name(self, f: Fields, default: str) -> str:
        return self.scalar(f["name"][1], "name") if "name" in f else default

    def converged(self, schema: Schema, line: int, body: yaml.Node) -> m.Converged:
        f = self._fields_or_true(schema, body)
        select = self.selector(f["select"][1]) if "select" in f else None
        default = f"converged ({select.describe()})" if select else "converged (all in scope)"
        return m.Converged(line, self._name(f, default), select)

    def parity_clean(self, schema: Schema, line: int, body: yaml.Node) -> m.ParityClean:
        f = self._fields_or_true(schema, body)
        return m.ParityClean(line, self._name(f, "parity clean"))

    def out_of_scope_untouched(
        self, schema: Schema, line: int, body: yaml.Node
    ) -> m.OutOfScopeUntouched:
        f = self._fields_or_true(schema, body)
        return m.OutOfScopeUntouched(line, self._name(f, "out of scope untouched"))

    def values(self, schema: Schema, line: int, body: yaml.Node) -> m.Values:
        """``ad`` (an AD attribute) and ``cloud`` (a Get-Mailbox property)."""
        kind = schema.kind
        key = "attribute" if kind == "ad" else "property"
        f = self.fields(schema, body)
        select = self.selector(f["select"][1])
        anode = f[key][1]
        if kind == "ad":
            attribute = self.ad_attribute(anode)
        else:
            attribute = self.scalar(anode, "property")
            props = cloud_properties()
            match = next((p for p in props if p.casefold() == attribute.casefold()), None)
            if match is None:
                near = closest(attribute, props)
                hint = f"did you mean {near!r}?" if near else f"one of {names(props)}"
                raise self.error(anode, f"Get-Mailbox has no property {attribute!r}", hint)
            attribute = match
        side = "ad" if kind == "ad" else "cloud"
        exact: tuple[Template, ...] | None = None
        given = [k for k in ("values", "value", "absent") if k in f]
        if len(given) > 1:
            raise self.error(f[given[1]][0], f"{kind} takes one of values, value and absent")
        if "values" in f:
            exact = tuple(self.templates(f["values"][1], "values", side))
        elif "value" in f:
            vnode = f["value"][1]
            exact = () if self.is_null(vnode) else (self.template(vnode, "value", side),)
        elif "absent" in f:
            if not self.boolean(f["absent"][1], "absent"):
                raise self.error(f["absent"][1], "absent: false expects nothing")
            exact = ()
        contains = (
            tuple(self.templates(f["contains"][1], "contains", side)) if "contains" in f else ()
        )
        lacks = tuple(self.templates(f["lacks"][1], "lacks", side)) if "lacks" in f else ()
        if exact is None and not contains and not lacks:
            raise self.error(
                body, f"{kind} checks nothing", "give values, value, absent, contains or lacks"
            )
        cls = m.Values if kind == "ad" else m.CloudValues
        default = f"{kind} {attribute} ({select.describe()})"
        return cls(line, self._name(f, default), select, attribute, exact, contains, lacks)

    def ldap_search(self, schema: Schema, line: int, body: yaml.Node) -> m.LdapSearch:
        f = self.fields(schema, body)
        fnode = f["filter"][1]
        template = self.template(fnode, "filter", "ad")
        dummy = {name: "x" for name in FIELDS}
        try:
            parsed = parse_filter(template.render(dummy))
        except FilterSyntaxError as e:
            hint = "RFC 4515, e.g. (proxyAddresses=smtp:{alias}@{domain})"
            raise self.error(fnode, f"LDAP filter: {e}", hint) from None
        for attr in sorted(parsed.attributes):
            if DEFAULT_SCHEMA.get(attr) is None and "." not in attr:
                near = closest(attr.split(";")[0], [a.name for a in DEFAULT_SCHEMA])
                hint = f"did you mean {near!r}?" if near else "see harness/core/adschema.py"
                raise self.error(fnode, f"the filter names unknown AD attribute {attr!r}", hint)
        base = self.template(f["base"][1], "base", "ad") if "base" in f else None
        scope = "sub"
        if "scope" in f:
            scope = self.scalar(f["scope"][1], "scope")
            if scope not in _SCOPES:
                raise self.error(
                    f["scope"][1], f"unknown scope {scope!r}", f"one of {', '.join(_SCOPES)}"
                )
        entries = self.count(f["entries"][1], "entries")
        select = self.selector(f["select"][1]) if "select" in f else None
        used = (template.fields | (base.fields if base else frozenset())) & _OBJECT_FIELDS
        if used and select is None:
            raise self.error(
                fnode,
                f"the search uses {{{sorted(used)[0]}}} but selects no objects",
                "add select: ...",
            )
        return m.LdapSearch(
            line,
            self._name(f, f"ldap_search {template.text}"),
            template,
            base,
            scope,
            entries,
            select,
        )

    def _cycle_needed(self, node: yaml.Node, kind: str) -> None:
        if not self.any_cycle and not self.any_wait:
            raise self.error(
                node,
                f"{kind} reads a cycle's provisioning log, and no cycle ran before it",
                "add a '- cycle: delta' step first",
            )

    def log(self, schema: Schema, line: int, body: yaml.Node) -> m.LogCounts:
        self._cycle_needed(body, schema.kind)
        f = self.fields(schema, body)
        cycle = self.cycle_ref(f["cycle"][1]) if "cycle" in f else None
        counts: dict[str, dict[str, m.Count]] = {}
        for key, allowed in (("statuses", m.LOG_STATUSES), ("actions", m.LOG_ACTIONS)):
            counts[key] = {}
            if key in f:
                for name, (_, vnode) in self.mapping(f[key][1], allowed, key).items():
                    counts[key][name] = self.count(vnode, f"{key}.{name}")
        objects = self.count(f["objects"][1], "objects") if "objects" in f else None
        if not counts["statuses"] and not counts["actions"] and objects is None:
            raise self.error(body, "log checks nothing", "give statuses, actions or objects")
        shown = ", ".join(
            f"{k}={v}" for k, v in {**counts["statuses"], **counts["actions"]}.items()
        )
        default = f"log of {_cycle_words(cycle)}" + (f": {shown}" if shown else "")
        return m.LogCounts(
            line, self._name(f, default), cycle, counts["statuses"], counts["actions"], objects
        )

    def error_codes(self, schema: Schema, line: int, body: yaml.Node) -> m.ErrorCodes:
        self._cycle_needed(body, schema.kind)
        f = self.fields(schema, body)
        cycle = self.cycle_ref(f["cycle"][1]) if "cycle" in f else None
        lists: dict[str, tuple[int, ...]] = {}
        for key in ("present", "absent"):
            items = self.sequence(f[key][1], key) if key in f else []
            lists[key] = tuple(
                self.integer(i, f"each of {key} (an LDAP result code)", 0, 127) for i in items
            )
        if not lists["present"] and not lists["absent"]:
            raise self.error(
                body, "error_codes checks nothing", "give present: [50] or absent: [...]"
            )
        default = f"error codes of {_cycle_words(cycle)}"
        return m.ErrorCodes(line, self._name(f, default), cycle, lists["present"], lists["absent"])

    def job(self, schema: Schema, line: int, body: yaml.Node) -> m.JobState:
        f = self.fields(schema, body)
        state = None
        if "state" in f:
            state = self.scalar(f["state"][1], "state")
            if state not in m.JOB_STATES:
                raise self.error(
                    f["state"][1],
                    f"unknown job state {state!r}",
                    f"one of {', '.join(m.JOB_STATES)}",
                )
        reason = self.scalar(f["reason"][1], "reason") if "reason" in f else None
        escrowed = self.count(f["escrowed"][1], "escrowed") if "escrowed" in f else None
        nxt = self.when(f["nextAttempt"][1], "nextAttempt") if "nextAttempt" in f else None
        if state is None and reason is None and escrowed is None and nxt is None:
            raise self.error(
                body, "job checks nothing", "give state, reason, escrowed or nextAttempt"
            )
        shown = " ".join(
            [f"job {state or ''}".strip()] + ([f"next {nxt.text}"] if nxt is not None else [])
        )
        return m.JobState(line, self._name(f, shown), state, reason, escrowed, nxt)

    def escrow(self, schema: Schema, line: int, body: yaml.Node) -> m.EscrowState:
        f = self.fields(schema, body)
        self._cycle_needed(body, schema.kind)
        select = self.selector(f["object"][1])
        attempts = self.count(f["attempts"][1], "attempts") if "attempts" in f else None
        nxt = self.when(f["nextAttempt"][1], "nextAttempt") if "nextAttempt" in f else None
        absent = False
        if "absent" in f:
            absent = self.boolean(f["absent"][1], "absent")
            if not absent:
                raise self.error(f["absent"][1], "absent: false expects nothing")
            other = next((k for k in ("attempts", "nextAttempt") if k in f), None)
            if other is not None:
                raise self.error(
                    f[other][0], f"an absent escrow entry has no {other}", "drop one of them"
                )
        if attempts is None and nxt is None and not absent:
            raise self.error(
                body, "escrow checks nothing", "give attempts, nextAttempt or absent: true"
            )
        parts = [f"attempts {attempts}"] if attempts is not None else []
        parts += ([f"next {nxt.text}"] if nxt is not None else []) + ["absent"] * absent
        default = f"escrow of {select.describe()}: {', '.join(parts)}"
        return m.EscrowState(line, self._name(f, default), select, attempts, nxt, absent)

    def cycles_ran(self, schema: Schema, line: int, body: yaml.Node) -> m.CyclesRan:
        f = {} if isinstance(body, yaml.ScalarNode) else self.fields(schema, body)
        if not self.any_wait:
            raise self.error(
                body,
                "cycles counts the cycles of the last wait step, and no wait came before it",
                "add a '- wait: {minutes: 20}' step first",
            )
        if isinstance(body, yaml.ScalarNode):
            count = self.count(body, "cycles")
            return m.CyclesRan(line, f"cycles during the last wait: {count}", count)
        if "ran" not in f:
            raise self.error(body, "cycles needs ran", "e.g. cycles: 3 or {ran: 3, failed: 0}")
        count = self.count(f["ran"][1], "ran")
        failed = self.count(f["failed"][1], "failed") if "failed" in f else None
        default = f"cycles during the last wait: {count}" + (
            f", {failed} failed" if failed is not None else ""
        )
        return m.CyclesRan(line, self._name(f, default), count, failed)

    def forward_counts(self, schema: Schema, line: int, body: yaml.Node) -> m.ForwardCounts:
        if not self.any_forward:
            raise self.error(
                body,
                "forward checks a forward-sync cycle, and none ran before it",
                "add a '- forward:' step first",
            )
        f = self.fields(schema, body)
        counts = {k: self.count(v, k) for k, (_, v) in f.items() if k != "name"}
        if not counts:
            raise self.error(
                body, "forward checks nothing", f"give some of {names(m.FORWARD_COUNTS)}"
            )
        shown = ", ".join(f"{k}={v}" for k, v in counts.items())
        return m.ForwardCounts(line, self._name(f, f"forward: {shown}"), counts)

    def decommission_state(self, schema: Schema, line: int, body: yaml.Node) -> m.DecommissionState:
        if not self.any_decommission:
            raise self.error(
                body,
                "decommission checks a decommission step, and none ran before it",
                "add a '- decommission: {action: plan}' step first",
            )
        f = self.fields(schema, body)
        flags = {k: self.boolean(f[k][1], k) for k in ("blocked", "finished", "refused") if k in f}
        blockers = None
        if "blockers" in f:
            codes = []
            for item in self.sequence(f["blockers"][1], "blockers"):
                code = self.scalar(item, "blocker code")
                if code not in m.BLOCKER_CODES:
                    near = closest(code, m.BLOCKER_CODES)
                    hint = f"did you mean {near!r}?" if near else names(m.BLOCKER_CODES)
                    raise self.error(item, f"unknown blocker {code!r}", hint)
                codes.append(code)
            blockers = tuple(codes)
        server = None
        if "server" in f:
            server = self.scalar(f["server"][1], "server")
            if server not in m.SERVER_STATES:
                raise self.error(
                    f["server"][1], f"unknown server state {server!r}", names(m.SERVER_STATES)
                )
        leftovers = self.count(f["leftovers"][1], "leftovers") if "leftovers" in f else None
        if not flags and blockers is None and server is None and leftovers is None:
            raise self.error(
                body, "decommission checks nothing", "give blocked, blockers, server, finished"
            )
        shown = ", ".join(
            [f"{k}={v}" for k, v in flags.items()]
            + ([f"blockers={'/'.join(blockers) or 'none'}"] if blockers is not None else [])
            + ([f"server={server}"] if server else [])
            + ([f"leftovers={leftovers}"] if leftovers is not None else [])
        )
        return m.DecommissionState(
            line,
            self._name(f, f"decommission: {shown}"),
            flags.get("blocked"),
            blockers,
            server,
            flags.get("finished"),
            flags.get("refused"),
            leftovers,
        )

    def fault_counts(self, schema: Schema, line: int, body: yaml.Node) -> m.FaultCounts:
        if not self.any_fault:
            raise self.error(
                body,
                "faults counts what fault steps injected, and none armed a fault before it",
                "add a '- fault: {server: ldap, kind: busy}' step first",
            )
        f = self.fields(schema, body)
        counts: dict[str, m.Count] = {}
        for server in SERVERS:
            if server in f:
                kinds = self.mapping(f[server][1], KINDS[server], f"faults.{server}")
                for kind, (_, vnode) in kinds.items():
                    counts[f"{server}.{kind}"] = self.count(vnode, f"faults.{server}.{kind}")
        if not counts:
            raise self.error(
                body, "faults checks nothing", "e.g. {ldap: {busy: 5}, http: {throttle: {min: 1}}}"
            )
        shown = ", ".join(f"{k}={v}" for k, v in counts.items())
        return m.FaultCounts(line, self._name(f, f"faults injected: {shown}"), counts)

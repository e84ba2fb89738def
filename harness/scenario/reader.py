"""The pieces of a scenario file that steps and expectations share: the schema of a kind's
keys, selections, templates, AD attribute names, counts and cycle references, each validated
with its ``file:line``."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from harness.core import clock
from harness.core.adschema import DEFAULT_SCHEMA
from harness.core.yamlnodes import STR, Fields, NodeReader, closest, names
from harness.scenario import model as m
from harness.scenario.templates import Template, TemplateError
from mockservers.cloud.opath import RECIPIENT_PROPERTIES, OpathError, compile_filter

_SELECTOR = ("filter", "sample", "ids", "upns", "name")
SPAN_UNITS = ("days", "hours", "minutes")
_OFFSET = re.compile(r"\+(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?")


class ScenarioError(ValueError):
    """An invalid scenario; the message is ``file:line: message (hint: ...)``."""


@dataclass(frozen=True, slots=True)
class Field:
    """One key of a step's or an expectation's body, as the YAML writes it.

    `required` keys are checked by `ScenarioReader.fields`; a key needed only in some forms
    (an on-demand cycle's ``select``) is not required here, its parser checks it and `doc` says
    when."""

    name: str
    type: str  # what the value is, in the words of the docs: "selection", "count", "text" ...
    doc: str
    required: bool = False
    default: str | None = None  # as YAML would write it; None: no default (absent means unset)


@dataclass(frozen=True, slots=True)
class Schema:
    """The keys a kind's body takes: what validation accepts and what the docs tables list."""

    kind: str
    fields: tuple[Field, ...]

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)


class ScenarioReader(NodeReader):
    """A NodeReader that remembers what earlier lines defined (selections, cycles)."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, ScenarioError)
        self.selections: dict[str, int] = {}  # selection name -> line that defined it
        self.cycles: dict[str, int] = {}  # cycle name -> line
        self.any_cycle = False
        self.any_forward = False
        self.any_decommission = False
        self.faults: dict[str, int] = {}  # fault name -> line that armed it
        self.any_fault = False
        self.mailboxes = 0  # what a sample may draw from
        self.simulated = False  # the scenario's clock: wait steps need a simulated one
        self.any_wait = False

    def one_key(self, node: yaml.Node, kinds: Iterable[str], what: str) -> tuple[str, yaml.Node]:
        """A one-key mapping ``{kind: body}``: the kind (one of `kinds`) and its body node."""
        known = tuple(kinds)
        if not isinstance(node, yaml.MappingNode) or len(node.value) != 1:
            raise self.error(
                node, f"{what} must be a mapping with one key, its kind", f"one of {names(known)}"
            )
        knode, body = node.value[0]
        kind = knode.value if isinstance(knode, yaml.ScalarNode) else None
        if not isinstance(kind, str) or kind not in known:
            near = closest(str(kind), known) if kind is not None else None
            hint = f"did you mean {near!r}?" if near else f"one of {names(known)}"
            raise self.error(knode, f"unknown {what} kind {kind!r}", hint)
        return kind, body

    def fields(self, schema: Schema, body: yaml.Node) -> Fields:
        """A kind's body mapping: only the schema's keys, and every required one present."""
        f = self.mapping(body, schema.keys, schema.kind)
        for field in schema.fields:
            if field.required:
                self.require(f, body, field.name, schema.kind)
        return f

    def selector(self, node: yaml.Node) -> m.Selector:
        """``select:``: a named earlier selection, or filter / sample / ids / upns (+ name)."""
        line = self.line(node)
        if isinstance(node, yaml.ScalarNode) and node.tag == STR:
            if node.value not in self.selections:
                hint = (
                    f"known: {names(self.selections)}"
                    if self.selections
                    else "name one first: select: {sample: 5, name: edited}"
                )
                raise self.error(node, f"no selection named {node.value!r} before this line", hint)
            return m.Selector(line, ref=node.value)
        f = self.mapping(node, _SELECTOR, "select")
        kw: dict[str, Any] = {}
        if "filter" in f:
            fnode = f["filter"][1]
            text = self.scalar(fnode, "filter")
            try:
                compile_filter(text, RECIPIENT_PROPERTIES)
            except OpathError as e:
                hint = 'e.g. "IsExchangeCloudManaged -eq $true"'
                raise self.error(fnode, f"OPATH filter: {e}", hint) from None
            kw["filter"] = text
        if "sample" in f:
            snode = f["sample"][1]
            n = self.integer(snode, "sample", 1)
            if n > self.mailboxes:
                raise self.error(
                    snode,
                    f"sample {n:,} is more than the tenant's {self.mailboxes:,} mailboxes",
                    "lower the sample or raise tenant.mailboxes",
                )
            kw["sample"] = n
        for key in ("ids", "upns"):
            if key in f:
                items = self.sequence(f[key][1], key)
                if not items:
                    raise self.error(f[key][1], f"{key} is empty")
                kw[key] = tuple(self.scalar(i, f"each of {key}") for i in items)
        if not kw:
            raise self.error(node, "select picks nothing", "give filter, sample, ids or upns")
        if ("ids" in kw or "upns" in kw) and ("filter" in kw or "sample" in kw):
            raise self.error(node, "select takes ids/upns or filter/sample, not both")
        if "name" in f:
            nnode = f["name"][1]
            name = self.scalar(nnode, "selection name")
            if name in self.selections:
                raise self.error(
                    nnode, f"selection {name!r} is already defined on line {self.selections[name]}"
                )
            self.selections[name] = self.line(nnode)
            kw["name"] = name
        return m.Selector(line, **kw)

    def cycle_ref(self, node: yaml.Node) -> str:
        """A cycle named by an earlier cycle step, or ``last``."""
        name = self.scalar(node, "cycle")
        if name != "last" and name not in self.cycles:
            known = names(self.cycles) if self.cycles else "none yet: give a cycle step a name"
            raise self.error(
                node, f"no cycle named {name!r} before this line", f"'last' or one of: {known}"
            )
        return name

    def template(self, node: yaml.Node, what: str, side: str) -> Template:
        """A string with template fields; `side` "cloud" refuses {dn} (AD-only)."""
        if isinstance(node, yaml.ScalarNode) and node.tag != STR and not self.is_null(node):
            text = str(node.value)  # a number or Boolean written bare: its text, as PowerShell
        else:
            text = self.scalar(node, what)
        try:
            t = Template.parse(text)
        except TemplateError as e:
            raise self.error(node, f"{what}: {e}") from None
        if side == "cloud" and "dn" in t.fields:
            raise self.error(
                node, f"{what}: {{dn}} is only known on the AD side (ad_edit, ad, ldap_search)"
            )
        return t

    def templates(self, node: yaml.Node, what: str, side: str) -> list[Template]:
        """One template, or a list of them."""
        if isinstance(node, yaml.SequenceNode):
            return [self.template(i, f"each value of {what}", side) for i in node.value]
        return [self.template(node, what, side)]

    def ad_attribute(self, node: yaml.Node, writable: bool = False) -> str:
        """An attribute of the AD schema, by its canonical name."""
        name = self.scalar(node, "an AD attribute")
        attr = DEFAULT_SCHEMA.get(name)
        if attr is None:
            near = closest(name, [a.name for a in DEFAULT_SCHEMA])
            hint = f"did you mean {near!r}?" if near else "see harness/core/adschema.py"
            raise self.error(node, f"unknown AD attribute {name!r}", hint)
        if writable and attr.system_only:
            raise self.error(node, f"AD attribute {attr.name} is system-only and cannot be written")
        return attr.name

    def count(self, node: yaml.Node, what: str) -> m.Count:
        """A whole number, or {min: a, max: b}."""
        if isinstance(node, yaml.MappingNode):
            f = self.mapping(node, ("min", "max"), what)
            if not f:
                raise self.error(node, f"{what} needs min or max")
            low = self.integer(f["min"][1], f"{what}.min", 0) if "min" in f else None
            high = self.integer(f["max"][1], f"{what}.max", 0) if "max" in f else None
            return m.Count(minimum=low, maximum=high)
        return m.Count(exactly=self.integer(node, f"{what} (a count, or {{min, max}})", 0))

    def timestamp(self, node: yaml.Node, what: str) -> datetime:
        """An ISO 8601 time with a timezone (`2026-01-05T09:00:00Z`); YAML may read it as a
        timestamp, so the node's text is parsed here."""
        text = node.value if isinstance(node, yaml.ScalarNode) else None
        if not isinstance(text, str) or self.is_null(node):
            raise self.error(node, f"{what} must be an ISO 8601 time", "e.g. 2026-01-05T09:00:00Z")
        try:
            when = datetime.fromisoformat(text.replace("Z", "+00:00").replace(" ", "T", 1))
        except ValueError:
            raise self.error(
                node, f"{what} {text!r} is not an ISO 8601 time", "e.g. 2026-01-05T09:00:00Z"
            ) from None
        if when.tzinfo is None:
            raise self.error(node, f"{what} {text!r} has no timezone", "end it with Z (UTC)")
        return when

    def when(self, node: yaml.Node, what: str) -> m.When:
        """A time an expectation names: ISO 8601, relative to the clock (`+6h`, `+1d12h`,
        `+40m`) or null (nothing scheduled)."""
        if self.is_null(node):
            return m.When("null")
        if not self.simulated:
            raise self.error(
                node,
                f"{what} names a time, which only a simulated clock makes repeatable",
                "add clock: simulated at the top of the scenario",
            )
        text = node.value if isinstance(node, yaml.ScalarNode) else None
        if isinstance(text, str) and text.startswith("+"):
            match = _OFFSET.fullmatch(text)
            if match is None or not any(match.groups()):
                raise self.error(
                    node,
                    f"{what} {text!r} is not a relative time",
                    "+ then days, hours and minutes in that order, e.g. +6h, +1d12h, +40m",
                )
            d, h, mins = (int(g or 0) for g in match.groups())
            return m.When(text, offset=timedelta(days=d, hours=h, minutes=mins))
        at = self.timestamp(node, what)
        return m.When(clock.iso(at), at=at)

    def span(self, node: yaml.Node, what: str) -> tuple[timedelta, str]:
        """`{days: d, hours: h, minutes: m}` (any of them, at least one above 0) and its text."""
        f = self.mapping(node, SPAN_UNITS, what)
        if not f:
            raise self.error(node, f"{what} needs days, hours or minutes", "e.g. {hours: 6}")
        amounts = {unit: self.integer(f[unit][1], f"{what}.{unit}", 0) for unit in f}
        span = timedelta(**amounts)
        if span <= timedelta(0):
            raise self.error(node, f"{what} is zero", "e.g. {minutes: 20}")
        text = " ".join(
            f"{amounts[u]} {u if amounts[u] != 1 else u[:-1]}" for u in SPAN_UNITS if u in amounts
        )
        return span, text

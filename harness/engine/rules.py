"""Attribute-mapping profiles: which AD values the writeback wants for one cloud mailbox.

A profile is a list of mappings AD target <- EXO source property (or expression). The built-in
`GA` profile is the documented 24-attribute set, `PREVIEW` the 23 of the preview (no `mail`).
Custom profiles are YAML files layered on one of them:

    based_on: ga            # or preview
    name: contoso           # optional, defaults to the file stem
    match: objectGUID       # optional: how a cloud object finds its AD user (anchor.py)
    mappings:
      - {target: extensionAttribute1, expression: 'ToUpper([CustomAttribute1])'}
      - {target: msExchHideFromAddressLists, source: HiddenFromAddressListsEnabled}
    remove: [mail]

Mappings outside the documented set are allowed but marked ``documented=False``. `PROFILE_KEYS`
describes each key; the docs' table of them is made from it.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Mapping as RecordMap
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from harness.core.adschema import DEFAULT_SCHEMA, AttributeType, Syntax
from harness.core.yamlnodes import NodeReader, names
from harness.engine.anchor import DEFAULT_MATCH, MatchRule
from harness.engine.expressions import CompiledExpression, ExpressionError, compile_expression
from harness.engine.ldapwire import Values
from harness.tenant.recipients import REMOTE_AD_VALUES
from harness.tenant.writeback import GA_ATTRIBUTES, PREVIEW_ATTRIBUTES

GA_MAILBOX_LIMIT = 600_000
PREVIEW_MAILBOX_LIMIT = 200_000  # an assumption of this harness: no source documents a cap


class ProfileError(ValueError):
    """A custom profile that cannot be loaded; the message starts with ``file:line``."""


class MappingError(ValueError):
    """A record whose values cannot be mapped onto a target (the message names the target)."""


def _type_details(v: Any) -> str | None:
    return None if v is None else str(_remote(v).type_details)


def _display_type(v: Any) -> str | None:
    return None if v is None else str(_remote(v).display_type)


def _remote(v: Any) -> Any:
    try:
        return REMOTE_AD_VALUES[v]
    except (KeyError, TypeError):
        raise MappingError(f"no remote AD values for RecipientTypeDetails {v!r}") from None


# Derived targets: the AD value is a function of the source, not a copy of it.
_DERIVED: dict[str, Callable[[Any], str | None]] = {
    "msExchRecipientTypeDetails": _type_details,
    "msExchRecipientDisplayType": _display_type,
}


@dataclass(frozen=True, slots=True)
class Mapping:
    """One AD target and where its value comes from (an EXO property or an expression)."""

    target: str
    source: str | None
    expression: CompiledExpression | None = None
    documented: bool = True
    derive: Callable[[Any], str | None] | None = field(default=None, compare=False)

    def values(self, record: RecordMap[str, Any]) -> Values:
        """The AD values this mapping wants for ``record``; () means the attribute is absent."""
        if self.expression is not None:
            raw: Any = self.expression(record)
        else:
            raw = record.get(self.source) if self.source is not None else None
            if self.derive is not None:
                try:
                    raw = self.derive(raw)
                except MappingError as e:
                    raise MappingError(f"{self.target}: {e}") from None
        attr = _attribute(self.target)
        if raw.__class__ is str:  # the common case, as `_text` would render it
            return (raw,) if raw else ()
        if isinstance(raw, list | tuple):
            if attr.single:
                raise MappingError(f"{self.target} is single-valued but its source gave a list")
            syntax = attr.syntax
            return tuple(
                [v if v.__class__ is str else _text(v, syntax) for v in raw if v not in ("", None)]
            )
        if raw is None or raw == "":
            return ()  # EXO shows a cleared custom attribute as "": AD holds no value then
        return (_text(raw, attr.syntax),)


@cache
def _attribute(target: str) -> AttributeType:
    try:
        return DEFAULT_SCHEMA.require(target)
    except ValueError as e:
        raise MappingError(str(e)) from None


def _text(v: Any, syntax: Syntax) -> str:
    if isinstance(v, bool):
        # AD's Boolean syntax wants TRUE/FALSE; elsewhere keep the service's rendering.
        return ("TRUE" if v else "FALSE") if syntax is Syntax.BOOLEAN else str(v)
    return str(v)


@dataclass(frozen=True, slots=True)
class Profile:
    """A named set of mappings, the mailbox count the configuration supports and the rule
    that matches a cloud object to its AD user."""

    name: str
    mappings: tuple[Mapping, ...]
    mailbox_limit: int
    match: MatchRule = DEFAULT_MATCH
    # (target, source, mapping) per mapping; source only where a string value is copied as is
    _steps: tuple[tuple[str, str | None, Mapping], ...] = field(
        init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        object.__setattr__(self, "_steps", tuple((m.target, _copied(m), m) for m in self.mappings))

    @property
    def targets(self) -> tuple[str, ...]:
        return tuple(m.target for m in self.mappings)

    @property
    def undocumented(self) -> tuple[Mapping, ...]:
        """Mappings outside the documented GA set, for reports to flag."""
        return tuple(m for m in self.mappings if not m.documented)

    def desired(self, record: RecordMap[str, Any]) -> dict[str, Values]:
        """The AD values wanted for one EXO-named record (as `CloudMailbox.to_json` gives)."""
        out: dict[str, Values] = {}
        get = record.get
        for target, source, m in self._steps:
            if source is not None:
                raw = get(source)
                if raw.__class__ is str:  # what `Mapping.values` gives, without the call
                    out[target] = (raw,) if raw else ()
                    continue
            out[target] = m.values(record)
        return out


def _copied(m: Mapping) -> str | None:
    """The source property of a mapping that copies it unchanged to a known target, or None."""
    if m.expression is not None or m.derive is not None or m.source is None:
        return None
    try:
        _attribute(m.target)
    except MappingError:
        return None  # `Mapping.values` reports it
    return m.source


def _builtin(name: str, attrs: dict[str, str], limit: int) -> Profile:
    return Profile(
        name,
        tuple(Mapping(t, s, None, True, _DERIVED.get(t)) for t, s in attrs.items()),
        limit,
    )


GA = _builtin("ga", GA_ATTRIBUTES, GA_MAILBOX_LIMIT)
PREVIEW = _builtin("preview", PREVIEW_ATTRIBUTES, PREVIEW_MAILBOX_LIMIT)
BUILTIN_PROFILES: dict[str, Profile] = {"ga": GA, "preview": PREVIEW}

# --- YAML custom profiles --------------------------------------------------------------------

# Every key of a profile file and what it means (the docs' table of profile keys).
PROFILE_KEYS: dict[str, str] = {
    "based_on": "`ga` or `preview` (required): the built-in profile the file changes",
    "name": "the profile's name in reports and the engine state (default: the file's stem); "
    "a new name restarts the job (a full round), as a changed configuration does",
    "match": "how a cloud object finds its AD user: "
    + ", ".join(f"`{r.value}`" for r in MatchRule)
    + f" (default `{DEFAULT_MATCH.value}`; Microsoft does not document the job's anchor)",
    "mappings": "a list of `{target, source}` or `{target, expression}`: a target of the base "
    "is replaced in place, a new one is added (and flagged when outside the documented set)",
    "remove": "targets of the base not to write",
}
_TOP_KEYS = frozenset(PROFILE_KEYS)
_MAPPING_KEYS = frozenset({"target", "source", "expression"})


class _Loader(NodeReader):
    def __init__(self, path: Path) -> None:
        super().__init__(path, ProfileError)

    def target(self, node: yaml.Node) -> str:
        name = self.scalar(node, "target")
        attr = DEFAULT_SCHEMA.get(name)
        if attr is None:
            raise self.error(node, f"unknown AD attribute {name!r}")
        if attr.system_only:
            raise self.error(node, f"AD attribute {name!r} is system-only and cannot be written")
        return attr.name

    def one_mapping(self, node: yaml.Node) -> tuple[yaml.Node, Mapping]:
        fields = self.mapping(node, _MAPPING_KEYS, "a mapping")
        if "target" not in fields:
            raise self.error(node, "mapping needs a target")
        if ("source" in fields) == ("expression" in fields):
            raise self.error(node, "mapping needs exactly one of source or expression")
        tnode = fields["target"][1]
        target = self.target(tnode)
        documented = target in GA_ATTRIBUTES
        if "source" in fields:
            source = self.scalar(fields["source"][1], "source")
            derive = _DERIVED.get(target) if GA_ATTRIBUTES.get(target) == source else None
            return tnode, Mapping(target, source, None, documented, derive)
        enode = fields["expression"][1]
        text = self.scalar(enode, "expression")
        try:
            compiled = compile_expression(text)
        except ExpressionError as e:
            raise self.error(enode, f"expression for {target}: {e}") from None
        return tnode, Mapping(target, None, compiled, documented)

    def load(self) -> Profile:
        root = self.compose(self.path.read_text(encoding="utf-8"))
        if root is None:
            raise ProfileError(f"{self.path}:1: empty profile")
        top = self.mapping(root, _TOP_KEYS, "the profile")
        if "based_on" not in top:
            raise self.error(root, "profile needs based_on: ga or preview")
        bnode = top["based_on"][1]
        base = BUILTIN_PROFILES.get(self.scalar(bnode, "based_on"))
        if base is None:
            raise self.error(bnode, f"based_on must be one of {names(BUILTIN_PROFILES)}")
        name = self.scalar(top["name"][1], "name") if "name" in top else self.path.stem
        match = self.match(top["match"][1]) if "match" in top else DEFAULT_MATCH
        by_target = {m.target: m for m in base.mappings}
        if "remove" in top:
            for node in self.sequence(top["remove"][1], "remove"):
                t = self.target(node)
                if t not in by_target:
                    raise self.error(node, f"cannot remove {t!r}: not mapped by {base.name}")
                del by_target[t]
        seen: set[str] = set()
        for node in self.sequence(top["mappings"][1], "mappings") if "mappings" in top else []:
            tnode, m = self.one_mapping(node)
            if m.target in seen:
                raise self.error(tnode, f"{m.target} is mapped twice")
            seen.add(m.target)
            by_target[m.target] = m  # replaces the base mapping, keeping its position
        if any(t.casefold() == match.attribute.casefold() for t in by_target):
            node = top["match"][1] if "match" in top else root
            raise self.error(
                node, f"match: {match.attribute} is a mapping target: the anchor is not written"
            )
        return Profile(name, tuple(by_target.values()), base.mailbox_limit, match)

    def match(self, node: yaml.Node) -> MatchRule:
        text = self.scalar(node, "match")
        rule = MatchRule.parse(text)
        if rule is None:
            choices = ", ".join(r.value for r in MatchRule)
            raise self.error(node, f"match: {text!r} is not a match rule (one of {choices})")
        return rule


def load_profile(path: Path) -> Profile:
    """Read a custom YAML profile; raises ProfileError naming ``file:line`` of the fault."""
    return _Loader(Path(path)).load()


def profile_keys_markdown() -> str:
    """The keys of a profile file, as a Markdown table (docs/engine.md)."""
    rows = [f"| `{k}` | {text} |" for k, text in PROFILE_KEYS.items()]
    return "\n".join(["| key | meaning |", "|---|---|", *rows])

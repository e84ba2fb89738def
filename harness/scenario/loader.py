"""YAML scenario files -> `Scenario`, validated before anything runs.

Every problem is one `ScenarioError` reading ``file:line: message (hint: ...)``: unknown keys,
wrong types, unknown step or expectation kinds, unknown AD attributes or Set-Mailbox parameters,
bad selectors, OPATH and LDAP filters that do not parse, sizes the tenant cannot satisfy,
references to selections or cycles not defined earlier. The format is documented in the
README ("Scenarios: exwb run").
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from harness.core.yamlnodes import STR, Fields, closest, names
from harness.engine.forward import DEFAULT_BUILD, parse_build
from harness.engine.rules import BUILTIN_PROFILES, Profile, ProfileError, load_profile
from harness.scenario import model as m
from harness.scenario.load_expectations import ExpectationReader
from harness.scenario.reader import ScenarioError
from harness.scenario.templates import Template
from harness.tenant.spec import SpecError, TenantSpec
from mockservers.faults import CLEAR_ALL, SERVERS, FaultError, FaultSpec
from mockservers.faults import KINDS as FAULT_KINDS

_TOP = ("name", "description", "tenant", "engine", "steps", "thresholds")
_ENGINE = ("profile", "mass_change_threshold", "allow_mass_change", "quarantine_min_failures")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_TRIGGER = ("on", "after", "count", "every", "seconds", "retry_after", "name")
_FAULT = ("server", "kind", *_TRIGGER, "clear")  # the keys of a fault step
# Set-Mailbox parameters a scenario may set, with how their values bind (mockservers/cloud/exo.py
# accepts exactly these; tests/scenario checks the two lists agree).
SET_MAILBOX: dict[str, str] = {
    **{f"CustomAttribute{i}": "text" for i in range(1, 16)},
    **{f"ExtensionCustomAttribute{i}": "multi" for i in range(1, 6)},
    "EmailAddresses": "multi",
    "WindowsEmailAddress": "text",
    "HiddenFromAddressListsEnabled": "flag",
    "Type": "type",
    "IsExchangeCloudManaged": "flag",
}
MAILBOX_TYPES = ("Regular", "Shared", "Room", "Equipment")


def load_scenario(path: Path) -> m.Scenario:
    """Read and validate one scenario file; raises ScenarioError."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ScenarioError(f"{path}:1: cannot read the scenario: {e.strerror}") from None
    except UnicodeDecodeError:
        raise ScenarioError(f"{path}:1: the scenario is not UTF-8 text") from None
    return _Loader(path).load(text)


class _Loader(ExpectationReader):
    # --- the document ---

    def load(self, text: str) -> m.Scenario:
        root = self.compose(text)
        if root is None:
            raise ScenarioError(
                f"{self.path}:1: empty scenario (hint: see scenarios/quickstart.yaml)"
            )
        top = self.mapping(root, _TOP, "the scenario")
        name_node = self.require(top, root, "name", "the scenario")
        name = self.scalar(name_node, "name")
        if not _NAME.fullmatch(name):
            raise self.error(
                name_node,
                f"name {name!r} cannot name a results folder",
                "letters, digits, '.', '_' and '-', at most 64",
            )
        description = (
            self.scalar(top["description"][1], "description") if "description" in top else ""
        )
        spec, keys = self.tenant(top["tenant"][1] if "tenant" in top else None)
        self.mailboxes = spec.mailboxes + spec.cloud_only_users
        engine = self.engine(top["engine"][1] if "engine" in top else None)
        steps_node = self.require(top, root, "steps", "the scenario")
        items = self.sequence(steps_node, "steps")
        if not items:
            raise self.error(
                steps_node, "steps is empty", "add at least one step, e.g. '- cycle: delta'"
            )
        steps = tuple(self.step(i, node) for i, node in enumerate(items, 1))
        thresholds = self.thresholds(top["thresholds"][1]) if "thresholds" in top else ()
        return m.Scenario(name, self.path, description, spec, keys, engine, steps, thresholds)

    def tenant(self, node: yaml.Node | None) -> tuple[TenantSpec, tuple[str, ...]]:
        if node is None:
            return TenantSpec(), ()
        knobs = TenantSpec.knob_names()
        fields_ = self.mapping(node, knobs, "tenant")
        try:
            spec = TenantSpec.from_mapping({k: self.data(v) for k, (_, v) in fields_.items()})
        except SpecError as e:
            at = fields_[e.knob][1] if e.knob in fields_ else node
            raise self.error(
                at, f"tenant.{e.knob}: {e.message}", "see exwb generate --list-knobs"
            ) from None
        return spec, tuple(fields_)

    def engine(self, node: yaml.Node | None) -> m.EngineSettings:
        if node is None:
            return m.EngineSettings(BUILTIN_PROFILES["ga"])
        f = self.mapping(node, _ENGINE, "engine")
        profile = self.profile(f["profile"][1]) if "profile" in f else BUILTIN_PROFILES["ga"]
        threshold: int | None = 500
        if "mass_change_threshold" in f:
            v = f["mass_change_threshold"][1]
            threshold = None if self.is_null(v) else self.integer(v, "mass_change_threshold", 0)
        allow = (
            self.boolean(f["allow_mass_change"][1], "allow_mass_change")
            if "allow_mass_change" in f
            else False
        )
        qmin = None
        if "quarantine_min_failures" in f:
            qmin = self.integer(f["quarantine_min_failures"][1], "quarantine_min_failures", 0)
        return m.EngineSettings(profile, threshold, allow, qmin)

    def profile(self, node: yaml.Node) -> Profile:
        name = self.scalar(node, "profile")
        if name in BUILTIN_PROFILES:
            return BUILTIN_PROFILES[name]
        path = (self.path.parent / name) if not Path(name).is_absolute() else Path(name)
        if not path.is_file():
            raise self.error(
                node,
                f"profile {name!r} is neither built in nor a file ({path} not found)",
                f"{names(BUILTIN_PROFILES)}, or a YAML profile path relative to the scenario",
            )
        try:
            return load_profile(path)
        except ProfileError as e:
            raise ScenarioError(str(e)) from None  # the fault is in the profile: its file:line

    def thresholds(self, node: yaml.Node) -> tuple[m.Threshold, ...]:
        out = []
        for key, (knode, vnode) in self.mapping(node, m.THRESHOLDS, "thresholds").items():
            f = self.mapping(vnode, ("min", "max", "cycle"), f"threshold {key}")
            if "min" not in f and "max" not in f:
                raise self.error(vnode, f"threshold {key} needs min or max", "e.g. {max: 30}")
            cycle = None
            if "cycle" in f:
                cnode = f["cycle"][1]
                if key not in m.PER_CYCLE:
                    raise self.error(
                        cnode, f"{key} is not measured per cycle: cycle does not apply"
                    )
                cycle = self.cycle_ref(cnode)
            for bound in ("min", "max"):
                if bound in f:
                    limit = self.number(f[bound][1], f"{key}.{bound}")
                    out.append(m.Threshold(self.line(knode), key, bound, limit, cycle))
        return tuple(out)

    # --- steps ---

    def step(self, index: int, node: yaml.Node) -> m.Step:
        kind, body = self.one_key(node, m.STEPS, "a step")
        line = self.line(node)
        if kind == "edit":
            return self.edit(index, line, body)
        if kind == "set_cloud_managed":
            f = self.mapping(body, ("select", "value", "expect_error"), "set_cloud_managed")
            select = self.selector(self.require(f, body, "select", "set_cloud_managed"))
            value = self.boolean(self.require(f, body, "value", "set_cloud_managed"), "value")
            return m.SetCloudManaged(index, line, select, value, self.refusal(f, str))
        if kind == "ad_edit":
            return self.ad_edit(index, line, body)
        if kind == "cycle":
            return self.cycle(index, line, body)
        if kind == "forward":
            return self.forward(index, line, body)
        if kind == "fault":
            return self.fault(index, line, body)
        if kind == "decommission":
            return self.decommission(index, line, body)
        items = self.sequence(body, "expect")
        if not items:
            raise self.error(body, "expect is empty", "list expectations, e.g. '- converged: true'")
        return m.Expect(index, line, tuple(self.expectation(e) for e in items))

    def edit(self, index: int, line: int, body: yaml.Node) -> m.Edit:
        f = self.mapping(body, ("select", "set", "expect_error"), "edit")
        select = self.selector(self.require(f, body, "select", "edit"))
        set_node = self.require(f, body, "set", "edit")
        params: dict[str, Any] = {}
        canonical = {p.casefold(): p for p in SET_MAILBOX}
        for key, (knode, vnode) in self.mapping(set_node, None, "set").items():
            name = canonical.get(key.casefold())
            if name is None:
                near = closest(key, SET_MAILBOX)
                hint = f"did you mean {near!r}?" if near else "see the README's Set-Mailbox row"
                if key.casefold() == "identity":
                    hint = "the selection gives each mailbox's Identity"
                raise self.error(
                    knode, f"Set-Mailbox has no parameter {key!r} a scenario can set", hint
                )
            if name in params:
                raise self.error(knode, f"parameter {name} is set twice")
            params[name] = self.parameter(name, vnode)
        if not params:
            raise self.error(set_node, "set is empty", "e.g. {CustomAttribute1: 'x {index}'}")
        return m.Edit(index, line, select, params, self.refusal(f, str))

    def parameter(self, name: str, node: yaml.Node) -> Any:
        kind = SET_MAILBOX[name]
        if kind == "flag":
            return self.boolean(node, name)
        if kind == "type":
            value = self.scalar(node, name)
            match = next((t for t in MAILBOX_TYPES if t.casefold() == value.casefold()), None)
            if match is None:
                raise self.error(
                    node,
                    f"Type {value!r} is not a mailbox type",
                    f"one of {', '.join(MAILBOX_TYPES)}",
                )
            return match
        if self.is_null(node):
            return None
        if kind == "text":
            return self.template(node, name, side="cloud")
        if isinstance(node, yaml.MappingNode):
            out: dict[str, list[Template]] = {}
            for key, (knode, vnode) in self.mapping(node, None, name).items():
                op = {"add": "Add", "remove": "Remove"}.get(key.casefold())
                if op is None:
                    raise self.error(
                        knode,
                        f"{name} takes Add and Remove, not {key!r}",
                        "e.g. {Add: [a], Remove: [b]}",
                    )
                out[op] = self.templates(vnode, f"{name}.{op}", side="cloud")
            return out
        return self.templates(node, name, side="cloud")

    def ad_edit(self, index: int, line: int, body: yaml.Node) -> m.AdEdit:
        f = self.mapping(body, ("select", *m.LDAP_OPS, "bind", "expect_error"), "ad_edit")
        select = self.selector(self.require(f, body, "select", "ad_edit"))
        changes = []
        for op, (_, opnode) in f.items():
            if op not in m.LDAP_OPS:
                continue
            for knode, vnode in self.mapping(opnode, None, op).values():
                attr = self.ad_attribute(knode, writable=True)
                values = (
                    () if self.is_null(vnode) else tuple(self.templates(vnode, attr, side="ad"))
                )
                if op == "add" and not values:
                    raise self.error(vnode, f"add {attr} needs at least one value")
                changes.append((op, attr, values))
        if not changes:
            raise self.error(body, "ad_edit changes nothing", "give replace, add or delete")
        bind = "admin"
        if "bind" in f:
            bind = self.scalar(f["bind"][1], "bind")
            if bind not in m.BIND_ACCOUNTS:
                raise self.error(
                    f["bind"][1],
                    f"unknown account {bind!r}",
                    f"one of {', '.join(m.BIND_ACCOUNTS)}",
                )
        return m.AdEdit(index, line, select, tuple(changes), bind, self.refusal(f, int))

    def cycle(self, index: int, line: int, body: yaml.Node) -> m.Cycle:
        self.any_cycle = True
        if isinstance(body, yaml.ScalarNode):
            return m.Cycle(index, line, self.mode(body))
        f = self.mapping(
            body, ("mode", "name", "select", "mass_change_threshold", "allow_mass_change"), "cycle"
        )
        mode = self.mode(f["mode"][1]) if "mode" in f else "delta"
        name = None
        if "name" in f:
            name = self.scalar(f["name"][1], "cycle name")
            if name in self.cycles or name == "last":
                raise self.error(
                    f["name"][1],
                    f"cycle name {name!r} is already used",
                    "cycle names must be unique; 'last' is reserved",
                )
            self.cycles[name] = self.line(f["name"][1])
        select = None
        if mode == "on-demand":
            select = self.selector(self.require(f, body, "select", "an on-demand cycle"))
        elif "select" in f:
            raise self.error(
                f["select"][1],
                f"a {mode} cycle takes no selection",
                "only mode: on-demand provisions a selection",
            )
        threshold = None
        if "mass_change_threshold" in f:
            threshold = self.integer(f["mass_change_threshold"][1], "mass_change_threshold", 0)
        allow = None
        if "allow_mass_change" in f:
            allow = self.boolean(f["allow_mass_change"][1], "allow_mass_change")
        return m.Cycle(index, line, mode, name, select, threshold, allow)

    def mode(self, node: yaml.Node) -> str:
        mode = self.scalar(node, "cycle mode")
        if mode not in m.CYCLE_MODES:
            raise self.error(
                node, f"unknown cycle mode {mode!r}", f"one of {', '.join(m.CYCLE_MODES)}"
            )
        return mode

    def forward(self, index: int, line: int, body: yaml.Node) -> m.Forward:
        self.any_forward = True
        if self.is_null(body):
            return m.Forward(index, line, DEFAULT_BUILD)
        node = body
        if isinstance(body, yaml.MappingNode):
            f = self.mapping(body, ("connect_build",), "forward")
            if "connect_build" not in f:
                return m.Forward(index, line, DEFAULT_BUILD)
            node = f["connect_build"][1]
        build = self.scalar(node, "connect_build")
        try:
            parse_build(build)
        except ValueError as e:
            raise self.error(node, str(e), "quote it: connect_build: '2.5.76.0'") from None
        return m.Forward(index, line, build.strip())

    def decommission(self, index: int, line: int, body: yaml.Node) -> m.Decommission:
        self.any_decommission = True
        if self.is_null(body):
            return m.Decommission(index, line)
        f = self.mapping(body, ("action", "path", "only"), "decommission")
        values: dict[str, str] = {}
        for key, allowed in (("action", m.DECOMMISSION_ACTIONS), ("path", m.DECOMMISSION_PATHS)):
            if key in f:
                node = f[key][1]
                value = self.scalar(node, key)
                if value not in allowed:
                    raise self.error(node, f"unknown {key} {value!r}", f"one of {names(allowed)}")
                values[key] = value
        only = None
        if "only" in f:
            node = f["only"][1]
            only = self.scalar(node, "only")
            if values.get("action") != "execute":
                raise self.error(node, "only goes with action: execute", "add action: execute")
            from harness.decommission.steps import step_ids

            if only not in step_ids():
                near = closest(only, step_ids())
                hint = f"did you mean {near!r}?" if near else f"one of {names(step_ids())}"
                raise self.error(node, f"no decommission step {only!r}", hint)
        return m.Decommission(index, line, only=only, **values)

    def fault(self, index: int, line: int, body: yaml.Node) -> m.Fault:
        if isinstance(body, yaml.MappingNode):
            for knode, _ in body.value:
                # YAML 1.1 reads a bare `on` key as the Boolean true; here it is the word.
                if isinstance(knode, yaml.ScalarNode) and knode.value in ("on", "On", "ON"):
                    knode.tag = STR
        f = self.mapping(body, _FAULT, "fault")
        if "clear" in f:
            extra = next((k for k in f if k != "clear"), None)
            if extra is not None:
                raise self.error(
                    f[extra][0],
                    f"a fault step that clears takes nothing else, not {extra!r}",
                    "arm and clear in separate steps",
                )
            node = f["clear"][1]
            what = self.scalar(node, "clear")
            if what not in (CLEAR_ALL, *SERVERS) and what not in self.faults:
                known = f"; armed so far: {names(self.faults)}" if self.faults else ""
                raise self.error(
                    node,
                    f"no fault named {what!r} armed before this line",
                    f"all, ldap, http or a fault's name{known}",
                )
            return m.Fault(index, line, clear=what)
        server = self.scalar(self.require(f, body, "server", "fault"), "server")
        kind = self.scalar(self.require(f, body, "kind", "fault"), "kind")
        options: dict[str, Any] = {}
        if "on" in f:
            options["on"] = self.scalar(f["on"][1], "on")
        for key in ("after", "every"):
            if key in f:
                options[key] = self.integer(f[key][1], key, 0 if key == "after" else 1)
        if "count" in f:
            node = f["count"][1]
            if isinstance(node, yaml.ScalarNode) and node.value == "unlimited":
                options["count"] = None
            else:
                options["count"] = self.integer(node, "count (a number, or unlimited)", 1)
        if "seconds" in f:
            options["seconds"] = self.number(f["seconds"][1], "seconds")
        if "retry_after" in f:
            options["retry_after"] = self.integer(f["retry_after"][1], "retry_after", 0)
        if "name" in f:
            name = self.scalar(f["name"][1], "fault name")
            if name in self.faults:
                raise self.error(
                    f["name"][1],
                    f"fault {name!r} is already armed on line {self.faults[name]}",
                    "fault names are unique in a scenario",
                )
            options["name"] = name
        try:
            spec = FaultSpec(server, kind, **options).checked()
        except FaultError as e:
            at = f[e.key][1] if e.key in f else body
            hint = e.hint or None
            elsewhere = any(kind in kinds for kinds in FAULT_KINDS.values())
            if e.key == "kind" and server in SERVERS and not elsewhere:
                near = closest(kind, FAULT_KINDS[server])
                hint = f"did you mean {near!r}?" if near else hint
            raise self.error(at, e.message, hint) from None
        if spec.name is not None:
            self.faults[spec.name] = self.line(f["name"][1])
        self.any_fault = True
        return m.Fault(index, line, spec=spec)

    def refusal(self, f: Fields, kind: type) -> m.Refusal | None:
        if "expect_error" not in f:
            return None
        node = f["expect_error"][1]
        if kind is int:
            return m.Refusal(
                self.line(node), self.integer(node, "expect_error (an LDAP result code)", 1, 127)
            )
        return m.Refusal(
            self.line(node), self.scalar(node, "expect_error (an Exchange error code)")
        )

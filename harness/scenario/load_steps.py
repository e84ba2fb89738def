"""The steps of a scenario file, read from YAML and validated (see `StepReader`).

Each parser takes its kind's `Schema` from `harness.scenario.registry`, which declares the keys;
the ``expect:`` step's entries are read by `ExpectationReader`.
"""

from __future__ import annotations

from typing import Any

import yaml

from harness.core.yamlnodes import STR, Fields, closest, names
from harness.engine.forward import DEFAULT_BUILD, parse_build
from harness.engine.state import parse_reset_scope
from harness.scenario import model as m
from harness.scenario.load_expectations import ExpectationReader
from harness.scenario.reader import Schema
from harness.scenario.templates import Template
from mockservers.faults import CLEAR_ALL, SERVERS, FaultError, FaultSpec
from mockservers.faults import KINDS as FAULT_KINDS

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


class StepReader(ExpectationReader):
    """Parsers of the step kinds: ``(schema, index, line, body) -> Step``."""

    def edit(self, schema: Schema, index: int, line: int, body: yaml.Node) -> m.Edit:
        f = self.fields(schema, body)
        select = self.selector(f["select"][1])
        set_node = f["set"][1]
        params: dict[str, Any] = {}
        canonical = {p.casefold(): p for p in SET_MAILBOX}
        for key, (knode, vnode) in self.mapping(set_node, None, "set").items():
            name = canonical.get(key.casefold())
            if name is None:
                near = closest(key, SET_MAILBOX)
                hint = f"did you mean {near!r}?" if near else f"one of {names(SET_MAILBOX)}"
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

    def set_cloud_managed(
        self, schema: Schema, index: int, line: int, body: yaml.Node
    ) -> m.SetCloudManaged:
        f = self.fields(schema, body)
        select = self.selector(f["select"][1])
        value = self.boolean(f["value"][1], "value")
        return m.SetCloudManaged(index, line, select, value, self.refusal(f, str))

    def ad_edit(self, schema: Schema, index: int, line: int, body: yaml.Node) -> m.AdEdit:
        f = self.fields(schema, body)
        select = self.selector(f["select"][1])
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

    def cycle(self, schema: Schema, index: int, line: int, body: yaml.Node) -> m.Cycle:
        self.any_cycle = True
        if isinstance(body, yaml.ScalarNode):
            return m.Cycle(index, line, self.mode(body))
        f = self.fields(schema, body)
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

    def forward(self, schema: Schema, index: int, line: int, body: yaml.Node) -> m.Forward:
        self.any_forward = True
        if self.is_null(body):
            return m.Forward(index, line, DEFAULT_BUILD)
        node = body
        if isinstance(body, yaml.MappingNode):
            f = self.fields(schema, body)
            if "connect_build" not in f:
                return m.Forward(index, line, DEFAULT_BUILD)
            node = f["connect_build"][1]
        build = self.scalar(node, "connect_build")
        try:
            parse_build(build)
        except ValueError as e:
            raise self.error(node, str(e), "quote it: connect_build: '2.5.76.0'") from None
        return m.Forward(index, line, build.strip())

    def decommission(
        self, schema: Schema, index: int, line: int, body: yaml.Node
    ) -> m.Decommission:
        self.any_decommission = True
        if self.is_null(body):
            return m.Decommission(index, line)
        f = self.fields(schema, body)
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

    def fault(self, schema: Schema, index: int, line: int, body: yaml.Node) -> m.Fault:
        if isinstance(body, yaml.MappingNode):
            for knode, _ in body.value:
                # YAML 1.1 reads a bare `on` key as the Boolean true; here it is the word.
                if isinstance(knode, yaml.ScalarNode) and knode.value in ("on", "On", "ON"):
                    knode.tag = STR
        f = self.fields(schema, body)
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

    def ad_move(self, schema: Schema, index: int, line: int, body: yaml.Node) -> m.AdMove:
        f = self.fields(schema, body)
        select = self.selector(f["select"][1])
        to = self.template(f["to"][1], "to", side="ad")
        return m.AdMove(index, line, select, to)

    def wait(self, schema: Schema, index: int, line: int, body: yaml.Node) -> m.Wait:
        span, text = self.span(body, "wait")
        if not self.simulated:
            raise self.error(
                body,
                "wait needs a simulated clock (on the wall clock it would really wait)",
                "add clock: simulated at the top of the scenario",
            )
        self.any_wait = True
        return m.Wait(index, line, span, text)

    def job_control(self, schema: Schema, index: int, line: int, body: yaml.Node) -> m.JobControl:
        if isinstance(body, yaml.ScalarNode) and body.tag == STR:
            action = body.value
            if action not in m.JOB_ACTIONS:
                near = closest(action, m.JOB_ACTIONS)
                hint = f"did you mean {near!r}?" if near else f"one of {names(m.JOB_ACTIONS)}"
                raise self.error(body, f"unknown job action {action!r}", hint)
            return m.JobControl(index, line, action)
        f = self.fields(schema, body)
        if len(f) != 1:
            raise self.error(
                body,
                "a job step does one thing",
                "pause, start, restart: SCOPES, stale_credentials: WHICH or "
                "update_credentials: WHICH",
            )
        ((key, (_, vnode)),) = f.items()
        if key == "restart":
            scope = "" if self.is_null(vnode) else self.scalar(vnode, "restart (a resetScope)")
            try:
                parse_reset_scope(scope)
            except ValueError as e:
                raise self.error(
                    vnode, str(e), 'comma-separated, e.g. "Escrows, Watermark"'
                ) from None
            return m.JobControl(index, line, "restart", scope.strip())
        if key in ("pause", "start"):
            if not self.is_null(vnode) and not self.boolean(vnode, key):
                raise self.error(vnode, f"{key}: false does nothing", "remove the step")
            return m.JobControl(index, line, key)
        which = self.scalar(vnode, key)
        if which not in m.CREDENTIALS:
            raise self.error(
                vnode, f"{key}: unknown credential {which!r}", f"one of {names(m.CREDENTIALS)}"
            )
        if key == "stale_credentials":
            return m.JobControl(index, line, stale=which)
        return m.JobControl(index, line, update=which)

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

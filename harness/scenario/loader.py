"""YAML scenario files -> `Scenario`, validated before anything runs.

Every problem is one `ScenarioError` reading ``file:line: message (hint: ...)``: unknown keys,
wrong types, unknown step or expectation kinds, unknown AD attributes or Set-Mailbox parameters,
bad selectors, OPATH and LDAP filters that do not parse, sizes the tenant cannot satisfy,
references to selections or cycles not defined earlier. The step and expectation kinds, their
keys and their parsers are declared in `harness.scenario.registry`.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from harness.core.yamlnodes import names
from harness.engine.cycle import MASS_CHANGE_THRESHOLD
from harness.engine.rules import BUILTIN_PROFILES, Profile, ProfileError, load_profile
from harness.scenario import model as m
from harness.scenario import registry
from harness.scenario.load_steps import StepReader
from harness.scenario.reader import ScenarioError
from harness.tenant.spec import SpecError, TenantSpec

_TOP = ("name", "description", "tenant", "engine", "steps", "thresholds")
_ENGINE = ("profile", "mass_change_threshold", "allow_mass_change", "quarantine_min_failures")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


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


class _Loader(StepReader):
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
        steps = tuple(registry.load_step(self, i, node) for i, node in enumerate(items, 1))
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
        threshold: int | None = MASS_CHANGE_THRESHOLD
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

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

from harness.core.dn import parse_dn
from harness.core.yamlnodes import names
from harness.engine.rules import BUILTIN_PROFILES, Profile, ProfileError, load_profile
from harness.scenario import model as m
from harness.scenario import registry
from harness.scenario.load_steps import StepReader
from harness.scenario.reader import ScenarioError
from harness.tenant.files import CLOUD_NAME
from harness.tenant.spec import MAX_MAILBOXES, SpecError, TenantSpec
from mockservers.runtime import TenantFolderError, read_tenant_manifest

_TOP = ("name", "description", "clock", "tenant", "engine", "steps", "thresholds")
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
        tenant_node = top["tenant"][1] if "tenant" in top else None
        folder, from_node = self.tenant_folder(tenant_node)
        if folder is None or from_node is None:
            spec, keys = self.tenant(tenant_node)
            self.mailboxes = spec.mailboxes + spec.cloud_only_users
        else:
            spec, keys = self.folder_spec(folder, from_node), ()
        engine = self.engine(top["engine"][1] if "engine" in top else None)
        clock_settings = self.clock(top["clock"][1]) if "clock" in top else m.ClockSettings()
        self.simulated = clock_settings.simulated
        steps_node = self.require(top, root, "steps", "the scenario")
        items = self.sequence(steps_node, "steps")
        if not items:
            raise self.error(
                steps_node, "steps is empty", "add at least one step, e.g. '- cycle: delta'"
            )
        steps = tuple(registry.load_step(self, i, node) for i, node in enumerate(items, 1))
        thresholds = self.thresholds(top["thresholds"][1]) if "thresholds" in top else ()
        return m.Scenario(
            name, self.path, description, spec, keys, engine, steps, thresholds, folder,
            clock_settings,
        )  # fmt: skip

    def clock(self, node: yaml.Node) -> m.ClockSettings:
        """`clock: wall|simulated` or `{kind: simulated, start: ISO 8601}`."""
        hint = (
            f"one of {', '.join(m.CLOCK_KINDS)}, or {{kind: simulated, start: 2026-01-05T09:00Z}}"
        )
        if isinstance(node, yaml.ScalarNode):
            kind = self.scalar(node, "clock")
            if kind not in m.CLOCK_KINDS:
                raise self.error(node, f"unknown clock {kind!r}", hint)
            return m.ClockSettings(kind)
        f = self.mapping(node, ("kind", "start"), "clock")
        kind = self.scalar(self.require(f, node, "kind", "clock"), "clock.kind")
        if kind not in m.CLOCK_KINDS:
            raise self.error(f["kind"][1], f"unknown clock {kind!r}", hint)
        start = None
        if "start" in f:
            if kind != "simulated":
                raise self.error(f["start"][0], "only a simulated clock has a start")
            start = self.timestamp(f["start"][1], "clock.start")
        return m.ClockSettings(kind, start)

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

    def tenant_folder(self, node: yaml.Node | None) -> tuple[Path | None, yaml.Node | None]:
        """``tenant: {from: DIR}``: a tenant folder (relative to the scenario) served as it is,
        and the node naming it; (None, None) when the tenant is generated. Knobs beside
        ``from`` are refused."""
        if not isinstance(node, yaml.MappingNode):
            return None, None
        fields_ = self.mapping(node, ("from", *TenantSpec.knob_names()), "tenant")
        if "from" not in fields_:
            return None, None
        knob = next((k for k in fields_ if k != "from"), None)
        if knob is not None:
            raise self.error(
                fields_[knob][0],
                f"tenant.from and tenant.{knob} are exclusive: a tenant folder is served as it is",
                "drop the knobs, or drop from to generate a tenant",
            )
        vnode = fields_["from"][1]
        text = self.scalar(vnode, "tenant.from")
        folder = Path(text) if Path(text).is_absolute() else self.path.parent / text
        try:
            read_tenant_manifest(folder)
        except TenantFolderError as e:
            raise self.error(vnode, f"tenant.from: {e}") from None
        if not (folder / CLOUD_NAME).is_file():
            raise self.error(vnode, f"tenant.from: {folder / CLOUD_NAME}: no such file")
        return folder, vnode

    def folder_spec(self, folder: Path, node: yaml.Node) -> TenantSpec:
        """What the steps need to know of a served folder: its recipients (the bound of a
        sample), its primary domain (``{domain}``) and, when generated, its whole spec."""
        manifest = read_tenant_manifest(folder)
        counts = manifest.get("counts")
        count = counts.get("cloud_recipients") if isinstance(counts, dict) else None
        if not isinstance(count, int):
            with (folder / CLOUD_NAME).open("rb") as f:
                count = sum(1 for line in f if line.strip())
        self.mailboxes = count
        if isinstance(manifest.get("spec"), dict) and manifest.get("source") != "import":
            data = manifest["spec"]
        else:
            domains = manifest.get("domains")
            primary = domains.get("primary") if isinstance(domains, dict) else None
            if isinstance(primary, str):
                domain = primary
            else:  # read_tenant_manifest checked base_dn is a DN
                domain = ".".join(v for rdn in parse_dn(manifest["base_dn"]) for _, v in rdn)
            data = {"domain": domain, "mailboxes": min(max(count, 1), MAX_MAILBOXES)}
        try:
            return TenantSpec.from_mapping(data)
        except SpecError as e:
            raise self.error(
                node, f"tenant.from: {folder / 'tenant.json'}: {e.knob}: {e.message}"
            ) from None

    def engine(self, node: yaml.Node | None) -> m.EngineSettings:
        if node is None:
            return m.EngineSettings(BUILTIN_PROFILES["ga"])
        f = self.mapping(node, _ENGINE, "engine")
        profile = self.profile(f["profile"][1]) if "profile" in f else BUILTIN_PROFILES["ga"]
        threshold: int | None = None  # the guard is a harness extension: off unless set
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

"""Every scenario step kind and expectation kind, declared once.

An entry names the kind's model class (whose `kind` is its YAML key), the keys its body takes
(`Field`: type, required or default, one line of doc), its parser, its runner or check, and a
description. The loader (`load_step`, `load_expectation`), the runner (`run_step`, `check`) and
the docs tables (`steps_markdown`, `expectations_markdown`) all read these tables, so a new kind
is one entry here plus its model, parser and runner.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import yaml

from harness.engine.forward import DEFAULT_BUILD
from harness.scenario import expectations, steps
from harness.scenario import model as m
from harness.scenario.expectations import Result
from harness.scenario.load_steps import StepReader
from harness.scenario.reader import Field, Schema
from harness.scenario.steps import Outcome
from harness.scenario.templates import TemplateError
from harness.scenario.world import StepError, World
from mockservers.faults import KINDS as FAULT_KINDS
from mockservers.faults import OPERATIONS, SERVERS

StepLoad = Callable[[StepReader, Schema, int, int, yaml.Node], m.Step]
StepRun = Callable[[World, Any], Outcome]
ExpectationLoad = Callable[[StepReader, Schema, int, yaml.Node], m.Expectation]
Check = Callable[[World, m.Expect, Any], Result]


class _Kind:
    """What step and expectation entries share: the name comes from the model class."""

    __slots__ = ()
    model: type[m.Step] | type[m.Expectation]
    fields: tuple[Field, ...]

    @property
    def name(self) -> str:
        return self.model.kind

    @property
    def schema(self) -> Schema:
        return Schema(self.name, self.fields)


@dataclass(frozen=True, slots=True)
class StepKind(_Kind):
    model: type[m.Step]
    fields: tuple[Field, ...]
    load: StepLoad
    run: StepRun | None  # None for expect: its work is its expectations' checks (the runner's)
    description: str
    shorthand: str = ""  # other forms the body may take, for the docs


@dataclass(frozen=True, slots=True)
class ExpectationKind(_Kind):
    model: type[m.Expectation]
    fields: tuple[Field, ...]  # `name` included (every expectation takes it)
    load: ExpectationLoad
    check: Check
    description: str
    shorthand: str = ""


# --- the fields steps and expectations share ----------------------------------------------------

_SELECT = Field(
    "select",
    "selection",
    "the mailboxes: `{filter, sample, ids, upns, name}` or the name of an earlier selection",
    required=True,
)
_SELECT_OPTIONAL = replace(_SELECT, required=False)
_CYCLE = Field("cycle", "cycle name", "`last` or the name of an earlier cycle step", default="last")


_EXCHANGE_REFUSAL = Field(
    "expect_error",
    "Exchange error code",
    "every mailbox must be refused with it (e.g. `TaskInvalidOperationException`), "
    "recorded as an expectation",
)


def _load_expect(
    reader: StepReader, schema: Schema, index: int, line: int, body: yaml.Node
) -> m.Expect:
    """The expect step's parser: here, because its entries are parsed by their own kinds."""
    items = reader.sequence(body, schema.kind)
    if not items:
        raise reader.error(body, "expect is empty", "list expectations, e.g. '- converged: true'")
    return m.Expect(index, line, tuple(load_expectation(reader, e) for e in items))


# --- steps ---------------------------------------------------------------------------------------

_STEP_KINDS = (
    StepKind(
        m.Edit,
        (
            _SELECT,
            Field(
                "set",
                "Set-Mailbox parameters",
                "parameter names in any case: a text, a list (replaces a multi-valued one), "
                "`{Add: [...], Remove: [...]}` (edits it) or `null` (clears)",
                required=True,
            ),
            _EXCHANGE_REFUSAL,
        ),
        StepReader.edit,
        steps.edit,
        "Set-Mailbox on each selected mailbox through the EXO admin API, as the read-write app",
    ),
    StepKind(
        m.SetCloudManaged,
        (
            _SELECT,
            Field("value", "true/false", "the IsExchangeCloudManaged value to set", required=True),
            _EXCHANGE_REFUSAL,
        ),
        StepReader.set_cloud_managed,
        steps.set_cloud_managed,
        "Set-Mailbox -IsExchangeCloudManaged on each selected mailbox",
    ),
    StepKind(
        m.AdEdit,
        (
            _SELECT,
            *(
                Field(
                    op,
                    "{attribute: value or [values]}",
                    f"LDAP {op} of these AD attributes"
                    + ("; `null` or `[]` deletes every value" if op == "delete" else ""),
                )
                for op in m.LDAP_OPS
            ),
            Field("bind", "account", f"one of {', '.join(m.BIND_ACCOUNTS)}", default="admin"),
            Field(
                "expect_error",
                "LDAP result code",
                "every AD user must be refused with it (e.g. 50 for the writeback account outside "
                "its rights), recorded as an expectation",
            ),
        ),
        StepReader.ad_edit,
        steps.ad_edit,
        "one LDAP modify per selected AD user, bound as an on-premises account",
    ),
    StepKind(
        m.Cycle,
        (
            Field("mode", "cycle mode", f"one of {', '.join(m.CYCLE_MODES)}", default="delta"),
            Field("name", "text", "names the cycle for `log`, `error_codes` and thresholds"),
            Field("select", "selection", "the mailboxes to provision (mode `on-demand` only)"),
            Field(
                "mass_change_threshold",
                "whole number",
                "this cycle's mass-change guard (unset: the engine setting)",
            ),
            Field(
                "allow_mass_change",
                "true/false",
                "let this cycle past the guard (unset: the engine setting)",
            ),
        ),
        StepReader.cycle,
        steps.cycle,
        "one writeback cycle, or provision on demand of each selected mailbox",
        shorthand="`- cycle: delta` is short for `{mode: delta}`",
    ),
    StepKind(
        m.Forward,
        (
            Field(
                "connect_build",
                "version text",
                "the Entra Connect build to model (quote it); a build that reverts cloud edits "
                "puts a warning saying so in the report",
                default=DEFAULT_BUILD,
            ),
        ),
        StepReader.forward,
        steps.forward,
        "one Entra Connect forward-sync cycle, AD to the cloud (`exwb forward`)",
        shorthand="`- forward:` (the default build) or `- forward: '2.5.76.0'`",
    ),
    StepKind(
        m.Decommission,
        (
            Field("action", "text", f"one of {', '.join(m.DECOMMISSION_ACTIONS)}", default="plan"),
            Field(
                "path", "text", f"one of {', '.join(m.DECOMMISSION_PATHS)}", default="soa-uninstall"
            ),
            Field("only", "decommission step", "execute only this step (action `execute` only)"),
        ),
        StepReader.decommission,
        steps.decommission,
        "plan or execute the decommission of the last Exchange Server (`exwb decommission`), "
        "journaled in the scenario's engine state; blocked or refused is an outcome to check",
        shorthand="`- decommission:` plans the soa-uninstall path",
    ),
    StepKind(
        m.Fault,
        (
            Field("server", "text", f"one of {', '.join(SERVERS)}"),
            Field(
                "kind",
                "fault kind",
                "; ".join(f"{s}: {', '.join(k)}" for s, k in FAULT_KINDS.items()),
            ),
            Field(
                "on",
                "operation",
                "; ".join(f"{s}: {', '.join(ops)}" for s, ops in OPERATIONS.items()),
                default="any",
            ),
            Field("after", "whole number", "matching requests let through first", default="0"),
            Field("count", "whole number or unlimited", "how many to hit", default="1"),
            Field("every", "whole number", "hit every N-th matching request", default="1"),
            Field("seconds", "number", "the delay of a `slow` fault"),
            Field("retry_after", "whole number", "the Retry-After of an HTTP fault", default="1"),
            Field("name", "text", "names the fault, for `clear`"),
            Field(
                "clear",
                "text",
                "disarm instead: `all`, `ldap`, `http` or a fault's name (nothing else given)",
            ),
        ),
        StepReader.fault,
        steps.fault,
        "arm a fault both fake servers obey from their next request, or clear faults; `server` "
        "and `kind` are required unless clearing",
    ),
    StepKind(
        m.AdMove,
        (
            _SELECT,
            Field(
                "to",
                "DN template",
                "the new parent: an OU or container (e.g. `CN=Users,DC=contoso,DC=com`); "
                "outside the OUs delegated to the writeback account its writes are refused (50)",
                required=True,
            ),
        ),
        StepReader.ad_move,
        steps.ad_move,
        "move each selected AD user under another parent (LDAP modify DN, as the admin); the "
        "user keeps its anchor, so the engine still finds it",
    ),
    StepKind(
        m.Wait,
        tuple(
            Field(u, "whole number", f"{u} of simulated time") for u in ("days", "hours", "minutes")
        ),
        StepReader.wait,
        steps.wait,
        "let simulated time pass (needs `clock: simulated`): the job runs every cycle that "
        "falls due on its schedule (every 20 minutes; in quarantine the back-off; nothing "
        "while paused), each at its own time; the outcome lists how many ran and their results",
        shorthand="any of the three together, e.g. `{days: 1, hours: 12}`",
    ),
    StepKind(
        m.JobControl,
        (
            Field("pause", "true", "pause the job (Graph's `pause`): the schedule runs nothing"),
            Field("start", "true", "resume a paused job (Graph's `start`)"),
            Field(
                "restart",
                "resetScope",
                "Graph's `restart` with `criteria.resetScope`: comma-separated Escrows, "
                "Watermark, QuarantineState, Full, ForceDeletes, ConnectorDataStore; "
                "empty or `null` is the portal's restart (QuarantineState, Watermark, Escrows)",
            ),
            Field(
                "stale_credentials",
                "app or account",
                "the credential the job holds for the read-only app (its secret) or the "
                "writeback account (its password) is stale, as after a rotation the job was "
                "not told of (a model: the servers keep the secret, the job presents another)",
            ),
            Field(
                "update_credentials",
                "app or account",
                "the administrator gives the job the current credential",
            ),
        ),
        StepReader.job_control,
        steps.job_control,
        "operate the writeback job as a user does; one key per step",
        shorthand="`- job: pause`, `- job: start`, `- job: restart`, "
        '`- job: {restart: "Escrows, Watermark"}`',
    ),
    StepKind(
        m.Expect,
        (),
        _load_expect,
        None,
        "a list of expectations (below), checked in order; a failed one is recorded and the "
        "steps go on",
        shorthand="a list: `- expect: [converged: true]`",
    ),
)

STEPS: dict[str, StepKind] = {k.name: k for k in _STEP_KINDS}


# --- expectations --------------------------------------------------------------------------------

_NAME = Field("name", "text", "the expectation's name in reports (unset: made from its keys)")


def _values_fields(key: Field) -> tuple[Field, ...]:
    return (
        _SELECT,
        key,
        Field("value", "text", "exactly this one value (`null`: none)"),
        Field("values", "list of texts", "exactly these values, in any order"),
        Field("absent", "true", "no value at all"),
        Field("contains", "text or list", "these values among others"),
        Field("lacks", "text or list", "none of these values"),
    )


def _expectation(
    model: type[m.Expectation],
    fields: tuple[Field, ...],
    load: ExpectationLoad,
    check: Check,
    description: str,
    shorthand: str = "",
) -> ExpectationKind:
    return ExpectationKind(model, (*fields, _NAME), load, check, description, shorthand)


_TRUE = "`true` alone: no keys"
_NEXT_ATTEMPT = Field(
    "nextAttempt",
    "time",
    "ISO 8601 (`2026-01-05T15:00:00Z`), relative to the clock when checked (`+6h`, `+1d12h`, "
    "`+40m`), or `null` (nothing scheduled); needs `clock: simulated`",
)

_EXPECTATION_KINDS = (
    _expectation(
        m.Converged,
        (_SELECT_OPTIONAL,),
        StepReader.converged,
        expectations.converged,
        "AD equals Exchange Online on the profile's attributes: for each selected mailbox, or "
        "(`true`) `exwb verify`'s parity for every in-scope one",
        _TRUE,
    ),
    _expectation(
        m.ParityClean,
        (),
        StepReader.parity_clean,
        expectations.parity_clean,
        "`exwb verify` is clean: no mismatch, no in-scope mailbox without an AD user",
        _TRUE,
    ),
    _expectation(
        m.Values,
        _values_fields(Field("attribute", "AD attribute", "its name in the schema", required=True)),
        StepReader.values,
        expectations.ad,
        "the values of an AD attribute on each selected user, read over LDAP as the reader (text "
        "compared exactly; numbers and Booleans as AD compares them); give value, values, absent, "
        "contains or lacks",
    ),
    _expectation(
        m.CloudValues,
        _values_fields(
            Field("property", "Get-Mailbox property", "e.g. `CustomAttribute1`", required=True)
        ),
        StepReader.values,
        expectations.cloud,
        "the same for a property of each selected mailbox, read with Get-Recipient",
    ),
    _expectation(
        m.LdapSearch,
        (
            Field(
                "filter",
                "LDAP filter template",
                "RFC 4515 text (AD's bitwise matching rules too); template values are escaped",
                required=True,
            ),
            Field("base", "DN template", "the search base (unset: the domain's DN)"),
            Field("scope", "text", "base, one or sub", default="sub"),
            Field("entries", "count", "how many entries the search returns", required=True),
            Field(
                "select",
                "selection",
                "search once per selected mailbox; with `entries: 1` the entry must be its user",
            ),
        ),
        StepReader.ldap_search,
        expectations.ldap_search,
        "a search bound as the read-only reader, as a line-of-business app runs it",
    ),
    _expectation(
        m.LogCounts,
        (
            _CYCLE,
            Field("statuses", "counts", f"by status: {', '.join(m.LOG_STATUSES)}"),
            Field("actions", "counts", f"by action: {', '.join(m.LOG_ACTIONS)}"),
            Field("objects", "count", "entries in the log"),
        ),
        StepReader.log,
        expectations.log,
        "counts read from a cycle's provisioning log (needs a cycle step before it)",
    ),
    _expectation(
        m.ErrorCodes,
        (
            _CYCLE,
            Field("present", "list of LDAP codes", "codes the log must hold"),
            Field("absent", "list of LDAP codes", "codes the log must not hold"),
        ),
        StepReader.error_codes,
        expectations.error_codes,
        "LDAP result codes in a cycle's provisioning log",
    ),
    _expectation(
        m.OutOfScopeUntouched,
        (),
        StepReader.out_of_scope_untouched,
        expectations.out_of_scope_untouched,
        "every AD user outside the writeback scope (not cloud-managed at the start or the check, "
        "not flipped by a step, not edited by an `ad_edit`) has the uSNChanged and profile values "
        "it had when the scenario began",
        _TRUE,
    ),
    _expectation(
        m.JobState,
        (
            Field("state", "job state", ", ".join(m.JOB_STATES)),
            Field("reason", "text", "the quarantine reason, e.g. `MassChangeThresholdExceeded`"),
            Field("escrowed", "count", "objects held back for a retry"),
            _NEXT_ATTEMPT,
        ),
        StepReader.job,
        expectations.job,
        "the writeback job as `exwb status` shows it; `nextAttempt` is Graph's "
        "quarantine.nextAttempt in quarantine, otherwise the next scheduled cycle",
    ),
    _expectation(
        m.EscrowState,
        (
            replace(_SELECT, name="object"),
            Field("attempts", "count", "failed attempts so far (the first failure is 1)"),
            _NEXT_ATTEMPT,
            Field("absent", "true", "no escrow entry (it never failed, or a retry succeeded)"),
        ),
        StepReader.escrow,
        expectations.escrow,
        "each selected object's escrow entry: retried +6 h, +12 h and +24 h after its first "
        "failure, then every 24 h, dropped after 28 days (needs a cycle or wait before it)",
    ),
    _expectation(
        m.CyclesRan,
        (
            Field(
                "ran", "count", "scheduled cycles that ran (a refused one included)", required=True
            ),
            Field("failed", "count", "of them, cycles that could not run (refused credentials)"),
        ),
        StepReader.cycles_ran,
        expectations.cycles,
        "how many cycles the schedule ran during the last `wait` (needs a wait before it)",
        shorthand="`cycles: 18` is short for `{ran: 18}`",
    ),
    _expectation(
        m.ForwardCounts,
        tuple(Field(n, "count", f"objects {n}") for n in m.FORWARD_COUNTS),
        StepReader.forward_counts,
        expectations.forward_counts,
        "counts of the last forward-sync cycle (needs a forward step before it)",
    ),
    _expectation(
        m.FaultCounts,
        tuple(
            Field(s, "{kind: count}", f"{s} faults injected: {', '.join(FAULT_KINDS[s])}")
            for s in SERVERS
        ),
        StepReader.fault_counts,
        expectations.fault_counts,
        "faults injected so far, by server and kind (needs a fault step before it)",
    ),
    _expectation(
        m.DecommissionState,
        (
            Field("blocked", "true/false", "whether blockers stopped it"),
            Field("blockers", "list of codes", "exactly these blocker codes, in any order"),
            Field("server", "server state", ", ".join(m.SERVER_STATES)),
            Field("finished", "true/false", "whether every step is done"),
            Field("refused", "true/false", "whether execution was refused"),
            Field("leftovers", "count", "objects left behind"),
        ),
        StepReader.decommission_state,
        expectations.decommission_state,
        "the last decommission step's outcome (needs a decommission step before it)",
    ),
)

EXPECTATIONS: dict[str, ExpectationKind] = {k.name: k for k in _EXPECTATION_KINDS}


# --- what the loader and the runner call ---------------------------------------------------------


def load_step(reader: StepReader, index: int, node: yaml.Node) -> m.Step:
    """The step at `node` (``{kind: body}``), parsed by its kind's entry."""
    name, body = reader.one_key(node, STEPS, "a step")
    kind = STEPS[name]
    return kind.load(reader, kind.schema, index, reader.line(node), body)


def load_expectation(reader: StepReader, node: yaml.Node) -> m.Expectation:
    """One entry of an ``expect:`` list, parsed by its kind's entry."""
    name, body = reader.one_key(node, EXPECTATIONS, "expectation")
    kind = EXPECTATIONS[name]
    return kind.load(reader, kind.schema, reader.line(node), body)


def run_step(world: World, step: m.Step) -> Outcome:
    """Run an acting step (every kind but expect) with its kind's runner."""
    runner = STEPS[step.kind].run
    if runner is None:
        raise TypeError(f"{step.kind} steps are evaluated expectation by expectation (`check`)")
    return runner(world, step)


def check(world: World, step: m.Expect, e: m.Expectation) -> Result:
    """Evaluate one expectation; StepError means it could not be evaluated at all."""
    try:
        return EXPECTATIONS[e.kind].check(world, step, e)
    except TemplateError as err:
        raise StepError(str(err)) from None


# --- the docs tables -----------------------------------------------------------------------------


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _field(f: Field) -> str:
    if f.required:
        when = "required"
    elif f.default is not None:
        when = f"default `{f.default}`"
    else:
        when = "optional"
    return f"`{f.name}` ({f.type}, {when}): {f.doc}"


def _table(head: str, rows: list[tuple[str, tuple[Field, ...], str, str]]) -> str:
    lines = [f"| {head} | keys | what it does |", "|---|---|---|"]
    for name, fields, description, shorthand in rows:
        keys = "<br>".join([*(_field(f) for f in fields), *([shorthand] if shorthand else [])])
        lines.append(f"| `{name}` | {_cell(keys)} | {_cell(description)} |")
    return "\n".join(lines) + "\n"


def steps_markdown() -> str:
    """The step kinds as a Markdown table: kind, keys (type, required or default), description."""
    return _table("step", [(k.name, k.fields, k.description, k.shorthand) for k in STEPS.values()])


def expectations_markdown() -> str:
    """The expectation kinds as a Markdown table, like `steps_markdown`."""
    return _table(
        "expectation",
        [(k.name, k.fields, k.description, k.shorthand) for k in EXPECTATIONS.values()],
    )

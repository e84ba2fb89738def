"""What the fake AD implements, as Markdown for the docs site, read from the server's own tables.

Each section is generated from what the code dispatches on (`server.OPERATIONS`, `CONTROLS`,
`EXTENDED_OPERATIONS`, `filters.MATCHING_RULES`, `REFUSED_RULES`) and each refusal's code from
the constructor the server raises (`errors`), so the page cannot claim what the server does not
do. `support_matrix_markdown` is the docs build's hook.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable

from harness.core import aderrors
from harness.core.ldapresult import LdapError, Result
from mockservers.directory import errors
from mockservers.directory.domain import (
    CONFIG_WELL_KNOWN_GUIDS,
    WELL_KNOWN,
    WELL_KNOWN_GUIDS,
)
from mockservers.directory.filters import MATCHING_RULES, REFUSED_RULES
from mockservers.directory.notify import NOTIFICATION_OID
from mockservers.directory.sasl import SASL_MECHANISMS, SICILY_PACKAGES
from mockservers.directory.server import CONTROLS, EXTENDED_OPERATIONS, OPERATIONS


def support_matrix_markdown() -> str:
    """The LDAP support matrix of the fake AD: operations, controls, extended operations,
    matching rules and every error it answers with, as Markdown."""
    return "\n".join(
        [
            *_operations(),
            *_controls(),
            *_notifications(),
            *_extended(),
            *_matching_rules(),
            *_write_rules(),
            *_dn_forms(),
            *_domain_objects(),
            *_errors(),
        ]
    )


def _code(e: LdapError) -> str:
    return f"{e.code} ({Result(e.code).name})"


def _table(header: Iterable[str], rows: Iterable[Iterable[str]]) -> list[str]:
    head = list(header)
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return [*lines, ""]


def _cell(text: str) -> str:
    # A table row is one line, and a pipe would end its cell.
    return text.replace("\n", "\\n").replace("\t", "\\t").replace("|", "\\|")


def _operations() -> list[str]:
    rows = [
        (
            op.title,
            f"`0x{op.request_tag:02X}`",
            "no answer" if op.response_tag is None else f"`0x{op.response_tag:02X}`",
            f"`{op.name}`" if op.response_tag is not None else "",
        )
        for op in OPERATIONS
    ]
    return [
        "## Operations",
        "",
        *_table(("Operation", "Request tag", "Answer tag", "Fault-plan operation"), rows),
        "A bind of a protocol version other than 3 is answered with "
        f"{_code(errors.unsupported_version())}. "
        "Any other request ends the connection with a Notice of Disconnection, "
        f"{_code(errors.disconnect(''))}.",
        "",
        *_binds(),
    ]


def _binds() -> list[str]:
    rows = [(f"`{name}`", "SASL", what) for name, what in SASL_MECHANISMS.items()]
    rows.append((f"`{SICILY_PACKAGES}`", "Sicily (MS-ADTS 5.1.1.1.3)", "NTLMv2, no security layer"))
    return [
        "## Binds",
        "",
        "Simple binds, and these; the root DSE lists the SASL ones as supportedSASLMechanisms.",
        "",
        *_table(("Mechanism", "Bind", "Here"), rows),
        f"Any other SASL mechanism is answered with {_code(errors.sasl_not_supported())}; a "
        f"wrong password, an unknown account or an NTLMv1 response with "
        f"{_code(errors.invalid_credentials())}.",
        "",
    ]


def _controls() -> list[str]:
    rows = [
        (f"`{c.oid}`", c.title, ", ".join(f"`{n}`" for n in sorted(c.operations)))
        for c in CONTROLS.values()
    ]
    refused = errors.unsupported_critical_extension("")
    return [
        "## Controls",
        "",
        *_table(("OID", "Control", "Operations"), rows),
        "Any other control marked critical, or one on another operation, is answered with "
        f"{_code(refused)}; a non-critical one is ignored.",
        "",
    ]


def _notifications() -> list[str]:
    rows = [
        (what, _code(refusal))
        for what, refusal in (
            ("a filter other than the presence of objectClass, objectGUID, distinguishedName "
             "or name (or an AND of those, an OR with one)", errors.notify_filter_too_complex()),
            ("a sixth open one on the connection (MaxNotificationPerConn)",
             errors.too_many_notifications()),
            ("an anonymous client", errors.bind_required()),
            ("its reader too slow (`Limits.notification_backlog` bytes waiting): the "
             "connection ends with a Notice of Disconnection", errors.notification_backlog_full()),
        )
    ]  # fmt: skip
    return [
        "## Change notification",
        "",
        f"A search with `{NOTIFICATION_OID}` gets no answer; it sends an entry per change of an "
        "object in its scope, with the attributes it asked for, until it is abandoned, the "
        "client binds again or disconnects.",
        "",
        *_table(("Refused", "Result code"), rows),
    ]


def _extended() -> list[str]:
    rows = [(f"`{x.oid}`", x.title) for x in EXTENDED_OPERATIONS.values()]
    return [
        "## Extended operations",
        "",
        *_table(("Request OID", "Operation"), rows),
        f"Any other request OID is answered with {_code(errors.unknown_extended_operation(''))}.",
        "",
    ]


def _matching_rules() -> list[str]:
    rows = [(f"`{r.oid}`", f"`{r.name}`", "evaluated") for r in MATCHING_RULES.values()]
    unwilling = _code(errors.filter_unwilling())
    rows += [
        (f"`{oid}`", f"`{name}`", f"refused: {unwilling}") for oid, name in REFUSED_RULES.items()
    ]
    return [
        "## Extensible-match rules",
        "",
        *_table(("OID", "Rule", "Here"), rows),
        "An extensible match without a rule is an equality match. Any other rule is answered "
        f"with {_code(errors.inappropriate_matching(''))}; `dnAttributes`, or a rule without an "
        f"attribute type, with {unwilling}.",
        "",
    ]


def _write_rules() -> list[str]:
    rows = [
        (what, _code(refusal))
        for what, refusal in (
            ("an attribute none of the object's classes allows", errors.not_allowed_for_class("")),
            ("a mustContain attribute missing or removed", errors.missing_required("")),
            ("an objectClass value the schema lacks", errors.unknown_class("")),
            ("no structural class, or a changed one", errors.structural_class_change()),
            ("an RDN attribute other than the class's rDNAttID", errors.rdn_not_of_class("")),
            ("a parent outside the class's possSuperiors", errors.illegal_superior("")),
            ("a sAMAccountName another object holds", errors.account_name_exists()),
            ("a userPrincipalName another object holds", errors.upn_not_unique()),
            ("a DN value naming no object of the domain", errors.reference_missing("", "")),
        )
    ]
    return [
        "## Schema rules on add and modify",
        "",
        "Checked against the classes the subschema entry publishes (`structure.py`): "
        "must- and mayContain of the object's classes, their superclasses and auxiliary "
        "classes; rDNAttID; possSuperiors, inherited. A group added without groupType is a "
        "global security group, an account without sAMAccountName gets a generated one.",
        "",
        *_table(("Refused", "Result code"), rows),
    ]


def _dn_forms() -> list[str]:
    rows = [
        ("`<GUID=guid>`", "objectGUID: 32 hex digits or the dashed string"),
        ("`<SID=sid>`", "objectSid: the hex of the binary SID or `S-1-5-...`"),
        ("`<WKGUID=guid,dn>`", "the object `dn` lists under `guid` in wellKnownObjects, "
                               "else otherWellKnownObjects"),
        ("`<GUID=...>;<SID=...>;dn`", "the extended form: the GUID decides"),
    ]  # fmt: skip
    return [
        "## Alternative DN forms",
        "",
        "Accepted wherever a request takes a DN ([MS-ADTS] 3.1.1.3.1.2.4): the base, the "
        "object of a write, a new superior, a DN value. One that names no object is "
        f"{_code(errors.no_such_object(''))}; one that does not parse "
        f"{_code(errors.invalid_dn(''))}.",
        "",
        *_table(("Form", "Names the object by"), rows),
    ]


def _domain_objects() -> list[str]:
    wk = [
        (f"`{guid}`", f"`{rdns}`", f"{attr} of the {head}")
        for head, table in (
            ("domain", WELL_KNOWN_GUIDS),
            ("configuration", CONFIG_WELL_KNOWN_GUIDS),
        )
        for attr, guid, rdns in table
    ]
    builtin = sum(1 for w in WELL_KNOWN if w.builtin)
    accounts = sum(1 for w in WELL_KNOWN if not w.group_type)
    groups = len(WELL_KNOWN) - builtin - accounts
    return [
        "## The domain's fixed objects",
        "",
        f"Seeded as a Windows Server 2016 DC's promotion creates them (`domain.py`): {accounts} "
        f"well-known accounts and {groups} well-known groups in CN=Users with AD's RIDs, "
        f"{builtin} built-in groups in CN=Builtin, CN=System with AdminSDHolder and the two "
        "default GPOs, OU=Domain Controllers with the DC's account, the DC's server object "
        "and NTDS Settings. The well-known objects, listed where they exist:",
        "",
        *_table(("Well-known GUID", "Object", "Listed in"), wk),
    ]


def _errors() -> list[str]:
    """Every constructor of the catalogue, its code and its text with the arguments named."""
    rows = []
    for name, make in _constructors():
        params = inspect.signature(make).parameters
        e = make(**{p: "{" + p + "}" for p in params})
        if not isinstance(e, LdapError):  # a public helper of another kind in the catalogue
            raise TypeError(f"errors.{name} does not construct an LdapError")
        rows.append((f"`{name}`", _code(e), f"`{e.message}`" if e.message else ""))
    return [
        "## Errors",
        "",
        "Each error the fake answers with (`mockservers/directory/errors.py`), with AD's "
        "diagnosticMessage; `{...}` stands for the part that varies.",
        "",
        *_table(("Error", "Result code", "diagnosticMessage"), rows),
    ]


def _constructors() -> list[tuple[str, Callable[..., object]]]:
    found: list[tuple[str, Callable[..., object]]] = []
    for name, obj in vars(errors).items():
        # The catalogue's own constructors, and those it takes from core (the texts the engine's
        # preview predicts), which it answers with all the same.
        home = (errors.__name__, aderrors.__name__)
        if name.startswith("_") or not inspect.isfunction(obj) or obj.__module__ not in home:
            continue
        found.append((name, obj))
    return found

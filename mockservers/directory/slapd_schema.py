"""An OpenLDAP schema for the fake AD's attributes and classes, generated from DEFAULT_SCHEMA.

The output is the ``attributetype ( ... )`` / ``objectclass ( ... )`` text of a ``.schema`` file
for a slapd.conf ``include``. Together with OpenLDAP's core, cosine and inetorgperson schemas it
lets slapd load the generator's directory.ldif unchanged, which makes slapd a reference
directory for this project. (slapadd itself refuses the file's ``version: 1`` line, an
LDIF-reader limitation rather than a schema one; tests/support/slapd.py comments it out while
streaming the file.)

Attributes OpenLDAP already defines (cn, sn, mail, member, ...) are reused as they are; only AD
and Exchange attributes are defined here, with Microsoft's attributeID where it is known (from
OpenLDAP's own msuser.schema, MS-ADA/MS-ADSC and the Exchange SDK) and otherwise an OID under
`PRIVATE_ARC`. AD's system-only attributes (objectGUID, whenCreated, uSNChanged, ...) are plain
user attributes here so that slapadd and tests can set them.

One definition of core.schema has to change: RFC 4519's ``person`` requires ``sn``, AD's only
``cn``, and AD users without a surname (shared mailboxes, rooms) are common. `ad_core_schema`
rewrites that one class; `write_schema_files` writes the patched core next to this schema.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from harness.core.adschema import (
    CLASS_NAMES,
    DEFAULT_SCHEMA,
    AttributeType,
    Schema,
    Syntax,
)
from mockservers.directory.schema_ids import MS_ARC as _MS
from mockservers.directory.schema_ids import PRIVATE_ARC, attribute_oid, class_oid

SCHEMA_FILE_NAME: Final = "exwb-ad.schema"
CORE_FILE_NAME: Final = "core-ad.schema"
STANDARD_FILES: Final = ("cosine.schema", "inetorgperson.schema")
"""OpenLDAP schema files included after the patched core, in this order."""

SCHEMA_DIRS: Final = (
    Path("/etc/ldap/schema"),  # Debian, Ubuntu
    Path("/etc/openldap/schema"),  # RHEL, Fedora, SUSE, Alpine
    Path("/usr/local/etc/openldap/schema"),  # source builds, FreeBSD
    Path("/opt/homebrew/etc/openldap/schema"),
)

# Attributes (casefolded) that slapd itself or core/cosine/inetorgperson.schema define. Their
# OpenLDAP definitions win, because redefining a name slapd knows is an error; the differences
# from AD that follow (multi-valued cn, IA5 mail, printable serialNumber, ...) are accepted.
OPENLDAP_ATTRIBUTES: Final = frozenset(
    n.casefold()
    for n in (
        "objectClass", "distinguishedName", "name", "cn", "ou", "dc", "sn", "givenName",
        "initials", "displayName", "description", "title", "physicalDeliveryOfficeName",
        "telephoneNumber", "manager", "member", "mail", "serialNumber", "createTimestamp",
        "modifyTimestamp", "userPassword",
    )
)  # fmt: skip

# Object classes (casefolded) OpenLDAP defines. AD's dMD clashes by name with X.500's dmd
# (2.5.6.20, MUST dmdName) and cannot be redefined; AD's ``domain`` is abstract, cosine's is
# structural, which is what domainDNS needs.
OPENLDAP_CLASSES: Final = frozenset(
    n.casefold()
    for n in (
        "top", "person", "organizationalPerson", "inetOrgPerson", "organizationalUnit",
        "domain", "dMD", "subSchema",
    )
)  # fmt: skip

# Object classes: OID, superior, kind. The AD superclass is kept where it is known and defined
# here; Exchange configuration classes (OIDs not published) derive from container so that an
# entry may list ``container`` alongside them, as Exchange's own objects do. A class added to
# CLASS_NAMES later and missing here gets `default_class` (structural, SUP top, MUST cn).
# governsIDs are from MS-ADSC and OpenLDAP's msuser.schema, except those of configuration,
# attributeSchema and leaf, which could not be checked against a source here.
_PRIVATE = "private"


@dataclass(frozen=True, slots=True)
class ClassDef:
    """One object class to define for slapd."""

    name: str
    oid: str  # "private" -> derived under PRIVATE_ARC
    sup: str
    kind: str = "STRUCTURAL"  # or ABSTRACT / AUXILIARY
    must: tuple[str, ...] = ()
    may_all: bool = True  # MAY every non-operational attribute of the schema


CLASS_DEFS: Final = (
    ClassDef("user", f"{_MS}.5.9", "organizationalPerson"),
    ClassDef("computer", f"{_MS}.3.30", "user"),
    ClassDef("msDS-GroupManagedServiceAccount", f"{_MS}.5.282", "computer"),
    ClassDef("contact", f"{_MS}.5.15", "organizationalPerson"),
    ClassDef("group", f"{_MS}.5.8", "top", must=("cn",)),
    ClassDef("container", f"{_MS}.3.23", "top", must=("cn",)),
    ClassDef("domainDNS", f"{_MS}.5.67", "domain"),
    ClassDef("configuration", f"{_MS}.5.12", "top", must=("cn",)),
    ClassDef("classSchema", f"{_MS}.3.13", "top", must=("cn",)),
    ClassDef("attributeSchema", f"{_MS}.3.14", "top", must=("cn",)),
    ClassDef("queryPolicy", f"{_MS}.5.106", "top", must=("cn",)),
    ClassDef("leaf", f"{_MS}.5.20", "top", kind="ABSTRACT", may_all=False),
    ClassDef("connectionPoint", f"{_MS}.5.14", "leaf", kind="ABSTRACT", must=("cn",)),
    ClassDef("serviceConnectionPoint", f"{_MS}.5.126", "connectionPoint"),
    ClassDef("server", f"{_MS}.5.17", "top", must=("cn",)),
    ClassDef("groupPolicyContainer", f"{_MS}.5.157", "container"),
    ClassDef("trustedDomain", f"{_MS}.5.34", "leaf", must=("cn",)),
    ClassDef("applicationSettings", f"{_MS}.5.7000.49", "top", kind="ABSTRACT", may_all=False),
    ClassDef("nTDSDSA", f"{_MS}.5.7000.47", "applicationSettings", must=("cn",)),
    ClassDef("msExchContainer", _PRIVATE, "container"),
    ClassDef("msExchConfigurationContainer", _PRIVATE, "container"),
    ClassDef("msExchOrganizationContainer", _PRIVATE, "container"),
    ClassDef("msExchAdminGroupContainer", _PRIVATE, "container"),
    ClassDef("msExchAdminGroup", _PRIVATE, "container"),
    ClassDef("msExchServersContainer", _PRIVATE, "container"),
    ClassDef("msExchMDBContainer", _PRIVATE, "container"),
    ClassDef("msExchExchangeServer", _PRIVATE, "server"),
    ClassDef("msExchPrivateMDB", _PRIVATE, "top", must=("cn",)),
    ClassDef("msExchCoexistenceRelationship", _PRIVATE, "top", must=("cn",)),
    ClassDef("msExchHybridConfiguration", _PRIVATE, "container"),
    ClassDef("msExchRoutingGroupContainer", _PRIVATE, "container"),
    ClassDef("msExchRoutingGroup", _PRIVATE, "container"),
    ClassDef("msExchConnectors", _PRIVATE, "container"),
    ClassDef("msExchFedOrgId", _PRIVATE, "container"),  # holds the organisation relationships
    ClassDef("msExchAuthAuthConfig", _PRIVATE, "container"),  # holds servers and partner apps
)

_SYNTAX_OID: Final = {
    Syntax.STRING: "1.3.6.1.4.1.1466.115.121.1.15",  # Directory String
    Syntax.DN: "1.3.6.1.4.1.1466.115.121.1.12",
    Syntax.OID: "1.3.6.1.4.1.1466.115.121.1.38",
    Syntax.BOOLEAN: "1.3.6.1.4.1.1466.115.121.1.7",
    Syntax.INTEGER: "1.3.6.1.4.1.1466.115.121.1.27",
    Syntax.LARGE_INTEGER: "1.3.6.1.4.1.1466.115.121.1.27",
    Syntax.OCTETS: "1.3.6.1.4.1.1466.115.121.1.40",
    Syntax.TIME: "1.3.6.1.4.1.1466.115.121.1.24",
}
# (EQUALITY, ORDERING, SUBSTR) per syntax; None where OpenLDAP has no rule or AD has none.
_RULES: Final = {
    Syntax.STRING: ("caseIgnoreMatch", "caseIgnoreOrderingMatch", "caseIgnoreSubstringsMatch"),
    Syntax.DN: ("distinguishedNameMatch", None, None),
    Syntax.OID: ("objectIdentifierMatch", None, None),
    Syntax.BOOLEAN: ("booleanMatch", None, None),
    Syntax.INTEGER: ("integerMatch", "integerOrderingMatch", None),
    Syntax.LARGE_INTEGER: ("integerMatch", "integerOrderingMatch", None),
    Syntax.OCTETS: ("octetStringMatch", "octetStringOrderingMatch", None),
    Syntax.TIME: ("generalizedTimeMatch", "generalizedTimeOrderingMatch", None),
}

_PERSON_RE = re.compile(
    r"^objectclass\s*\(\s*2\.5\.6\.6\s+NAME\s+'person'.*?\)\s*\)[ \t]*$",
    re.IGNORECASE | re.MULTILINE | re.DOTALL,
)
_AD_PERSON = """\
# exwb-harness: AD's person requires only cn; RFC 4519's also requires sn.
objectclass ( 2.5.6.6 NAME 'person'
	DESC 'RFC2256: a person (sn optional, as in Active Directory)'
	SUP top STRUCTURAL
	MUST cn
	MAY ( sn $ userPassword $ telephoneNumber $ seeAlso $ description ) )"""


class SchemaGenerationError(RuntimeError):
    """The OpenLDAP schema cannot be produced (missing or unexpected system schema files)."""


def _quote(text: str) -> str:
    # qdstring escapes per RFC 4512: \27 for a quote, \5C for a backslash.
    return text.replace("\\", "\\5C").replace("'", "\\27")


def attributetype_text(attr: AttributeType) -> str:
    """One ``attributetype ( ... )`` definition for an AD attribute."""
    equality, ordering, substr = _RULES[attr.syntax]
    notes = [f"AD syntax {attr.syntax.value}"]
    if attr.system_only:
        notes.append("system-only in AD, user-writable here")
    if attr.range_upper is not None:
        notes.append(f"rangeUpper {attr.range_upper} (not enforced by slapd)")
    lines = [
        f"attributetype ( {attribute_oid(attr)} NAME '{attr.name}'",
        f"\tDESC '{_quote('; '.join(notes))}'",
        f"\tEQUALITY {equality}",
    ]
    if ordering:
        lines.append(f"\tORDERING {ordering}")
    if substr:
        lines.append(f"\tSUBSTR {substr}")
    bound = f"{{{attr.range_upper}}}" if attr.range_upper is not None else ""
    lines.append(f"\tSYNTAX {_SYNTAX_OID[attr.syntax]}{bound}")
    if attr.single:
        lines.append("\tSINGLE-VALUE")
    lines[-1] += " )"
    return "\n".join(lines)


def _oid_list(names: Iterable[str]) -> str:
    names = list(names)
    if len(names) == 1:
        return names[0]
    body = " $ ".join(names)
    return f"( {body} )"


def _wrapped_list(names: list[str], indent: str = "\t\t") -> str:
    """A ``( a $ b $ ... )`` list folded into lines slapd's parser accepts."""
    if len(names) == 1:
        return names[0]
    out, line = [], ""
    for n in names:
        piece = f"{n} $ "
        if line and len(line) + len(piece) > 80:
            out.append(line.rstrip())
            line = ""
        line += piece
    out.append(line.removesuffix(" $ "))
    return "( " + f"\n{indent}".join(out) + " )"


def objectclass_text(cls: ClassDef, may: list[str]) -> str:
    """One ``objectclass ( ... )`` definition."""
    oid = class_oid(cls.name) if cls.oid == _PRIVATE else cls.oid
    lines = [f"objectclass ( {oid} NAME '{cls.name}'", f"\tSUP {cls.sup} {cls.kind}"]
    if cls.must:
        lines.append(f"\tMUST {_oid_list(cls.must)}")
    if cls.may_all and may:
        lines.append(f"\tMAY {_wrapped_list(may)}")
    lines[-1] += " )"
    return "\n".join(lines)


def default_class(name: str) -> ClassDef:
    """The definition used for a CLASS_NAMES entry this module does not describe."""
    return ClassDef(name, _PRIVATE, "top", must=("cn",))


def class_defs() -> list[ClassDef]:
    """Every class to define: CLASS_DEFS, then defaults for the other classes the fake knows."""
    known = OPENLDAP_CLASSES | {d.name.casefold() for d in CLASS_DEFS}
    return [*CLASS_DEFS, *(default_class(c) for c in CLASS_NAMES if c.casefold() not in known)]


_DEFINED_RE = re.compile(
    r"^attributetype\s*\(\s*\S+\s+NAME\s+(?:'([^']+)'|\(([^)]*)\))",
    re.IGNORECASE | re.MULTILINE,
)


def defined_attribute_names(schema_text: str) -> set[str]:
    """Casefolded names of the attributes an OpenLDAP .schema text defines (comments skipped)."""
    names: set[str] = set()
    for m in _DEFINED_RE.finditer(schema_text):
        if m.group(1):
            names.add(m.group(1).casefold())
        else:
            names.update(n.casefold() for n in re.findall(r"'([^']+)'", m.group(2)))
    return names


def ad_attributes(
    schema: Schema = DEFAULT_SCHEMA, also_defined: Iterable[str] = ()
) -> list[AttributeType]:
    """The attributes this schema defines: those OpenLDAP does not already know."""
    known = OPENLDAP_ATTRIBUTES | {n.casefold() for n in also_defined}
    return [a for a in schema if a.name.casefold() not in known]


def slapd_schema(schema: Schema = DEFAULT_SCHEMA, also_defined: Iterable[str] = ()) -> str:
    """The ``.schema`` text for `schema`, to include after core-ad, cosine and inetorgperson.

    `also_defined` names further attributes the included OpenLDAP files define, which are
    then reused rather than redefined.
    """
    may = [a.name for a in schema if not a.operational and a.name.casefold() != "objectclass"]
    parts = [
        "# exwb-harness: AD and Exchange attributes for OpenLDAP slapd.",
        "# Generated by mockservers/directory/slapd_schema.py from DEFAULT_SCHEMA; do not edit.",
        "# Include after core-ad.schema (core.schema with AD's person), cosine.schema and",
        "# inetorgperson.schema.",
        f"# Private OIDs: {PRIVATE_ARC} (a UUID OID, ITU-T X.667).",
        "",
    ]
    parts += [attributetype_text(a) + "\n" for a in ad_attributes(schema, also_defined)]
    parts += [objectclass_text(c, may) + "\n" for c in class_defs()]
    return "\n".join(parts)


def ad_core_schema(core_text: str) -> str:
    """OpenLDAP's core.schema text with ``person`` relaxed to AD's definition (MUST cn)."""
    patched, n = _PERSON_RE.subn(_AD_PERSON, core_text)
    if n != 1:
        raise SchemaGenerationError(f"expected one 'person' class in core.schema, found {n}")
    return patched


def system_schema_dir() -> Path:
    """The directory holding OpenLDAP's core.schema, or SchemaGenerationError."""
    for d in SCHEMA_DIRS:
        if (d / "core.schema").is_file():
            return d
    raise SchemaGenerationError(
        "OpenLDAP's core.schema not found in " + ", ".join(str(d) for d in SCHEMA_DIRS)
    )


def write_schema_files(
    dest: Path, system_dir: Path | None = None, schema: Schema = DEFAULT_SCHEMA
) -> list[Path]:
    """Write core-ad.schema and exwb-ad.schema into `dest`; return the files to include in order."""
    system_dir = system_dir or system_schema_dir()
    try:
        core = (system_dir / "core.schema").read_text(encoding="utf-8")
    except OSError as e:
        raise SchemaGenerationError(f"cannot read {system_dir / 'core.schema'}: {e}") from None
    standard = [system_dir / name for name in STANDARD_FILES]
    defined = defined_attribute_names(core)
    for p in standard:
        try:
            defined |= defined_attribute_names(p.read_text(encoding="utf-8"))
        except OSError as e:
            raise SchemaGenerationError(f"cannot read OpenLDAP schema file {p}: {e}") from None
    dest.mkdir(parents=True, exist_ok=True)
    core_path = dest / CORE_FILE_NAME
    core_path.write_text(ad_core_schema(core), encoding="utf-8")
    ours = dest / SCHEMA_FILE_NAME
    ours.write_text(slapd_schema(schema, defined), encoding="utf-8")
    return [core_path, *standard, ours]

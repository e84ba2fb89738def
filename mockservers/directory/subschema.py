"""The fake AD's subschema entry, ``CN=Aggregate,CN=Schema,CN=Configuration,<base>``.

AD publishes its schema there in RFC 4512's description form ([MS-ADTS] 3.1.1.3.1.1.4): the
rootDSE's subschemaSubentry names it, and clients read it before anything else. ldap3's default
``Server(get_info=SCHEMA)`` uses it to turn values into Python types by attribute OID and
syntax (objectGUID to a GUID string, objectSid to ``S-1-5-21-...``, whenCreated to a datetime,
userAccountControl to an int, pwdLastSet to a datetime); without it an application gets raw bytes
and text against the fake and typed values against AD. python-ldap's ``ldap.schema`` reads the
same entry.

What is published comes from the fake's own tables, so it cannot claim what the fake does not
hold: one ``attributeTypes`` value per attribute of the store's schema (AD's LDAP syntax OID for
its attributeSyntax, [MS-ADTS] 3.1.1.2.2.2; SINGLE-VALUE; NO-USER-MODIFICATION for system-only
attributes), one ``objectClasses`` value per class (AD's classes from Microsoft's schema files,
`ad_classes`; Exchange's configuration classes as the slapd and Samba schemas define them), and
a ``dITContentRules`` value naming each structural class's auxiliary classes, as AD writes it.
The attributes Exchange's schema adds are listed as mayContain of ``mailRecipient`` (Exchange
spreads them over several auxiliary classes of its own; the set a user may hold is the same).
Lists of attributes hold only those the fake knows, so AD's ``top`` here must contain objectClass
and objectCategory, not also instanceType and nTSecurityDescriptor.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from harness.core.adschema import Schema, Syntax
from mockservers.directory.ad_classes import (
    AD_ATTRIBUTE_IDS,
    AD_CLASSES,
    LDAP_SYNTAXES,
    AdAttribute,
    AdClass,
    all_ad,
)
from mockservers.directory.samba_schema import OM_SYNTAX
from mockservers.directory.schema_ids import attribute_oid, class_oid
from mockservers.directory.slapd_schema import class_defs

SUBSCHEMA_RDN: Final = "CN=Aggregate"
SUBSCHEMA_CLASS: Final = "subSchema"
# The attributes of the subschema entry that hold the schema; a search returns them when it
# names them or asks for all operational attributes ('+'), as RFC 4512 has it.
ATTRIBUTE_TYPES: Final = "attributeTypes"
OBJECT_CLASSES: Final = "objectClasses"
DIT_CONTENT_RULES: Final = "dITContentRules"
SCHEMA_ATTRIBUTES: Final = (ATTRIBUTE_TYPES, OBJECT_CLASSES, DIT_CONTENT_RULES)


def subschema_dn(schema_nc: str) -> str:
    return f"{SUBSCHEMA_RDN},{schema_nc}"


@dataclass(frozen=True, slots=True)
class Published:
    """The values of the subschema entry's schema attributes, UTF-8 encoded."""

    attribute_types: tuple[bytes, ...]
    object_classes: tuple[bytes, ...]
    dit_content_rules: tuple[bytes, ...]

    def values(self, name: str) -> tuple[bytes, ...]:
        """The values of `name` (one of SCHEMA_ATTRIBUTES, any case), else ()."""
        key = name.casefold()
        if key == ATTRIBUTE_TYPES.casefold():
            return self.attribute_types
        if key == OBJECT_CLASSES.casefold():
            return self.object_classes
        if key == DIT_CONTENT_RULES.casefold():
            return self.dit_content_rules
        return ()


def _list(names: tuple[str, ...] | list[str]) -> str:
    # RFC 4512 oids: one name bare, several as ( a $ b ).
    return names[0] if len(names) == 1 else "( " + " $ ".join(names) + " )"


def ldap_syntax(syntax: Syntax) -> str:
    """The LDAP syntax AD publishes for an attributeSyntax (with its usual oMSyntax)."""
    return LDAP_SYNTAXES[(syntax.value, str(OM_SYNTAX[syntax]))]


def _ad_attribute_type(a: AdAttribute) -> str:
    parts = [f"( {a.oid} NAME '{a.name}' SYNTAX '{a.ldap_syntax}'"]
    if a.single:
        parts.append("SINGLE-VALUE")
    if a.system_only:
        parts.append("NO-USER-MODIFICATION")
    return " ".join(parts) + " )"


def attribute_type(schema: Schema, name: str) -> str:
    """One AttributeTypeDescription, as AD writes it (the syntax OID quoted)."""
    t = schema.require(name)
    parts = [f"( {attribute_oid(t)} NAME '{t.name}' SYNTAX '{ldap_syntax(t.syntax)}'"]
    if t.single:
        parts.append("SINGLE-VALUE")
    if t.system_only:
        parts.append("NO-USER-MODIFICATION")
    return " ".join(parts) + " )"


def object_class(c: AdClass) -> str:
    """One ObjectClassDescription."""
    parts = [f"( {c.oid} NAME '{c.name}'"]
    if c.sup.casefold() != c.name.casefold():
        parts.append(f"SUP {c.sup}")
    parts.append(c.kind)
    if c.must:
        parts.append(f"MUST {_list(c.must)}")
    if c.may:
        parts.append(f"MAY {_list(c.may)}")
    return " ".join(parts) + " )"


def dit_content_rule(c: AdClass, by_name: dict[str, AdClass]) -> str:
    """The DITContentRuleDescription of a structural class with auxiliary classes: AD lists
    the auxiliary classes and what they must and may contain (python-ldap's
    ``SubSchema.attribute_types`` reads the latter)."""
    aux = [by_name[a.casefold()] for a in c.aux if a.casefold() in by_name]
    must = tuple(dict.fromkeys(n for a in aux for n in a.must))
    may = tuple(dict.fromkeys(n for a in aux for n in a.may if n not in must))
    parts = [f"( {c.oid} NAME '{c.name}' AUX {_list(c.aux)}"]
    if must:
        parts.append(f"MUST {_list(must)}")
    if may:
        parts.append(f"MAY {_list(may)}")
    return " ".join(parts) + " )"


def classes(schema: Schema) -> list[AdClass]:
    """Every class the fake publishes, superiors first: AD's (with Exchange's attributes on
    mailRecipient), then Exchange's configuration classes."""
    known = {t.name for t in schema}
    exchange_attributes = tuple(
        t.name for t in schema if t.name not in AD_ATTRIBUTE_IDS and not t.operational
    )
    out: list[AdClass] = []
    for c in AD_CLASSES:
        may = tuple(a for a in c.may if a in known)
        if c.name == "mailRecipient":
            may += tuple(a for a in exchange_attributes if a not in may)
        out.append(AdClass(c.name, c.oid, c.sup, c.kind, c.rdn, c.aux, c.must, may, c.superiors))
    ad = {c.name.casefold() for c in AD_CLASSES}
    # What Exchange's configuration objects may hold: every attribute a client may write.
    config_may = tuple(
        t.name
        for t in schema
        if not (t.system_only or t.operational) and t.name not in ("objectClass", "objectCategory")
    )
    for d in class_defs():
        if d.name.casefold() in ad or not d.name.startswith("msExch"):
            continue
        out.append(
            AdClass(d.name, class_oid(d.name), d.sup, d.kind, "cn", must=("cn",), may=config_may)
        )
    return out


def publish(schema: Schema) -> Published:
    """The subschema entry's schema attributes for `schema`: its own attributes and classes as
    the fake holds them, then the rest of AD's schema (`ad_classes.ALL_FILE`), which the fake
    does not hold values of but a client may name, as it may against AD."""
    cls = classes(schema)
    by_name = {c.name.casefold(): c for c in cls}
    ad_attributes, ad_classes = all_ad()
    types = [attribute_type(schema, t.name) for t in schema]
    types += [_ad_attribute_type(a) for a in ad_attributes if schema.get(a.name) is None]
    objects = [object_class(c) for c in cls]
    objects += [object_class(c) for c in ad_classes if c.name.casefold() not in by_name]
    return Published(
        attribute_types=tuple(t.encode() for t in types),
        object_classes=tuple(o.encode() for o in objects),
        dit_content_rules=tuple(
            dit_content_rule(c, by_name).encode() for c in cls if c.aux and c.kind == "STRUCTURAL"
        ),
    )

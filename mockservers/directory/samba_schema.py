"""The Exchange schema extension for a Samba AD DC, generated from DEFAULT_SCHEMA.

Samba's AD schema (2008 R2 / 2012 R2 base) has proxyAddresses, mail, mS-DS-ConsistencyGuid,
legacyExchangeDN and showInAddressBook, but none of Exchange's attributes or classes. An
Exchange schema update (``Setup /PrepareSchema``) adds attributeSchema and classSchema objects
and extends ``mailRecipient``, an auxiliary class of user, contact and group; this module writes
the same kind of extension for the attributes and classes the fake AD knows, as LDIF steps
separated by ``schemaUpdateNow`` (AD only sees a new attribute in a class once its schema cache
is reloaded).

Identifiers: attributeIDs come from `attribute_oid` (Microsoft's, where a public source gives
them: see `mockservers.directory.schema_ids`); the rest, and the governsIDs of the Exchange
classes, are private OIDs and say so in their adminDescription. Syntax, single-valuedness and
rangeUpper are DEFAULT_SCHEMA's, which follow the Exchange schema where it is known.

The class hierarchy is the slapd schema's (`class_defs`): each Exchange configuration class is
structural, its superior as listed there, named by cn, and may be created below the domain's
configuration containers and any other Exchange class (Exchange's own possSuperiors lists are
longer and more specific; they are not all published).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

from harness.core.adschema import DEFAULT_SCHEMA, AttributeType, Schema, Syntax
from harness.tenant.ldif import entry_text
from mockservers.directory.schema_ids import (
    MICROSOFT_ATTRIBUTE_OIDS,
    MICROSOFT_CLASS_OIDS,
    attribute_oid,
    class_oid,
)
from mockservers.directory.slapd_schema import ClassDef, class_defs

# attributeSyntax -> oMSyntax, as AD pairs them ([MS-ADTS] 3.1.1.2.2.2, "Syntaxes").
OM_SYNTAX: Final = {
    Syntax.STRING: 64,
    Syntax.DN: 127,
    Syntax.OID: 6,
    Syntax.BOOLEAN: 1,
    Syntax.INTEGER: 2,
    Syntax.OCTETS: 4,
    Syntax.TIME: 24,
    Syntax.LARGE_INTEGER: 65,
}
# The oMObjectClass of DN-syntax attributes (1.3.12.2.1011.28.0.714), BER-encoded.
DN_OM_OBJECT_CLASS: Final = bytes.fromhex("2b0c0287731c00854a")

# Common names that do not follow the "ms-Exch-" + hyphenated display name rule.
_CN_OVERRIDES: Final = {
    "msDS-ExternalDirectoryObjectId": "ms-DS-External-Directory-Object-Id",
    "msExchHomeServerName": "ms-Exch-Home-Server-Name",
    "homeMDB": "ms-Exch-Home-MDB",
}
_WORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+")

# The defaultSecurityDescriptor of AD's container class ([MS-ADSC] Container): full control for
# Domain Admins and SYSTEM, read for Authenticated Users. Exchange's classes grant at least that.
CONTAINER_SD: Final = (
    "D:(A;;RPWPCRCCDCLCLORCWOWDSDDTSW;;;DA)(A;;RPWPCRCCDCLCLORCWOWDSDDTSW;;;SY)(A;;RPLCLORC;;;AU)"
)
# Classes a configuration object of an Exchange class may sit under, besides the Exchange
# classes themselves (all in the configuration partition).
_CONFIG_SUPERIORS: Final = ("container", "configuration", "msExchConfigurationContainer")
# Exchange classes Samba's base schema already defines (as stubs from MS-ADSC): extended only.
SAMBA_HAS: Final = frozenset({"msexchconfigurationcontainer"})


def common_name(display_name: str) -> str:
    """The schema object's cn: ``msExchRecipientTypeDetails`` -> ``ms-Exch-Recipient-Type-...``."""
    if display_name in _CN_OVERRIDES:
        return _CN_OVERRIDES[display_name]
    words = _WORD.findall(display_name)
    if words[:2] == ["ms", "Exch"]:
        words = words[2:]
    return "-".join(["ms", "Exch", *(w[:1].upper() + w[1:] for w in words)])


@dataclass(frozen=True, slots=True)
class SchemaExtension:
    """The LDIF steps of one extension; each step must be followed by ``schemaUpdateNow``."""

    attributes: str  # attributeSchema objects
    classes: str  # classSchema objects
    class_changes: str  # changes to classes Samba already has (mailRecipient, user, ...)


def attribute_entry(schema_dn: str, attr: AttributeType) -> str:
    """The attributeSchema object of `attr`."""
    cn = common_name(attr.name)
    values: list[tuple[str, tuple[str | bytes, ...]]] = [
        ("objectClass", ("top", "attributeSchema")),
        ("cn", (cn,)),
        ("lDAPDisplayName", (attr.name,)),
        ("attributeID", (attribute_oid(attr),)),
        ("attributeSyntax", (attr.syntax.value,)),
        ("oMSyntax", (str(OM_SYNTAX[attr.syntax]),)),
        ("isSingleValued", ("TRUE" if attr.single else "FALSE",)),
        # searchFlags ([MS-ADTS] 3.1.1.2.3): fATTINDEX (1) where AD keeps an index, as the
        # fake does; fANR (4) for the ANR set (Exchange's mailNickname).
        ("searchFlags", (str(int(attr.equality_indexed) | 4 * attr.anr),)),
    ]
    if attr.syntax is Syntax.DN:
        values.append(("oMObjectClass", (DN_OM_OBJECT_CLASS,)))
    if attr.range_upper is not None:
        values += [("rangeLower", ("1",)), ("rangeUpper", (str(attr.range_upper),))]
    if attr.name not in MICROSOFT_ATTRIBUTE_OIDS:
        values.append(("adminDescription", ("exwb-harness: attributeID is a private OID",)))
    return entry_text(f"CN={cn},{schema_dn}", values)


def missing_attributes(
    samba_has: frozenset[str], schema: Schema = DEFAULT_SCHEMA
) -> list[AttributeType]:
    """The attributes of `schema` whose (casefolded) names Samba's schema lacks."""
    return [a for a in schema if a.name.casefold() not in samba_has]


def _class_entries(schema_dn: str, attr_names: list[str]) -> Iterator[str]:
    for d in exchange_classes():
        if d.name.casefold() in SAMBA_HAS:
            continue
        cn = common_name(d.name)
        values: list[tuple[str, tuple[str | bytes, ...]]] = [
            ("objectClass", ("top", "classSchema")),
            ("cn", (cn,)),
            ("lDAPDisplayName", (d.name,)),
            ("governsID", (class_oid(d.name),)),
            ("subClassOf", (d.sup,)),
            ("objectClassCategory", ("1",)),  # structural
            ("rDNAttID", ("cn",)),
            ("possSuperiors", _CONFIG_SUPERIORS),
            ("mayContain", tuple(attr_names)),
            ("defaultObjectCategory", (f"CN={cn},{schema_dn}",)),
            ("defaultSecurityDescriptor", (CONTAINER_SD,)),
        ]
        if d.name not in MICROSOFT_CLASS_OIDS:
            values.append(("adminDescription", ("exwb-harness: governsID is a private OID",)))
        yield entry_text(f"CN={cn},{schema_dn}", values)


def exchange_classes() -> list[ClassDef]:
    """The Exchange configuration classes Samba lacks, superiors before subclasses."""
    return [
        d
        for d in class_defs()
        if d.name.startswith("msExch") and d.name.casefold() not in SAMBA_HAS
    ]


def _add_values(dn: str, attribute: str, values: list[str]) -> str:
    lines = [f"dn: {dn}", "changetype: modify", f"add: {attribute}"]
    lines += [f"{attribute}: {v}" for v in values]
    return "\n".join([*lines, "-", "", ""])


def schema_extension(
    base_dn: str, samba_has: frozenset[str], schema: Schema = DEFAULT_SCHEMA
) -> SchemaExtension:
    """The extension adding to Samba's schema what `schema` has and `samba_has` lacks.

    `samba_has` holds the casefolded lDAPDisplayNames of Samba's attributes. Every added
    attribute may be used on users, contacts and groups (through ``mailRecipient``) and on the
    Exchange configuration classes; msExchConfigurationContainer, which Samba defines, gets them
    too.
    """
    schema_dn = f"CN=Schema,CN=Configuration,{base_dn}"
    added = missing_attributes(samba_has, schema)
    names = [a.name for a in added]
    attributes = "".join(attribute_entry(schema_dn, a) for a in added)
    # Exchange's configuration classes may hold the attributes AD already had (serialNumber,
    # networkAddress, ...) as well as the new ones.
    config_may = [
        a.name
        for a in schema
        if not (a.system_only or a.operational)
        and a.name.casefold() not in ("objectclass", "objectcategory")
    ]
    classes = "".join(_class_entries(schema_dn, config_may))
    changes = _add_values(f"CN=Mail-Recipient,{schema_dn}", "mayContain", names)
    changes += _add_values(f"CN=ms-Exch-Configuration-Container,{schema_dn}", "mayContain", names)
    # Exchange classes nest in one another; possSuperiors may only name classes that exist, so
    # these come after the classes themselves.
    exchange = [d.name for d in exchange_classes()]
    for d in exchange_classes():
        others = [n for n in exchange if n != d.name]
        changes += _add_values(f"CN={common_name(d.name)},{schema_dn}", "possSuperiors", others)
    return SchemaExtension(attributes, classes, changes)

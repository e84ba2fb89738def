"""LDIF (RFC 2849) encoding of a tenant's directory.

Values that are not SAFE-STRINGs (binary, non-ASCII, leading space, colon or '<', trailing
space, line breaks) are base64-encoded with ``::``; lines are folded at 76 columns. The output
loads with OpenLDAP's ldapadd once the project's schema is loaded, and with the directory's own
loader.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable, Iterator

from harness.tenant.model import Tenant

Entry = tuple[str, list[tuple[str, tuple[str | bytes, ...]]]]

_UNSAFE = re.compile(r"^[ :<]|[\x00\n\r\x80-\U0010ffff]| $")
WIDTH = 76


def _fold(line: str, width: int) -> str:
    if len(line) <= width:
        return line
    parts = [line[:width]]
    parts.extend(" " + line[i : i + width - 1] for i in range(width, len(line), width - 1))
    return "\n".join(parts)


def attribute_line(name: str, value: str | bytes, width: int = WIDTH) -> str:
    """One ``name: value`` or ``name:: base64`` line, folded at `width` columns (ldifde: 80)."""
    if isinstance(value, bytes):
        return _fold(f"{name}:: {base64.b64encode(value).decode('ascii')}", width)
    if _UNSAFE.search(value):
        return _fold(f"{name}:: {base64.b64encode(value.encode('utf-8')).decode('ascii')}", width)
    return _fold(f"{name}: {value}", width)


def entry_text(dn: str, attributes: Iterable[tuple[str, tuple[str | bytes, ...]]]) -> str:
    """One LDIF record, ending with the blank line that separates records."""
    lines = [attribute_line("dn", dn)]
    for name, values in attributes:
        lines.extend(attribute_line(name, v) for v in values)
    lines.append("\n")
    return "\n".join(lines)


def directory_entries(tenant: Tenant) -> Iterator[Entry]:
    """The domain partition: the domain root, OUs, users, then groups; parents before children
    and members before the groups they are in (a directory that checks a member's DN, as Samba
    does, loads it in this order)."""
    spec = tenant.spec
    yield (
        spec.base_dn,
        [
            ("objectClass", ("top", "domain", "domainDNS")),
            ("dc", (spec.domain_label,)),
        ],
    )
    for ou in tenant.ous:
        yield ou.dn, [("objectClass", ("top", "organizationalUnit")), ("ou", (ou.name,))]
    category = tenant.object_category_person
    for user in tenant.ad_users:
        yield user.dn, user.ldap_attributes(category)
    category = tenant.object_category_group
    for group in tenant.groups:
        yield group.dn, group.ldap_attributes(category)


def ldif_chunks(tenant: Tenant) -> Iterator[str]:
    """The whole LDIF file as text chunks (one per entry, after a header)."""
    spec = tenant.spec
    yield (
        f"# exwb-harness tenant: domain {spec.domain}, "
        f"{spec.mailboxes} mailboxes, seed {spec.seed}\n"
        "version: 1\n\n"
    )
    for dn, attributes in directory_entries(tenant):
        yield entry_text(dn, attributes)

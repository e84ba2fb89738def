"""The estate's public DNS zones: record sets in presentation form, checked as they are set.

A record set is keyed by (zone-relative name, type), "@" being the apex; values are kept as a
zone file writes them (``"10 mail.contoso.com."``), host names always absolute. Each change
bumps the zone's serial (the SOA the DNS server hands out). `zone_from_spec` is what a tenant
spec's knobs (dns_mx, dns_autodiscover) put in each accepted domain's zone.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from typing import Any, Final

from harness.tenant.exchange_org import EXO_AUTODISCOVER, ONPREM_PUBLIC_IP, ExchangeOrg
from mockservers.onprem import errors

RECORD_TYPES: Final = ("A", "AAAA", "CNAME", "MX", "NS", "SRV", "TXT")
EXO_SPF: Final = "include:spf.protection.outlook.com"
_LABEL = re.compile(r"(\*|[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?)")


@dataclass(slots=True)
class RecordSet:
    ttl: int
    values: list[str]


@dataclass(slots=True)
class Zone:
    """One authoritative zone; record sets keyed by (relative name, type), "@" is the apex."""

    name: str
    serial: int = 2024010101
    records: dict[tuple[str, str], RecordSet] = field(default_factory=dict)

    def fqdn(self, relative: str) -> str:
        return f"{self.name}." if relative == "@" else f"{relative}.{self.name}."

    def relative(self, name: str) -> str:
        """The zone-relative form of a record name given as "@", a label or an FQDN."""
        n = name.strip().lower().rstrip(".")
        if n in ("", "@", self.name):
            return "@"
        if n.endswith("." + self.name):
            n = n[: -len(self.name) - 1]
        if len(n) > 253 or not all(_LABEL.fullmatch(label) for label in n.split(".")):
            raise errors.record_name(name, self.name)
        return n

    def record_api(self, key: tuple[str, str]) -> dict[str, Any]:
        rs = self.records[key]
        name, rtype = key
        fqdn = self.fqdn(name)
        return {"name": name, "fqdn": fqdn, "type": rtype, "ttl": rs.ttl, "values": rs.values}

    def to_api(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "serial": self.serial,
            "records": [self.record_api(k) for k in sorted(self.records, key=_record_order)],
        }

    def put(self, name: str, rtype: str, body: Any) -> tuple[dict[str, Any], bool]:
        """Create or replace one record set; (its API form, whether it was created)."""
        rel, t = self.relative(name), record_type(rtype)
        if not isinstance(body, dict):
            raise errors.record_body()
        ttl = body.get("ttl", 3600)
        if isinstance(ttl, bool) or not isinstance(ttl, int) or not 0 <= ttl <= 2**31 - 1:
            raise errors.record_ttl()
        values = normalize_values(t, body.get("values"))
        others = [k for k in self.records if k[0] == rel and k[1] != t]
        if others and (t == "CNAME" or any(k[1] == "CNAME" for k in others)):
            # RFC 1034 3.6.2: a name with a CNAME has no other data.
            raise errors.cname_conflict(self.fqdn(rel), sorted({t, *(k[1] for k in others)}))
        created = (rel, t) not in self.records
        self.records[(rel, t)] = RecordSet(ttl, values)
        self.serial += 1
        return self.record_api((rel, t)), created

    def key(self, name: str, rtype: str) -> tuple[str, str]:
        """The key of an existing record set; 404 RecordNotFound otherwise."""
        key = (self.relative(name), record_type(rtype))
        if key not in self.records:
            raise errors.record_not_found(key[1], self.fqdn(key[0]))
        return key

    def delete(self, name: str, rtype: str) -> None:
        del self.records[self.key(name, rtype)]
        self.serial += 1

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "serial": self.serial,
            "records": [[n, t, rs.ttl, rs.values] for (n, t), rs in self.records.items()],
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Zone:
        z = cls(d["name"], int(d["serial"]))
        for n, t, ttl, values in d["records"]:
            z.records[(n, t)] = RecordSet(int(ttl), list(values))
        return z


def _record_order(key: tuple[str, str]) -> tuple[int, str, str]:
    return (0 if key[0] == "@" else 1, key[0], key[1])


def normalize_values(rtype: str, values: Any) -> list[str]:
    """Check a record set's values (presentation format) and return them normalised.

    Host names are absolute: a missing trailing dot is added (there is no $ORIGIN here).
    """
    if not isinstance(values, list) or not values or not all(isinstance(v, str) for v in values):
        raise errors.record_values()
    if rtype == "CNAME" and len(values) > 1:
        raise errors.cname_values()
    out = []
    for raw in values:
        v = raw.strip()
        try:
            out.append(_normalize_value(rtype, v))
        except ValueError as e:
            raise errors.record_value(rtype, raw, str(e)) from None
    if len(set(out)) != len(out):
        raise errors.record_values_repeated(rtype)
    return out


def _host(v: str) -> str:
    n = v.lower().rstrip(".")
    if not n or len(n) > 253 or not all(_LABEL.fullmatch(label) for label in n.split(".")):
        raise ValueError("not a host name")
    return n + "."


def _normalize_value(rtype: str, v: str) -> str:
    if rtype == "A":
        return str(ipaddress.IPv4Address(v))
    if rtype == "AAAA":
        return str(ipaddress.IPv6Address(v))
    if rtype in ("CNAME", "NS"):
        return _host(v)
    if rtype == "MX":
        parts = v.split()
        if len(parts) != 2 or not parts[0].isdigit() or int(parts[0]) > 65535:
            raise ValueError('expected "<preference 0-65535> <exchange host>"')
        return f"{int(parts[0])} {_host(parts[1])}"
    if rtype == "SRV":
        parts = v.split()
        if len(parts) != 4 or not all(p.isdigit() and int(p) <= 65535 for p in parts[:3]):
            raise ValueError('expected "<priority> <weight> <port> <target host>"')
        return " ".join([*(str(int(p)) for p in parts[:3]), _host(parts[3])])
    if rtype == "TXT":
        if not v or len(v.encode("utf-8")) > 4000:
            raise ValueError("TXT text must hold 1 to 4000 bytes")
        return v
    raise ValueError(f"unsupported type {rtype}")


def record_type(rtype: str) -> str:
    """The canonical name of a supported record type; 400 otherwise."""
    t = rtype.strip().upper()
    if t not in RECORD_TYPES:
        raise errors.unsupported_record_type(rtype, RECORD_TYPES)
    return t


def zone_from_spec(org: ExchangeOrg, domain: str) -> Zone:
    """`domain`'s zone as the spec describes it (MX, Autodiscover, SPF; mail A in the primary)."""
    spec = org.spec
    primary = spec.domain.lower()
    z = Zone(domain)
    z.records[("@", "NS")] = RecordSet(86400, [f"ns1.{primary}.", f"ns2.{primary}."])
    if spec.dns_mx == "onprem":
        mx = f"10 {org.mail_host.lower()}."
        spf = f"v=spf1 ip4:{ONPREM_PUBLIC_IP} {EXO_SPF} -all"
    else:
        mx = f"0 {org.exo_mx_for(domain)}."
        spf = f"v=spf1 {EXO_SPF} -all"
    z.records[("@", "MX")] = RecordSet(3600, [mx])
    z.records[("@", "TXT")] = RecordSet(3600, [spf])
    onprem = spec.dns_autodiscover == "onprem"
    target = org.mail_host.lower() if onprem else EXO_AUTODISCOVER
    z.records[("autodiscover", "CNAME")] = RecordSet(3600, [f"{target}."])
    if domain == primary:
        z.records[("mail", "A")] = RecordSet(3600, [ONPREM_PUBLIC_IP])
        z.records[("ns1", "A")] = RecordSet(86400, ["203.0.113.53"])
        z.records[("ns2", "A")] = RecordSet(86400, ["203.0.113.54"])
    return z

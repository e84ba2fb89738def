"""The estate's public DNS: an authoritative server (twisted.names) over UDP and TCP, one port.

One authority per zone reads the estate's record sets; each query rebuilds the authority's
records when the zone's serial moved, so an edit through the API is answered at once. Answers
are as an authoritative-only server gives them: AA set, NXDOMAIN with the zone's SOA for a name
the zone does not hold, REFUSED for a name in no zone of ours (no recursion offered).
`dig @127.0.0.1 -p PORT contoso.com MX` works.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.error import CannotListenError
from twisted.names import authority, dns, server

from mockservers.onprem.estate import Estate
from mockservers.onprem.zones import Zone

SOA_REFRESH, SOA_RETRY, SOA_EXPIRE, SOA_MINIMUM = 3600, 600, 604800, 300


def _records(z: Zone, primary: str) -> tuple[tuple[bytes, Any], dict[bytes, list[Any]]]:
    apex = z.name.encode("ascii")
    soa = dns.Record_SOA(
        mname=f"ns1.{primary}".encode(),
        rname=f"hostmaster.{primary}".encode(),
        serial=z.serial,
        refresh=SOA_REFRESH,
        retry=SOA_RETRY,
        expire=SOA_EXPIRE,
        minimum=SOA_MINIMUM,
        ttl=3600,
    )
    records: dict[bytes, list[Any]] = {apex: [soa]}
    for (name, rtype), rs in z.records.items():
        owner = z.fqdn(name).rstrip(".").encode("ascii")
        records.setdefault(owner, []).extend(to_record(rtype, v, rs.ttl) for v in rs.values)
    return (apex, soa), records


def to_record(rtype: str, value: str, ttl: int) -> Any:
    """A twisted.names record from a value in presentation form (as the estate keeps it)."""
    if rtype == "A":
        return dns.Record_A(value, ttl=ttl)
    if rtype == "AAAA":
        return dns.Record_AAAA(value, ttl=ttl)
    if rtype == "CNAME":
        return dns.Record_CNAME(value.rstrip(".").encode(), ttl=ttl)
    if rtype == "NS":
        return dns.Record_NS(value.rstrip(".").encode(), ttl=ttl)
    if rtype == "MX":
        pref, host = value.split()
        return dns.Record_MX(int(pref), host.rstrip(".").encode(), ttl=ttl)
    if rtype == "SRV":
        prio, weight, port, target = value.split()
        return dns.Record_SRV(
            int(prio), int(weight), int(port), target.rstrip(".").encode(), ttl=ttl
        )
    if rtype == "TXT":
        data = value.encode("utf-8")  # character-strings hold 255 bytes at most
        return dns.Record_TXT(*(data[i : i + 255] for i in range(0, len(data), 255)), ttl=ttl)
    raise ValueError(f"unsupported record type {rtype}")


class ZoneAuthority(authority.FileAuthority):
    """Authoritative answers for one zone of the estate, kept in step with its serial."""

    # FileAuthority types both as plain None class attributes (filled by loadFile, which here
    # runs in __init__); these are their real types.
    soa: tuple[bytes, Any]  # type: ignore[assignment]
    records: dict[bytes, list[Any]]  # type: ignore[assignment]

    def __init__(self, estate: Estate, zone: str, primary: str) -> None:
        self.estate = estate
        self.zone_name = zone
        self.primary = primary
        self._serial: int | None = None
        super().__init__(zone)  # calls loadFile

    def loadFile(self, filename: Any) -> None:
        self._refresh()

    def _refresh(self) -> None:
        z = self.estate.zones[self.zone_name]
        if z.serial != self._serial:
            self.soa, self.records = _records(z, self.primary)
            self._serial = z.serial

    def _lookup(self, name: bytes, cls: int, type: int, timeout: Any = None) -> Any:
        self._refresh()
        d = super()._lookup(name, cls, type, timeout)
        if type != dns.ALL_RECORDS:
            d.addCallback(_answer_only, type)
        return d

    def lookupZone(self, name: Any, timeout: Any = 10) -> Any:
        self._refresh()
        return super().lookupZone(name, timeout)


def _answer_only(result: tuple, qtype: int) -> tuple:
    """Keep the asked type (and the CNAME that leads to it) in the answer section.

    FileAuthority puts the addresses of a CNAME's in-zone target into the answers whatever
    the query type; a name server puts them there only for an address query, in the
    additional section otherwise (``dig autodiscover.contoso.com CNAME`` shows the CNAME).
    """
    answers, authority, additional = result
    keep = [r for r in answers if r.type in (qtype, dns.CNAME)]
    extra = [r for r in answers if r.type not in (qtype, dns.CNAME)]
    return keep, authority, [*additional, *extra]


class EstateDNSFactory(server.DNSServerFactory):
    """DNSServerFactory with an authoritative-only server's error answers."""

    def __init__(self, authorities: list[ZoneAuthority]) -> None:
        super().__init__(authorities=authorities, verbose=0)
        self.zones = authorities

    def gotResolverError(self, failure: Any, protocol: Any, message: Any, address: Any) -> None:
        if failure.check(dns.AuthoritativeDomainError):
            name = failure.value.args[0] if failure.value.args else b""
            soa = [
                dns.RRHeader(a.soa[0], dns.SOA, dns.IN, a.soa[1].ttl, a.soa[1], auth=True)
                for a in self.zones
                if dns._isSubdomainOf(name, a.soa[0])
            ]
            response = self._responseFromMessage(message=message, rCode=dns.ENAME, authority=soa)
            response.auth = True
        elif failure.check(dns.DomainError):
            response = self._responseFromMessage(message=message, rCode=dns.EREFUSED)
        else:
            super().gotResolverError(failure, protocol, message, address)
            return
        self.sendReply(protocol, response, address)


def make_factory(estate: Estate, primary: str) -> EstateDNSFactory:
    """A server for every zone of `estate` (its zones are fixed; their records are not)."""
    return EstateDNSFactory([ZoneAuthority(estate, z, primary) for z in estate.zones])


def listen_dns(reactor: Any, estate: Estate, primary: str, host: str, port: int = 0) -> list:
    """Listen on TCP and UDP `port` of `host` (0: a free port both protocols can have).

    Returns the two listening ports (TCP first); run in the reactor thread.
    """
    factory = make_factory(estate, primary)
    protocol = dns.DNSDatagramProtocol(factory)
    for _ in range(50):
        tcp = reactor.listenTCP(port, factory, 50, host)
        try:
            udp = reactor.listenUDP(tcp.getHost().port, protocol, host)
        except CannotListenError:
            tcp.stopListening()
            if port:
                raise
            continue  # the TCP port's number is taken for UDP: try another
        return [tcp, udp]
    raise CannotListenError(host, port, "no port free for both TCP and UDP")

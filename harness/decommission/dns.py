"""A DNS stub query, as ``dig @host -p port name TYPE`` makes one (twisted.names wire format).

Used to check where MX and Autodiscover really point: one query message built with
`twisted.names.dns.Message`, sent over UDP (over TCP when the answer comes back truncated, or
when asked), answers of the asked type returned in presentation form: ``"10 mail.contoso.com."``
(MX), ``"mail.contoso.com."`` (CNAME, NS), ``"203.0.113.10"`` (A), the text of a TXT record.
NXDOMAIN and an empty answer are an empty list; any other error code and timeouts raise.
"""

from __future__ import annotations

import secrets
import socket
import struct
from typing import Final

from twisted.names import dns

RCODE_NAMES: Final = {
    dns.OK: "NOERROR",
    dns.EFORMAT: "FORMERR",
    dns.ESERVER: "SERVFAIL",
    dns.ENAME: "NXDOMAIN",
    dns.ENOTIMP: "NOTIMP",
    dns.EREFUSED: "REFUSED",
}


class DnsError(Exception):
    """The server answered with an error code other than NXDOMAIN (`rcode`), or none at all."""

    def __init__(self, message: str, rcode: int | None = None) -> None:
        super().__init__(message)
        self.rcode = rcode


class DnsTimeout(DnsError):
    """No answer within the timeout."""


def resolve(
    host: str, port: int, name: str, rtype: str, timeout: float = 3.0, tcp: bool = False
) -> list[str]:
    """The `rtype` records of `name` from the server at host:port, in presentation form."""
    qtype = _qtype(rtype)
    qname = name.rstrip(".")
    query_id = secrets.randbelow(0x10000)
    msg = dns.Message(id=query_id, recDes=True)
    msg.queries = [dns.Query(qname.encode("idna"), qtype, dns.IN)]
    wire = msg.toStr()
    where = f"{host}:{port}"
    raw = _tcp(host, port, wire, timeout, where) if tcp else _udp(host, port, wire, timeout, where)
    answer = _parse(raw, where)
    if answer.id != query_id:
        raise DnsError(f"{where}: the answer's id does not match the query")
    if answer.trunc and not tcp:
        return resolve(host, port, name, rtype, timeout, tcp=True)
    if answer.rCode == dns.ENAME:
        return []
    if answer.rCode != dns.OK:
        code = RCODE_NAMES.get(answer.rCode, str(answer.rCode))
        raise DnsError(f"{where} answered {code} for {qname} {rtype.upper()}", answer.rCode)
    return [_present(rr) for rr in answer.answers if rr.type == qtype]


def _qtype(rtype: str) -> int:
    t = getattr(dns, rtype.strip().upper(), None)
    if not isinstance(t, int) or rtype.strip().upper() not in dns.QUERY_TYPES.values():
        raise ValueError(f"unknown record type {rtype!r}")
    return t


def _udp(host: str, port: int, wire: bytes, timeout: float, where: str) -> bytes:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        try:
            s.sendto(wire, (host, port))
            data, _ = s.recvfrom(65535)
        except TimeoutError:
            raise DnsTimeout(f"{where}: no answer over UDP within {timeout:g} s") from None
        except OSError as e:  # e.g. ICMP port unreachable: nothing listens there
            raise DnsError(f"{where}: {e.strerror or e}") from None
    return data


def _tcp(host: str, port: int, wire: bytes, timeout: float, where: str) -> bytes:
    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            s.sendall(struct.pack("!H", len(wire)) + wire)
            (size,) = struct.unpack("!H", _read(s, 2, where))
            return _read(s, size, where)
    except TimeoutError:
        raise DnsTimeout(f"{where}: no answer over TCP within {timeout:g} s") from None
    except OSError as e:
        raise DnsError(f"{where}: {e.strerror or e}") from None


def _read(s: socket.socket, n: int, where: str) -> bytes:
    data = b""
    while len(data) < n:
        chunk = s.recv(n - len(data))
        if not chunk:
            raise DnsError(f"{where}: the TCP connection closed mid-answer")
        data += chunk
    return data


def _parse(raw: bytes, where: str) -> dns.Message:
    m = dns.Message()
    try:
        m.fromStr(raw)
    except Exception as e:  # twisted raises struct.error, EOFError, ValueError...
        raise DnsError(f"{where}: the answer is not a DNS message ({e!r})") from None
    return m


def _present(rr: dns.RRHeader) -> str:
    # By the payload's class: the header's type says the same, but only the class types it.
    p = rr.payload
    if isinstance(p, dns.Record_A):
        return p.dottedQuad()
    if isinstance(p, dns.Record_AAAA):
        return socket.inet_ntop(socket.AF_INET6, p.address)
    if isinstance(p, dns.Record_CNAME | dns.Record_NS | dns.Record_PTR):
        return f"{_name(p.name)}."
    if isinstance(p, dns.Record_MX):
        return f"{p.preference} {_name(p.name)}."
    if isinstance(p, dns.Record_SRV):
        return f"{p.priority} {p.weight} {p.port} {_name(p.target)}."
    if isinstance(p, dns.Record_TXT):  # Record_SPF is a Record_TXT
        return b"".join(p.data).decode("utf-8", "replace")
    if isinstance(p, dns.Record_SOA):
        return (
            f"{_name(p.mname)}. {_name(p.rname)}. {p.serial} "
            f"{p.refresh} {p.retry} {p.expire} {p.minimum}"
        )
    return repr(p)


def _name(name: dns.Name) -> str:
    return name.name.decode("ascii")

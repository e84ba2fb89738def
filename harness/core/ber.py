"""LDAP's BER: the protocol's tags and constants, a small writer and the readers both ends need.

The fake's server and the engine's client (`harness.engine.ldapwire`) share this module, so a
tag, scope or OID is spelled once.

ldaptor's encoder costs ~300 us per 1 KB search entry; paging 200,000 entries through it would
take a minute of server CPU. These functions build the same bytes directly.
"""

from __future__ import annotations

from collections.abc import Iterable

SEQUENCE = 0x30
SET = 0x31
OCTET_STRING = 0x04
INTEGER = 0x02
ENUMERATED = 0x0A
BOOLEAN = 0x01

# protocolOp tags (RFC 4511 4.2-4.14): application class, constructed unless primitive.
APP_BIND_REQUEST = 0x60
APP_BIND_RESPONSE = 0x61
APP_UNBIND_REQUEST = 0x42
APP_SEARCH_REQUEST = 0x63
APP_SEARCH_ENTRY = 0x64
APP_SEARCH_DONE = 0x65
APP_SEARCH_REFERENCE = 0x73
APP_MODIFY_REQUEST = 0x66
APP_MODIFY_RESPONSE = 0x67
APP_ADD_REQUEST = 0x68
APP_ADD_RESPONSE = 0x69
APP_DEL_REQUEST = 0x4A
APP_DEL_RESPONSE = 0x6B
APP_MODDN_REQUEST = 0x6C
APP_MODDN_RESPONSE = 0x6D
APP_COMPARE_REQUEST = 0x6E
APP_COMPARE_RESPONSE = 0x6F
APP_ABANDON_REQUEST = 0x50
APP_EXTENDED_REQUEST = 0x77
APP_EXTENDED_RESPONSE = 0x78
CTX_CONTROLS = 0xA0
CTX_RESPONSE_NAME = 0x8A

# The ENUMERATED values of a SearchRequest's scope and a ModifyRequest's operation.
SCOPE_BASE, SCOPE_ONE, SCOPE_SUBTREE = 0, 1, 2
MOD_ADD, MOD_DELETE, MOD_REPLACE = 0, 1, 2

# The OIDs both ends of the wire use: RFC 2696's paged results control (its value's codec is
# below) and RFC 4511 4.4.1's unsolicited Notice of Disconnection.
PAGED_RESULTS_OID = "1.2.840.113556.1.4.319"
NOTICE_OF_DISCONNECTION_OID = "1.3.6.1.4.1.1466.20036"


class BERError(ValueError):
    """Bytes that are not the BER we expect."""


def length(n: int) -> bytes:
    if n < 0x80:
        return bytes((n,))
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((0x80 | len(body),)) + body


def tlv(tag: int, content: bytes) -> bytes:
    return bytes((tag,)) + length(len(content)) + content


def octets(value: bytes, tag: int = OCTET_STRING) -> bytes:
    return tlv(tag, value)


def integer(n: int, tag: int = INTEGER) -> bytes:
    size = max(1, (n.bit_length() + 8) // 8)
    return tlv(tag, n.to_bytes(size, "big", signed=True))


def boolean(flag: bool) -> bytes:
    return b"\x01\x01\xff" if flag else b"\x01\x01\x00"


def sequence(*parts: bytes, tag: int = SEQUENCE) -> bytes:
    return tlv(tag, b"".join(parts))


def attribute(name_tlv: bytes, values: Iterable[bytes], types_only: bool = False) -> bytes:
    """PartialAttribute ::= SEQUENCE { type, vals SET OF value }; `name_tlv` is the encoded type."""
    vals = b"" if types_only else b"".join(tlv(OCTET_STRING, v) for v in values)
    return sequence(name_tlv, tlv(SET, vals))


def message(message_id: int, op: bytes, controls: bytes = b"") -> bytes:
    """LDAPMessage ::= SEQUENCE { messageID, protocolOp, controls [0] OPTIONAL }."""
    return sequence(integer(message_id), op, tlv(CTX_CONTROLS, controls) if controls else b"")


def result(
    app_tag: int, code: int, matched_dn: str = "", diagnostic: str = "", extra: bytes = b""
) -> bytes:
    """An LDAPResult-shaped response op (bind, search done, modify, add, ...)."""
    return tlv(
        app_tag,
        integer(code, ENUMERATED)
        + octets(matched_dn.encode("utf-8"))
        + octets(diagnostic.encode("utf-8"))
        + extra,
    )


def control(oid: str, value: bytes | None = None, critical: bool = False) -> bytes:
    parts = [octets(oid.encode("ascii"))]
    if critical:
        parts.append(boolean(True))
    if value is not None:
        parts.append(octets(value))
    return sequence(*parts)


# ---------------------------------------------------------------------- reading
def read_tlv(data: bytes, pos: int = 0) -> tuple[int, bytes, int]:
    """(tag, content, next position) of the element at `pos`; raises BERError."""
    if pos + 2 > len(data):
        raise BERError("truncated element")
    tag = data[pos]
    first = data[pos + 1]
    pos += 2
    if first < 0x80:
        size = first
    else:
        n = first & 0x7F
        if n == 0 or n > 4 or pos + n > len(data):
            raise BERError("bad length")
        size = int.from_bytes(data[pos : pos + n], "big")
        pos += n
    if pos + size > len(data):
        raise BERError("truncated element")
    return tag, data[pos : pos + size], pos + size


def header(buf: bytes, pos: int) -> tuple[int, int, int]:
    """(tag, content start, content end) of the element at `pos`; the fast path for readers
    that walk a message they have whole. Raises BERError (or IndexError) on bad bytes."""
    tag = buf[pos]
    first = buf[pos + 1]
    pos += 2
    if first & 0x80:
        n = first & 0x7F
        if n == 0 or n > 4:
            raise BERError("indefinite or oversized length")
        size = int.from_bytes(buf[pos : pos + n], "big")
        pos += n
    else:
        size = first
    end = pos + size
    if end > len(buf):
        raise BERError("truncated element")
    return tag, pos, end


def read_result(buf: bytes, pos: int) -> tuple[int, str, str]:
    """(resultCode, matchedDN, diagnosticMessage) of the LDAPResult whose components start at
    `pos` (just inside a response's operation tag). Raises BERError (or IndexError)."""
    _, s, e = header(buf, pos)
    code = int.from_bytes(buf[s:e], "big")
    _, s2, e2 = header(buf, e)
    _, s3, e3 = header(buf, e2)
    return code, buf[s2:e2].decode("utf-8", "replace"), buf[s3:e3].decode("utf-8", "replace")


def read_modify(raw: bytes) -> tuple[int, bytes, list[tuple[int, bytes, list[bytes]]]] | None:
    """(message id, DN, [(operation, attribute, values)]) of a control-free ModifyRequest.

    None when `raw` is any other message (or carries controls): the caller decodes it the
    general way. ldaptor's decoder costs ~60% of a modify's server time; this is the hot path
    of a writeback cycle. Raises BERError or IndexError on malformed bytes.
    """
    _, pos, end = header(raw, 0)
    tag, s, e = header(raw, pos)
    if tag != INTEGER:
        return None
    msg_id = int.from_bytes(raw[s:e], "big", signed=True)
    tag, op_start, op_end = header(raw, e)
    if tag != APP_MODIFY_REQUEST or op_end != end:
        return None
    tag, s, e = header(raw, op_start)
    if tag != OCTET_STRING:
        return None
    dn = raw[s:e]
    tag, pos, list_end = header(raw, e)
    if tag != SEQUENCE or list_end != op_end:
        return None
    changes = []
    while pos < list_end:
        _, cs, change_end = header(raw, pos)
        tag, s, e = header(raw, cs)
        if tag != ENUMERATED:
            return None
        op = int.from_bytes(raw[s:e], "big")
        _, ps, _ = header(raw, e)
        tag, ns, ne = header(raw, ps)
        if tag != OCTET_STRING:
            return None
        tag, vpos, vend = header(raw, ne)
        if tag != SET:
            return None
        values = []
        while vpos < vend:
            _, vs, ve = header(raw, vpos)
            values.append(raw[vs:ve])
            vpos = ve
        changes.append((op, raw[ns:ne], values))
        pos = change_end
    return msg_id, dn, changes


def message_size(buffer: bytes | bytearray | memoryview) -> int | None:
    """Total size of the LDAPMessage at the start of `buffer`, or None if more bytes are needed.

    Raises BERError when the bytes cannot start an LDAPMessage (wrong tag, indefinite or
    absurd length), so a garbage stream is rejected at once instead of buffered forever.
    """
    if not buffer:
        return None
    if buffer[0] != SEQUENCE:
        raise BERError(f"expected an LDAPMessage (0x30), got 0x{buffer[0]:02x}")
    if len(buffer) < 2:
        return None
    first = buffer[1]
    if first < 0x80:
        return 2 + first
    n = first & 0x7F
    if n == 0 or n > 4:
        raise BERError("indefinite or oversized length")
    if len(buffer) < 2 + n:
        return None
    return 2 + n + int.from_bytes(buffer[2 : 2 + n], "big")


def _sequence_of_integer(value: bytes, what: str) -> tuple[int, bytes, int]:
    """(the leading INTEGER, the SEQUENCE's body, the position after it) of a control value
    that is SEQUENCE { INTEGER, ... }."""
    tag, body, _ = read_tlv(value)
    if tag != SEQUENCE:
        raise BERError(f"{what} is not a SEQUENCE")
    tag, number, pos = read_tlv(body)
    if tag != INTEGER or not number:
        raise BERError(f"{what} does not begin with an INTEGER")
    return int.from_bytes(number, "big", signed=True), body, pos


def read_paged_control(value: bytes) -> tuple[int, bytes]:
    """realSearchControlValue ::= SEQUENCE { size INTEGER, cookie OCTET STRING }."""
    size, body, pos = _sequence_of_integer(value, "paged results control value")
    tag, cookie, _ = read_tlv(body, pos)
    if tag != OCTET_STRING:
        raise BERError("paged results cookie is not an OCTET STRING")
    return size, cookie


def read_flag_control(value: bytes) -> int:
    """A control value of the form SEQUENCE { flag INTEGER } ([MS-ADTS] 3.1.1.3.4.1.5)."""
    return _sequence_of_integer(value, "control value")[0]


def paged_control_value(size: int, cookie: bytes) -> bytes:
    return sequence(integer(size), octets(cookie))

"""The LDAPv3 wire protocol of the fake AD, on Twisted.

ldaptor decodes requests (its BER codec and filter classes); responses are written with our own
BER writer (`ber.py`), which is several times faster for search entries. Each request is handled
synchronously in the reactor thread against the shared `DirectoryService`. Garbage, truncated or
oversized messages end that one connection with a Notice of Disconnection (protocolError);
every other connection keeps being served.

What the server implements is declared once, in OPERATIONS, CONTROLS and EXTENDED_OPERATIONS:
it dispatches on them, the root DSE lists them and the docs' support matrix is generated from
them (`support.py`). Every refusal is a constructor of `errors.py`. Binds other than simple
(NTLM through Sicily or SASL GSS-SPNEGO) are `sasl.py`'s.
"""

from __future__ import annotations

import itertools
import logging
import secrets
import time
from collections.abc import Iterator, Sized
from dataclasses import dataclass, field
from typing import Any, ClassVar, Final, Protocol, cast

from ldaptor.protocols import pureber, pureldap
from twisted.internet import interfaces, protocol
from twisted.internet import reactor as _reactor
from twisted.internet.protocol import connectionDone
from twisted.python.failure import Failure

from harness.core import ber, clock
from harness.core.adschema import AttributeType, Syntax
from harness.core.ber import (
    MOD_ADD,
    MOD_DELETE,
    MOD_REPLACE,
    NOTICE_OF_DISCONNECTION_OID,
    PAGED_RESULTS_OID,
    SCOPE_BASE,
)
from harness.core.dn import InvalidDN, normalize_dn
from harness.core.ldapresult import LdapError, Result
from mockservers import idle
from mockservers.directory import controls as controls_
from mockservers.directory import dirsync, errors, notify, referrals
from mockservers.directory.acl import (
    ALLOWED_ATTRIBUTES_EFFECTIVE,
    Principal,
    writable_attributes,
)
from mockservers.directory.dnforms import (
    EXTENDED_DN_OID,
    BadDNForm,
    extended_dn,
    is_alternative,
    parse_alternative,
    parse_well_known,
    well_known_target,
)
from mockservers.directory.domain import DC_NAME
from mockservers.directory.domain import server_dn as dc_server_dn
from mockservers.directory.entry import LISTED_DERIVED, Entry, Values
from mockservers.directory.filters import CompiledFilter, compile_filter, filter_text
from mockservers.directory.ntlm import Target
from mockservers.directory.sasl import SASL_MECHANISMS, SIMPLE, BindRequest, Pending
from mockservers.directory.sasl import step as sasl_step
from mockservers.directory.seed import QUERY_POLICY
from mockservers.directory.service import DirectoryService
from mockservers.directory.sorting import SORT_OID, SortPlan, plan, read_sort_keys
from mockservers.directory.store import LINK_SIDES, LINKED_ATTRIBUTES, TOKEN_GROUPS
from mockservers.directory.subschema import SCHEMA_ATTRIBUTES, subschema_dn
from mockservers.directory.tombstones import SHOW_DELETED_OID, shows_deleted
from mockservers.idle import IdleWork

log = logging.getLogger(__name__)
WHOAMI_OID = "1.3.6.1.4.1.4203.1.11.3"  # RFC 4532
STARTTLS_OID = "1.3.6.1.4.1.1466.20037"  # RFC 4511 4.14
reactor: Any = _reactor


# What this protocol uses of Twisted's transport and delayed calls. Their zope interfaces
# declare methods without `self`, which mypy cannot check calls against.
class _Transport(Protocol):
    def write(self, data: bytes) -> None: ...

    def loseConnection(self) -> None: ...


class _DelayedCall(Protocol):
    def active(self) -> bool: ...

    def cancel(self) -> None: ...


class _Requests(pureldap.LDAPBERDecoderContext):
    # ldaptor's operations, but binds decoded by `sasl.BindRequest`: ldaptor's knows neither
    # Sicily's authentication choices nor how to refuse them.
    Identities: ClassVar[dict[int, type]] = {
        **pureldap.LDAPBERDecoderContext.Identities,
        BindRequest.tag: BindRequest,
    }


_DECODER = pureldap.LDAPBERDecoderContext_TopLevel(
    inherit=pureldap.LDAPBERDecoderContext_LDAPMessage(
        fallback=_Requests(fallback=pureber.BERDecoderContext()),
        inherit=_Requests(fallback=pureber.BERDecoderContext()),
    )
)


@dataclass(frozen=True, slots=True)
class Operation:
    """One LDAP operation the server reads (RFC 4511 4.2-4.14)."""

    name: str  # the fault plan's name for it (mockservers.faults), and the handler's suffix
    title: str
    request_tag: int
    response_tag: int | None  # None: the operation has no answer (unbind, abandon)
    requests: tuple[str, ...]  # ldaptor's classes for its requests

    @property
    def method(self) -> str:
        """The `LdapProtocol` method that serves it."""
        return "_op_" + self.name


# What the server dispatches on: a request no row names ends the connection (protocolError).
OPERATIONS: tuple[Operation, ...] = (
    Operation("bind", "Bind (simple, SASL, Sicily)", ber.APP_BIND_REQUEST,
              ber.APP_BIND_RESPONSE, ("BindRequest",)),
    Operation("unbind", "Unbind", ber.APP_UNBIND_REQUEST, None, ("LDAPUnbindRequest",)),
    Operation("search", "Search", ber.APP_SEARCH_REQUEST, ber.APP_SEARCH_DONE,
              ("LDAPSearchRequest",)),
    Operation("modify", "Modify", ber.APP_MODIFY_REQUEST, ber.APP_MODIFY_RESPONSE,
              ("LDAPModifyRequest",)),
    Operation("add", "Add", ber.APP_ADD_REQUEST, ber.APP_ADD_RESPONSE, ("LDAPAddRequest",)),
    Operation("delete", "Delete", ber.APP_DEL_REQUEST, ber.APP_DEL_RESPONSE,
              ("LDAPDelRequest",)),
    Operation("moddn", "Modify DN", ber.APP_MODDN_REQUEST, ber.APP_MODDN_RESPONSE,
              ("LDAPModifyDNRequest",)),
    Operation("compare", "Compare", ber.APP_COMPARE_REQUEST, ber.APP_COMPARE_RESPONSE,
              ("LDAPCompareRequest",)),
    # Every operation completes before the next is read, but for an open notification search.
    Operation("abandon", "Abandon", ber.APP_ABANDON_REQUEST, None, ("LDAPAbandonRequest",)),
    # ldaptor decodes the extended requests it knows into their own classes.
    Operation("extended", "Extended", ber.APP_EXTENDED_REQUEST, ber.APP_EXTENDED_RESPONSE,
              ("LDAPExtendedRequest", "LDAPPasswordModifyRequest", "LDAPStartTLSRequest")),
)  # fmt: skip
_BY_REQUEST = {name: op for op in OPERATIONS for name in op.requests}
# Request tag -> the operation a fault may replace, and the tag of the answer sent in its place.
_FAULTABLE = {op.request_tag: op for op in OPERATIONS if op.response_tag is not None}


@dataclass(frozen=True, slots=True)
class Control:
    """A request control the server honours (RFC 4511 4.1.11)."""

    oid: str
    title: str
    operations: frozenset[str]  # names of the operations it applies to


# Controls by OID; an unknown critical one is refused (unavailableCriticalExtension), an unknown
# non-critical one ignored. Listed as supportedControl in the root DSE.
# LDAP_SERVER_RANGE_RETRIEVAL_NOERR_OID ([MS-ADTS] 3.1.1.3.4.1.22): a range starting past a
# linked attribute's last value returns no values instead of operationsError.
RANGE_NOERR_OID: Final = "1.2.840.113556.1.4.1948"
CONTROLS: dict[str, Control] = {
    c.oid: c
    for c in (
        Control(PAGED_RESULTS_OID, "Paged results (RFC 2696)", frozenset({"search"})),
        Control(RANGE_NOERR_OID, "Range retrieval, no error ([MS-ADTS] 3.1.1.3.4.1.22)",
                frozenset({"search"})),
        Control(EXTENDED_DN_OID, "Extended DN ([MS-ADTS] 3.1.1.3.4.1.5)", frozenset({"search"})),
        Control(SORT_OID, "Server-side sort (RFC 2891), one key", frozenset({"search"})),
        Control(SHOW_DELETED_OID, "Show deleted: tombstones ([MS-ADTS] 3.1.1.3.4.1.14)",
                frozenset({"search", "modify"})),
        Control(dirsync.DIRSYNC_OID, "DirSync ([MS-ADTS] 3.1.1.3.4.1.3)", frozenset({"search"})),
        Control(notify.NOTIFICATION_OID, "Change notification ([MS-ADTS] 3.1.1.3.4.1.9)",
                frozenset({"search"})),
        Control(referrals.DOMAIN_SCOPE_OID,
                "Domain scope: no continuation references ([MS-ADTS] 3.1.1.3.4.1)",
                frozenset({"search"})),
        Control(referrals.SEARCH_OPTIONS_OID,
                "Search options: domain scope, phantom root ([MS-ADTS] 3.1.1.3.4.1)",
                frozenset({"search"})),
    )
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class ExtendedOperation:
    """An extended request the server answers (RFC 4511 4.12)."""

    oid: str
    title: str
    method: str  # the `LdapProtocol` method that serves it


# Extended operations by request OID; any other is refused. Listed as supportedExtension.
EXTENDED_OPERATIONS: dict[str, ExtendedOperation] = {
    x.oid: x
    for x in (
        ExtendedOperation(WHOAMI_OID, "Who am I? (RFC 4532)", "_ext_whoami"),
        ExtendedOperation(STARTTLS_OID, "StartTLS (RFC 4511 4.14)", "_ext_starttls"),
    )
}

_NAME_TLV: dict[str, bytes] = {}
_SCAN_INSTEAD = 20_000  # candidates above this: walk the scope instead


def _name_tlv(name: str) -> bytes:
    tlv = _NAME_TLV.get(name)
    if tlv is None:
        tlv = _NAME_TLV[name] = ber.octets(name.encode("utf-8"))
    return tlv


def _id_and_op(raw: bytes) -> tuple[int, Operation | None]:
    """The message id and operation of a whole LDAPMessage (None: no answer to fault)."""
    _, body, _ = ber.read_tlv(raw)
    _, msg_id, pos = ber.read_tlv(body)
    return int.from_bytes(msg_id, "big", signed=True), _FAULTABLE.get(body[pos])


def _text(v: bytes | str) -> str:
    return v.decode("utf-8") if isinstance(v, bytes) else v


def _dn_text(v: bytes | str) -> str:
    """A DN as text; one that is not UTF-8 is invalidDNSyntax, as any other malformed DN."""
    try:
        return _text(v)
    except UnicodeDecodeError:
        raise errors.invalid_dn(repr(v)) from None


def _refusal(tag: int, e: LdapError) -> bytes:
    """The response with tag `tag` that carries error `e`."""
    return ber.result(tag, e.code, e.matched_dn, e.message)


def _raw(v: bytes | str) -> bytes:
    return v if isinstance(v, bytes) else v.encode("utf-8")


@dataclass(slots=True)
class Selection:
    """Which attributes a search returns: all user attributes, '+', named ones, or none;
    `writable`: the constructed allowedAttributesEffective was asked for by name (what it is
    chosen from, else None); `ranges`: the value windows asked for (``member;range=0-*``), by
    attribute; `max_values`: MaxValRange, the most values of one attribute an entry returns;
    `past_end_ok`: the range-retrieval no-error control was sent."""

    all_user: bool
    operational: bool
    named: list[AttributeType]
    writable: tuple[str, ...] | None = None
    schema_attributes: tuple[str, ...] = ()  # of the subschema entry (subschema.py)
    ranges: dict[str, tuple[int, int | None]] = field(default_factory=dict)
    max_values: int = QUERY_POLICY["MaxValRange"]
    past_end_ok: bool = False
    token_groups: bool = False  # the constructed tokenGroups was asked for by name
    base_search: bool = True  # tokenGroups is served to base searches only
    extended_dn: int | None = None  # the extended DN control's flag, if it was sent

    @classmethod
    def parse(
        cls, requested: list[bytes], svc: DirectoryService, controls: Any = None
    ) -> Selection:
        names = [_text(a).strip() for a in requested]
        all_user = not names or "*" in names
        max_values = svc.limits.max_val_range
        if names == ["1.1"]:
            return cls(False, False, [], max_values=max_values)
        named = []
        writable = None
        token_groups = False
        ranges: dict[str, tuple[int, int | None]] = {}
        published = {a.casefold(): a for a in SCHEMA_ATTRIBUTES}
        wanted = dict.fromkeys(published.values()) if "+" in names else {}
        for n in names:
            if n in ("*", "+", "1.1"):
                continue
            if n.casefold() == ALLOWED_ATTRIBUTES_EFFECTIVE.casefold():
                writable = writable_attributes(svc.store.schema)
                continue
            if n.casefold() == TOKEN_GROUPS.casefold():
                token_groups = True
                continue
            if n.casefold() in published:
                wanted[published[n.casefold()]] = None
                continue
            t = svc.store.schema.get(n)
            if t is None:
                continue
            window = value_range(n)
            if window is not None:
                ranges[t.name] = window
            if t not in named:
                named.append(t)
        past_end_ok = controls_.has(controls, RANGE_NOERR_OID)
        extended = None
        found = controls_.find(controls, EXTENDED_DN_OID)
        if found is not None:
            value = found[1]
            try:  # no value: flag 0
                extended = ber.read_flag_control(value) if value else 0
            except ber.BERError as e:
                raise errors.bad_control_value(EXTENDED_DN_OID, str(e)) from None
            if extended not in (0, 1):
                raise errors.bad_control_value(EXTENDED_DN_OID, f"flag {extended}")
        return cls(
            all_user,
            "+" in names,
            named,
            writable,
            tuple(wanted),
            ranges,
            max_values,
            past_end_ok,
            token_groups,
            extended_dn=extended,
        )

    def window(self, name: str, values: Values) -> tuple[bytes, Values]:
        """The attribute's name TLV and the values to send: all of them, or (range retrieval,
        [MS-ADTS] 3.1.1.3.1.3.3) the window asked for, at most MaxValRange values, under
        ``name;range=low-high`` (``low-*`` when the window reaches the last value)."""
        asked = self.ranges.get(name)
        if asked is None and len(values) <= self.max_values:
            return _name_tlv(name), values
        low, high = asked if asked is not None else (0, None)
        last = len(values) - 1
        if low > last and not self.past_end_ok and name in LINKED_ATTRIBUTES:
            raise errors.range_past_end(name, low, len(values))
        end = last if high is None else min(high, last)
        end = min(end, low + self.max_values - 1)
        label = "*" if end >= last else str(end)
        return ber.octets(f"{name};range={low}-{label}".encode()), values[low : end + 1]


def value_range(name: str) -> tuple[int, int | None] | None:
    """The (low, high) of a ``;range=low-high`` or ``;range=low-*`` option (None: none asked);
    a range that does not parse, or runs backwards, is refused with unwillingToPerform."""
    for option in name.split(";")[1:]:
        key, _, spec = option.partition("=")
        if key.strip().casefold() != "range":
            continue
        low_text, dash, high_text = spec.partition("-")
        try:
            if not dash or not low_text.isdigit() or not (high_text == "*" or high_text.isdigit()):
                raise ValueError
            low, high = int(low_text), None if high_text == "*" else int(high_text)
        except ValueError:
            raise errors.unwilling(f"the value range {option!r} is malformed") from None
        if high is not None and high < low:
            raise errors.unwilling(f"the value range {option!r} ends before it starts")
        return low, high
    return None


@dataclass(slots=True)
class PagedSearch:
    """Server-side state of a paged search between pages; the cookie is bound to the query."""

    signature: tuple
    matches: Iterator[Entry]
    pending: Entry | None = None
    returned: int = 0


@dataclass(slots=True)
class _Conn:
    principal: Principal | None = None
    pages: dict[bytes, PagedSearch] = field(default_factory=dict)
    binding: Pending = None  # a multi-step bind in progress (NTLM's challenge, at most one)


class LdapProtocol(protocol.Protocol):
    """One client connection; once it opens a notification search, also its transport's
    streaming producer (IPushProducer's pause, resume and stop, below)."""

    def __init__(self, service: DirectoryService) -> None:
        self.svc = service
        self.buffer = bytearray()
        self.state = _Conn()
        self.closing = False
        self.faults = service.faults
        self.held: _DelayedCall | None = None  # a slow fault's delayed answer
        self.start_tls = False  # StartTLS answered: negotiate once the answer is written
        self.sent = 0  # bytes answered on this connection (the request log's per-operation size)
        self.pending: list[bytes] | None = None  # answers held back while `_drain` runs
        self.pending_size = 0
        self.outbox: notify.Outbox | None = None  # its open notification searches, if any

    # ------------------------------------------------------------------ framing
    def dataReceived(self, data: bytes) -> None:
        if self.closing:
            return
        idle.touch()
        self.buffer += data
        if self.held is None:  # a slow answer pending: its successors wait, in order
            self._drain()

    def _drain(self) -> None:
        # The answers to every request in this read go out in one write: pipelined modifies
        # make one TLS record per batch, not one per response.
        self.pending = []
        try:
            self._drain_requests()
        finally:
            self._flush(keep=False)

    def _drain_requests(self) -> None:
        while self.buffer and not self.closing and self.held is None:
            try:
                size = ber.message_size(self.buffer)
            except ber.BERError as e:
                self._disconnect(str(e))
                return
            if size is None:
                if len(self.buffer) > 16:  # a length field never needs more
                    self._disconnect("malformed message header")
                return
            if size > self.svc.limits.max_receive_buffer:
                self._disconnect(f"message of {size} bytes exceeds MaxReceiveBuffer")
                return
            if len(self.buffer) < size:
                return
            raw = bytes(self.buffer[:size])
            del self.buffer[:size]
            if self.faults.ldap_armed and self._inject(raw):
                continue
            self._handle(raw)

    def _handle(self, raw: bytes) -> None:
        """Decode one whole message and answer it."""
        try:
            fast = ber.read_modify(raw)
        except (ber.BERError, IndexError):
            fast = None  # the general decoder says what is wrong with it
        if fast is not None:
            self._fast_modify(*fast)
            return
        try:
            msg, used = pureber.berDecodeObject(_DECODER, raw)
        except Exception as e:  # ldaptor signals bad BER with assorted exceptions
            # AD's own comment; the decoder's exception is ours to log, not the client's to read.
            log.info("undecodable LDAP request: %s", type(e).__name__)
            self._disconnect("Error decoding ldap message")
            return
        if not isinstance(msg, pureldap.LDAPMessage) or used != len(raw):
            self._disconnect("not an LDAPMessage")
            return
        self._dispatch(msg)

    # ------------------------------------------------------------------ faults
    def _inject(self, raw: bytes) -> bool:
        """Apply the fault plan's verdict on this request; True when the fault consumed it."""
        try:
            msg_id, op = _id_and_op(raw)
        except (ber.BERError, IndexError):
            return False  # malformed: the normal path refuses it
        if op is None:
            return False  # unbind, abandon: no answer to fault
        fault = self.faults.take("ldap", op.name)
        if fault is None:
            return False
        if fault.kind in ("busy", "unavailable"):
            e = errors.busy() if fault.kind == "busy" else errors.unavailable()
            assert op.response_tag is not None  # _FAULTABLE holds only operations answered
            self._send(ber.message(msg_id, _refusal(op.response_tag, e)))
        elif fault.kind == "drop":
            log.info("fault %s: dropping the connection", fault.name)
            self.closing = True
            self.buffer.clear()
            self._close()
        else:  # slow: answer later without blocking the reactor; later requests queue behind
            self.held = reactor.callLater(fault.seconds, self._release, raw)
        return True

    def _release(self, raw: bytes) -> None:
        self.held = None
        if self.closing:
            return
        self._handle(raw)
        self._drain()

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        if self.held is not None and self.held.active():
            self.held.cancel()
        self.held = None
        if self.outbox is not None:
            self.outbox.end_all()

    def _disconnect(self, why: str, e: LdapError | None = None) -> None:
        """RFC 4511 4.4.1: Notice of Disconnection (protocolError unless `e`), then close."""
        log.info("closing LDAP connection: %s", why)
        e = e or errors.disconnect(why)
        if self.svc.log is not None:
            self._log("undecodable", None, int(e.code), e.message, None)
        op = ber.result(
            ber.APP_EXTENDED_RESPONSE,
            e.code,
            "",
            e.message,
            extra=ber.octets(NOTICE_OF_DISCONNECTION_OID.encode(), ber.CTX_RESPONSE_NAME),
        )
        self._flush(keep=False)  # what was answered before goes out before the notice
        self._transport().write(ber.message(0, op))
        self.closing = True
        self.buffer.clear()
        self._lose_connection()

    def _transport(self) -> _Transport:
        assert self.transport is not None, "used only between connectionMade and connectionLost"
        return cast(_Transport, self.transport)

    def _send(self, data: bytes) -> None:
        self.sent += len(data)
        if self.pending is None:
            self._transport().write(data)
            return
        self.pending.append(data)
        self.pending_size += len(data)
        if self.pending_size >= _FLUSH_AT:  # a long search result: bounded, sent as it grows
            self._flush(keep=True)

    def _flush(self, keep: bool) -> None:
        """Write what `_drain` held back; `keep`: go on holding back afterwards."""
        out, self.pending, self.pending_size = self.pending, ([] if keep else None), 0
        if out and self.transport is not None:
            self._transport().write(b"".join(out))

    def _close(self) -> None:
        self._flush(keep=False)
        self._lose_connection()

    def _lose_connection(self) -> None:
        if self.outbox is not None:  # Twisted closes no connection while a producer is on it
            self.outbox.end_all()
            self._transport().unregisterProducer()  # type: ignore[attr-defined]
            self.outbox = None
        self._transport().loseConnection()

    # ------------------------------------------------------------------ dispatch
    def _dispatch(self, msg: pureldap.LDAPMessage) -> None:
        req = msg.value
        name = type(req).__name__
        operation = _BY_REQUEST.get(name)
        if operation is None:
            self._disconnect(f"unsupported operation {name}")
            return
        handler = getattr(self, operation.method)
        tag = operation.response_tag
        if tag is None:
            handler(msg.id, req, msg.controls)
            return
        started = time.monotonic() if self.svc.log is not None else 0.0
        sent = self.sent
        try:
            self._check_controls(msg.controls, operation)
            answer = handler(msg.id, req, msg.controls)
            if answer is None:  # a notification search: its answers are entries, as things change
                return
            op, controls = answer
        except LdapError as e:
            op, controls = _refusal(tag, e), b""
        except UnicodeDecodeError:
            op, controls = _refusal(tag, errors.not_utf8()), b""
        except Exception:
            log.exception("LDAP %s failed", name)
            op, controls = _refusal(tag, errors.internal_error()), b""
        self._send(ber.message(msg.id, op, controls))
        if self.svc.log is not None:
            self._log_result(operation.name, _request_dn(req), op, started, req, sent)
        if self.start_tls:
            self._negotiate_tls()

    def _log_result(
        self,
        name: str,
        dn: str | None,
        op: bytes,
        started: float | None,
        req: Any = None,
        sent: int | None = None,
    ) -> None:
        """One operation's log record: its result code and diagnostic, read off the reply, and
        for a search its scope and filter; `sent`: the connection's byte count before it."""
        try:
            code, diagnostic = _result_of(op)
        except (ber.BERError, IndexError, ValueError):
            code, diagnostic = -1, ""
        extra: dict[str, Any] = {}
        if isinstance(req, pureldap.LDAPSearchRequest):
            extra["scope"] = _SCOPES.get(req.scope, str(req.scope))
            extra["filter"] = filter_text(req.filter)
        if sent is not None:
            extra["bytes"] = self.sent - sent
        self._log(name, dn, code, diagnostic, started, extra)

    def _log(
        self,
        name: str,
        dn: str | None,
        code: int,
        diagnostic: str,
        started: float | None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        assert self.svc.log is not None
        # zope.interface declares interface methods without self; mypy reads them as unbound.
        peer = self.transport.getPeer() if self.transport is not None else None  # type: ignore[misc]
        record: dict[str, Any] = {
            "tls": _is_tls(self.transport),
            "client": f"{getattr(peer, 'host', '?')}:{getattr(peer, 'port', '?')}",
            "op": name,
        }
        if dn is not None:
            record["dn"] = dn
        record.update(extra or {})
        principal = self.state.principal
        if principal is not None:
            record["bound_as"] = principal.dn
        record["result"] = code
        if diagnostic:
            record["diagnostic"] = diagnostic.strip()
        if started is not None:
            record["ms"] = round((time.monotonic() - started) * 1000, 1)
        self.svc.log.ldap(record, failed=code != Result.SUCCESS)

    def _check_controls(self, controls: list[Any] | None, operation: Operation) -> None:
        for oid, critical, _value in controls or ():
            known = CONTROLS.get(_text(oid))
            if critical and (known is None or operation.name not in known.operations):
                raise errors.unsupported_critical_extension(_text(oid))

    def _op_unbind(self, msg_id: int, req: pureldap.LDAPUnbindRequest, controls: Any) -> None:
        self.closing = True
        self._close()

    def _op_abandon(self, msg_id: int, req: pureldap.LDAPAbandonRequest, controls: Any) -> None:
        if self.outbox is not None:  # see OPERATIONS: only a notification search is open
            self.outbox.end(req.value)

    def _who(self) -> Principal:
        if self.state.principal is None:
            raise errors.bind_required()
        return self.state.principal

    def _ndn(self, dn: bytes | str, deleted: bool = False) -> str:
        try:
            text = _text(dn)
            if is_alternative(text):
                return self._named(text, deleted).ndn
            return self.svc.store.ndn_of(text) or normalize_dn(text)
        except (InvalidDN, BadDNForm, UnicodeDecodeError):
            raise errors.invalid_dn(_text(dn) if isinstance(dn, str) else repr(dn)) from None

    def _named(self, text: str, deleted: bool = False) -> Entry:
        """The object `<GUID=...>`, `<SID=...>` or `<WKGUID=...,dn>` names (dnforms), or
        (`deleted`: the show-deleted control) the tombstone `<GUID=...>` names; noSuchObject if
        none."""
        store = self.svc.store
        well_known = parse_well_known(text)
        if well_known is not None:
            guid, dn = well_known
            head = store.require(self._ndn(dn))
            for listing in ("wellKnownObjects", "otherWellKnownObjects"):
                target = well_known_target(head.attrs.get(listing, ()), guid)
                if target is not None:
                    hit = store.get_deleted(normalize_dn(target)) if deleted else None
                    return hit if hit is not None else store.require(normalize_dn(target))
            raise errors.no_such_object(head.dn)
        name, binary = parse_alternative(text)
        t = store.schema.get(name)
        assert t is not None
        for e in store.lookup(t, t.key(binary)):
            return e
        tomb = store.deleted_by_guid(binary) if deleted and t.name == "objectGUID" else None
        if tomb is not None:
            return tomb
        raise errors.no_such_object("")

    def _dn_values(self, t: AttributeType | None, values: list[bytes]) -> list[bytes]:
        """A DN-valued attribute's values with the alternative forms replaced by DNs."""
        if t is None or t.syntax is not Syntax.DN or not any(v[:1] == b"<" for v in values):
            return values
        try:
            return [self._named(_text(v)).dn.encode() if v[:1] == b"<" else v for v in values]
        except (BadDNForm, UnicodeDecodeError):
            raise errors.invalid_syntax(t.name) from None

    def _superior(self, dn: bytes | str) -> str:
        text = _text(dn)
        return self.svc.store.require(self._ndn(text)).dn if is_alternative(text) else text

    # ------------------------------------------------------------------ bind
    def _op_bind(self, msg_id: int, req: BindRequest, controls) -> tuple[bytes, bytes]:
        pending = self.state.binding
        self.state = _Conn()  # a bind, even a failed one, resets the connection's identity
        if self.outbox is not None:  # RFC 4511 4.2.1: and abandons what is outstanding
            self.outbox.end_all()
        tag = ber.APP_BIND_RESPONSE
        if req.version != 3:
            raise errors.unsupported_version()
        if req.choice != SIMPLE:
            return self._multi_step_bind(req, pending), b""
        name, password = _dn_text(req.dn), _raw(req.auth or b"")  # auth: bytes or str
        if name and password:
            self.state.principal = self.svc.authenticate(name, password)
        # An empty password is an unauthenticated bind: anonymous, as AD treats it.
        return ber.result(tag, Result.SUCCESS), b""

    def _multi_step_bind(self, req: BindRequest, pending: Pending) -> bytes:
        """NTLM through Sicily or SASL GSS-SPNEGO (`sasl.py`); the account it proves is bound
        through `authenticate`, exactly as a simple bind with its DN and password would be."""
        svc = self.svc
        target = Target(svc.netbios, svc.domain, DC_NAME)
        answer = sasl_step(req, pending, target, svc.account_secret)
        self.state.binding = answer.pending
        if answer.logon is not None:
            logon = answer.logon
            self.state.principal = svc.authenticate(logon.dn, logon.password.encode("utf-8"))
        return answer.response()

    # ------------------------------------------------------------------ search
    def _op_search(
        self, msg_id: int, req: pureldap.LDAPSearchRequest, controls
    ) -> tuple[bytes, bytes] | None:
        base = _dn_text(req.baseObject)
        if not base.strip() and req.scope == SCOPE_BASE:
            self._send(ber.message(msg_id, self._root_dse(req)))
            return ber.result(ber.APP_SEARCH_DONE, Result.SUCCESS), b""
        self._who()
        store = self.svc.store
        show_deleted = shows_deleted(controls)  # a tombstone may be the base (tombstones.py)
        base_ndn = self._ndn(base, show_deleted)
        tomb = store.get_deleted(base_ndn) if show_deleted else None
        base_entry = tomb if tomb is not None else store.require(base_ndn)
        if notify.requested(controls):
            self._watch(msg_id, req, base_entry, controls)
            return None
        # FilterError: refused
        flt = compile_filter(req.filter, store.schema, store.schema_nc, store, LINK_SIDES)
        sync = dirsync.read_request(controls)
        if sync is not None:
            return self._dirsync(msg_id, req, base_entry, flt, sync, controls)
        selection = Selection.parse(req.attributes, self.svc, controls)
        selection.base_search = req.scope == SCOPE_BASE
        sort = self._sort_request(controls)
        if sort is not None:
            order, critical = sort
            if order.code != Result.SUCCESS and critical:  # RFC 2891 1.2: no entries
                done = ber.result(ber.APP_SEARCH_DONE, Result.UNAVAILABLE_CRITICAL_EXTENSION)
                return done, order.response()
            op, done_controls = self._search(
                req, msg_id, base_ndn, base_entry, flt, selection, controls, order
            )
            return op, done_controls + order.response()
        return self._search(req, msg_id, base_ndn, base_entry, flt, selection, controls, None)

    # ------------------------------------------------------------------ change notification
    def _watch(self, msg_id: int, req: Any, base: Entry, controls: Any) -> None:
        """Open a notification search (notify.py): no answer now, an entry per change."""
        notify.check_filter(req.filter, self.svc.store.schema)
        selection = Selection.parse(req.attributes, self.svc, controls)
        selection.base_search = req.scope == SCOPE_BASE
        if selection.token_groups and not selection.base_search:
            raise errors.token_groups_not_base()  # as a search would, but before any change
        outbox = self.outbox
        if outbox is None:
            limit = self.svc.limits.notification_backlog
            outbox = notify.Outbox(self.svc.notifier, self._send, self._overflow, limit)
            self._transport().registerProducer(self, True)  # type: ignore[attr-defined]
            self.outbox = outbox
        if msg_id not in outbox.subs and (
            len(outbox.subs) >= self.svc.limits.max_notifications_per_connection
        ):
            raise errors.too_many_notifications()
        who, types_only = self._who(), bool(req.typesOnly)

        def deliver(sub: notify.Subscription, e: Entry) -> None:
            if self.closing or outbox.subs.get(sub.msg_id) is not sub:
                return
            try:
                data = self._encode_entry(sub.msg_id, e, selection, types_only, who)
            except LdapError as err:  # the search ends with the error, as a search would
                outbox.end(sub.msg_id)
                outbox.push(sub.msg_id, ber.message(sub.msg_id, _refusal(ber.APP_SEARCH_DONE, err)))
                return
            outbox.push(sub.msg_id, data)

        outbox.open(notify.Subscription(msg_id, base, req.scope, deliver))

    def _overflow(self) -> None:
        if not self.closing:
            why = "change notifications were not read"
            self._disconnect(why, errors.notification_backlog_full())

    def pauseProducing(self) -> None:
        if self.outbox is not None:
            self.outbox.pause()

    def resumeProducing(self) -> None:
        if self.outbox is not None and not self.closing:
            self.outbox.resume()

    def stopProducing(self) -> None:
        return  # connectionLost ends the searches

    def _sort_request(self, controls: Any) -> tuple[SortPlan, bool] | None:
        found = controls_.find(controls, SORT_OID)
        if found is None:
            return None
        critical, value = found
        try:
            keys = read_sort_keys(value or b"")
        except ber.BERError as e:
            raise errors.bad_control_value(SORT_OID, str(e)) from None
        return plan(keys, self.svc.store.schema), critical

    def _search(
        self,
        req: pureldap.LDAPSearchRequest,
        msg_id: int,
        base_ndn: str,
        base_entry: Entry,
        flt: CompiledFilter,
        selection: Selection,
        controls: Any,
        order: SortPlan | None,
    ) -> tuple[bytes, bytes]:
        who = self._who()
        paged = self._paged_request(controls)
        max_page = self.svc.limits.max_page_size
        size_limit = req.sizeLimit or 0
        below = referrals.options(controls)

        def found() -> Iterator[Entry]:
            matches = self._matches(base_entry, req.scope, flt)
            if shows_deleted(controls):  # then the tombstones in scope (tombstones.py)
                deleted = self.svc.store.deleted_in_scope(base_ndn, req.scope)
                matches = itertools.chain(matches, filter(flt.matches, deleted))
            if below.phantom_root:  # the naming contexts below are searched, not referred to
                inner = SCOPE_BASE if req.scope == ber.SCOPE_ONE else ber.SCOPE_SUBTREE
                roots = referrals.phantom_roots(self.svc.store, base_entry, req.scope)
                matches = itertools.chain(matches, *(self._matches(r, inner, flt) for r in roots))
            return matches if order is None else iter(order.apply(matches))

        def refer() -> None:  # the naming contexts below the base, once per search
            if below.refer and self.svc.limits.continuation_references:
                roots = referrals.subordinates(self.svc.store, base_entry, req.scope)
                self._send(referrals.references(msg_id, roots, self.svc.domain, req.scope))

        if paged is None:
            limit = min(size_limit, max_page) if size_limit else max_page
            matches = found()
            out: list[bytes] = []
            for sent, entry in enumerate(matches):
                if sent == limit:
                    self._send(b"".join(out))
                    return ber.result(ber.APP_SEARCH_DONE, Result.SIZE_LIMIT_EXCEEDED), b""
                out.append(self._encode_entry(msg_id, entry, selection, req.typesOnly, who))
                if len(out) >= 256:
                    self._send(b"".join(out))
                    out.clear()
            self._send(b"".join(out))
            refer()
            return ber.result(ber.APP_SEARCH_DONE, Result.SUCCESS), b""

        page_size, cookie = paged
        sorted_by = None if order is None or order.t is None else (order.t.name, order.reverse)
        signature = (
            base_ndn,
            req.scope,
            repr(req.filter),
            tuple(req.attributes),
            size_limit,
            sorted_by,
        )
        if cookie:
            state = self.state.pages.pop(cookie, None)
            if state is None or state.signature != signature:
                raise errors.unwilling("the paged results cookie is invalid for this search")
        else:
            state = PagedSearch(signature, found())
        if page_size <= 0:  # RFC 2696: size 0 abandons the paged search
            return ber.result(ber.APP_SEARCH_DONE, Result.SUCCESS), self._paged_done(b"")
        page = min(page_size, max_page)
        # The entries counted against the client's sizeLimit: this request's, or (whole-search)
        # every page's so far (Limits.paged_size_limit).
        counted = state.returned if self.svc.limits.paged_size_limit == "whole-search" else 0
        out = []
        for _ in range(page):
            pending = state.pending if state.pending is not None else next(state.matches, None)
            state.pending = None
            if pending is None:
                break
            if size_limit and counted >= size_limit:
                self._send(b"".join(out))
                return ber.result(ber.APP_SEARCH_DONE, Result.SIZE_LIMIT_EXCEEDED), b""
            out.append(self._encode_entry(msg_id, pending, selection, req.typesOnly, who))
            state.returned += 1
            counted += 1
        self._send(b"".join(out))
        if not cookie:
            refer()  # with the first page, as Samba sends them
        state.pending = next(state.matches, None)
        if state.pending is None:
            return ber.result(ber.APP_SEARCH_DONE, Result.SUCCESS), self._paged_done(b"")
        if len(self.state.pages) >= self.svc.limits.max_paged_searches_per_connection:
            self.state.pages.pop(next(iter(self.state.pages)))  # drop the oldest, as AD does
        new_cookie = secrets.token_bytes(12)
        self.state.pages[new_cookie] = state
        return ber.result(ber.APP_SEARCH_DONE, Result.SUCCESS), self._paged_done(new_cookie)

    def _dirsync(
        self,
        msg_id: int,
        req: pureldap.LDAPSearchRequest,
        base: Entry,
        flt: CompiledFilter,
        sync: dirsync.Request,
        controls: Any,
    ) -> tuple[bytes, bytes]:
        """A DirSync search (dirsync.py); the extended DN control applies to its entries."""
        ext = Selection.parse([], self.svc, controls).extended_dn

        def encode(e: Entry, dn: str, attrs: list[tuple[str, Values]]) -> bytes:
            if ext is not None and dn:
                dn = self._extended(e, ext)
                attrs = [(n, self._dn_form(n, v, ext)) for n, v in attrs]
            parts = [ber.attribute(_name_tlv(n), v, req.typesOnly) for n, v in attrs]
            body = ber.octets(dn.encode("utf-8")) + ber.sequence(*parts)
            return ber.message(msg_id, ber.tlv(ber.APP_SEARCH_ENTRY, body))

        svc = self.svc
        answer = dirsync.search(
            svc.store, svc.policy, self._who(), base, flt.matches,
            [_text(a) for a in req.attributes], sync, encode, svc.limits.max_page_size,
        )  # fmt: skip
        self._send(b"".join(answer.entries))
        return ber.result(ber.APP_SEARCH_DONE, Result.SUCCESS), answer.control

    def _dn_form(self, name: str, values: Values, flag: int) -> Values:
        t = self.svc.store.schema.get(name)
        return self._extended_values(values, flag) if t and t.syntax is Syntax.DN else values

    def _matches(self, base: Entry, scope: int, flt: CompiledFilter) -> Iterator[Entry]:
        store = self.svc.store
        candidates = flt.candidates(store)
        if candidates is not None and not (
            # An unselective index hit ((objectClass=user): every user) is slower to walk in
            # hash order with scope checks than the tree itself.
            isinstance(candidates, Sized) and len(candidates) > _SCAN_INSTEAD
        ):
            pool = list(candidates)
            check_scope = True
        else:
            pool = store.scope_entries(base, scope)
            check_scope = False
        matches = flt.matches
        for e in pool:
            store.examined += 1
            if check_scope and not store.in_scope(e, base.ndn, scope):
                continue
            if not check_scope and store.entries.get(e.ndn) is not e:
                continue  # deleted between pages
            if matches(e):
                yield e

    def _paged_request(self, controls) -> tuple[int, bytes] | None:
        found = controls_.find(controls, PAGED_RESULTS_OID)
        if found is None:
            return None
        try:
            return ber.read_paged_control(found[1] or b"")
        except ber.BERError as e:
            raise errors.bad_paged_control(str(e)) from None

    def _paged_done(self, cookie: bytes) -> bytes:
        return ber.control(PAGED_RESULTS_OID, ber.paged_control_value(0, cookie))

    def _encode_entry(
        self, msg_id: int, e: Entry, sel: Selection, types_only: bool, who: Principal
    ) -> bytes:
        parts: list[bytes] = []
        attribute = ber.attribute
        seen: set[str] = set()
        window, limit, ranged = sel.window, sel.max_values, bool(sel.ranges)
        ext = sel.extended_dn
        if sel.all_user:
            items = e.attrs.items() if ext is None else self._extended_items(e, ext)
            for name, values in items:
                if ranged or len(values) > limit:  # range retrieval: rare, so kept off this path
                    parts.append(attribute(*window(name, values), types_only))
                else:
                    parts.append(attribute(_name_tlv(name), values, types_only))
                seen.add(name)
            for name in LISTED_DERIVED:
                if name in seen:
                    continue  # stored (instanceType of a naming context's head)
                t = self.svc.store.schema.get(name)
                values = e.values(t)  # type: ignore[arg-type]
                if ext is not None and name == "distinguishedName":
                    values = self._extended_values(values, ext)
                parts.append(attribute(_name_tlv(name), values, types_only))
                seen.add(name)
        extra = list(sel.named)
        if sel.operational:
            schema = self.svc.store.schema
            extra += [schema.get(n) for n in ("createTimeStamp", "modifyTimeStamp")]  # type: ignore[misc]
        for t in extra:
            if t.name in seen:
                continue
            seen.add(t.name)
            values = e.values(t)
            if ext is not None and t.syntax is Syntax.DN:
                values = self._extended_values(values, ext)
            if not values:
                continue
            if ranged or len(values) > limit:
                parts.append(attribute(*window(t.name, values), types_only))
            else:
                parts.append(attribute(_name_tlv(t.name), values, types_only))
        if sel.schema_attributes and e.ndn == self.svc.subschema_ndn:
            published = self.svc.subschema()
            for name in sel.schema_attributes:
                parts.append(attribute(_name_tlv(name), published.values(name), types_only))
        if sel.token_groups:
            if not sel.base_search:
                # Worked out per object, so AD serves it to base searches only; the refusal
                # comes with the first entry found (a search that finds none succeeds).
                raise errors.token_groups_not_base()
            sids = tuple(self.svc.store.token_groups(e))
            if sids:
                parts.append(attribute(*window(TOKEN_GROUPS, sids), types_only))
        if sel.writable is not None:
            allowed = [a.encode() for a in self.svc.policy.allowed_attributes(who, e, sel.writable)]
            if allowed:
                parts.append(
                    attribute(_name_tlv(ALLOWED_ATTRIBUTES_EFFECTIVE), allowed, types_only)
                )
        dn = e.dn if ext is None else self._extended(e, ext)
        body = ber.octets(dn.encode("utf-8")) + ber.sequence(*parts)
        return ber.message(msg_id, ber.tlv(ber.APP_SEARCH_ENTRY, body))

    @staticmethod
    def _extended(e: Entry, flag: int) -> str:
        guid, sid = e.attrs.get("objectGUID", ()), e.attrs.get("objectSid", ())
        return extended_dn(e.dn, guid[0] if guid else None, sid[0] if sid else None, flag)

    def _extended_values(self, values: Values, flag: int) -> Values:
        """DN values in the extended form; one naming no object here stays as it is."""
        store = self.svc.store
        out = []
        for v in values:
            text = v.decode("utf-8", "replace")
            try:
                named = store.get(store.ndn_of(text) or normalize_dn(text))
            except InvalidDN:
                named = None
            out.append(v if named is None else self._extended(named, flag).encode("utf-8"))
        return tuple(out)

    def _extended_items(self, e: Entry, flag: int) -> list[tuple[str, Values]]:
        schema = self.svc.store.schema
        items = []
        for name, values in e.attrs.items():
            t = schema.get(name)
            if t is not None and t.syntax is Syntax.DN:
                values = self._extended_values(values, flag)
            items.append((name, values))
        return items

    def _root_dse(self, req: pureldap.LDAPSearchRequest) -> bytes:
        svc, store = self.svc, self.svc.store
        base = svc.base_dn
        config = f"CN=Configuration,{base}"
        host = f"{DC_NAME}.{svc.domain}"
        server_dn = dc_server_dn(base)  # seeded with its NTDS Settings (domain.py)
        attrs: dict[str, list[str]] = {
            "currentTime": [clock.now().strftime("%Y%m%d%H%M%S.0Z")],
            "subschemaSubentry": [subschema_dn(f"CN=Schema,{config}")],
            "dsServiceName": [f"CN=NTDS Settings,{server_dn}"],
            "namingContexts": [base, config, f"CN=Schema,{config}"],
            "defaultNamingContext": [base],
            "rootDomainNamingContext": [base],
            "configurationNamingContext": [config],
            "schemaNamingContext": [f"CN=Schema,{config}"],
            # What AD DS DCs advertise (MS-ADTS 3.1.1.3.4.3): clients tell AD from other LDAP
            # servers by LDAP_CAP_ACTIVE_DIRECTORY_OID, e.g. before asking for AD's
            # constructed attributes such as allowedAttributesEffective.
            "supportedCapabilities": list(AD_CAPABILITIES),
            "supportedControl": list(CONTROLS),
            "supportedExtension": list(EXTENDED_OPERATIONS),
            "supportedLDAPVersion": ["3"],
            "supportedLDAPPolicies": list(_POLICY_NAMES),
            "supportedSASLMechanisms": list(SASL_MECHANISMS),
            "highestCommittedUSN": [str(store.highest_usn)],
            "dnsHostName": [host],
            "ldapServiceName": [f"{svc.domain}:{DC_NAME.lower()}$@{svc.domain.upper()}"],
            "serverName": [server_dn],
            "isSynchronized": ["TRUE"],
            "isGlobalCatalogReady": ["FALSE"],
            "domainFunctionality": ["7"],
            "forestFunctionality": ["7"],
            "domainControllerFunctionality": ["7"],
            "vendorName": ["exwb-harness (fake Active Directory)"],
        }
        wanted = {_text(a).casefold() for a in req.attributes}
        everything = not wanted or "*" in wanted or "+" in wanted
        parts = [
            ber.attribute(_name_tlv(name), [v.encode("utf-8") for v in values], req.typesOnly)
            for name, values in attrs.items()
            if values and (everything or name.casefold() in wanted)
        ]
        return ber.tlv(ber.APP_SEARCH_ENTRY, ber.octets(b"") + ber.sequence(*parts))

    # ------------------------------------------------------------------ writes
    def _fast_modify(self, msg_id: int, dn: bytes, raw: list[tuple[int, bytes, list[bytes]]]):
        """A ModifyRequest decoded by `ber.read_modify`: the same checks and answer."""
        try:
            changes = [(op, _text(name), values) for op, name, values in raw]
            op = self._modify(dn, changes)
        except LdapError as e:
            op = _refusal(ber.APP_MODIFY_RESPONSE, e)
        except UnicodeDecodeError:  # an attribute description that is not UTF-8
            op = _refusal(ber.APP_MODIFY_RESPONSE, errors.not_utf8())
        except Exception:
            log.exception("LDAP modify failed")
            op = _refusal(ber.APP_MODIFY_RESPONSE, errors.internal_error())
        self._send(ber.message(msg_id, op))
        if self.svc.log is not None:
            self._log_result("modify", dn.decode("utf-8", "replace"), op, None)

    def _op_modify(
        self, msg_id: int, req: pureldap.LDAPModifyRequest, controls
    ) -> tuple[bytes, bytes]:
        changes = []
        try:
            for item in req.modification:
                desc = item[1]
                values = [_raw(v.value) for v in desc[1]] if len(desc) > 1 else []
                changes.append((item[0].value, _text(desc[0].value), values))
        except (IndexError, TypeError, AttributeError):  # ldaptor decodes any BER it is given
            raise errors.malformed_modifications() from None
        if shows_deleted(controls) and self.svc.store.get_deleted(self._ndn(req.object, True)):
            raise errors.tombstone_modified()  # no undelete (tombstones.py)
        return self._modify(req.object, changes), b""

    def _modify(self, dn: bytes | str, changes: list[tuple[int, str, list[bytes]]]) -> bytes:
        who = self._who()
        store = self.svc.store
        ndn = self._ndn(dn)
        entry = store.require(ndn)
        for op, _name, _values in changes:
            if op not in (MOD_ADD, MOD_DELETE, MOD_REPLACE):
                raise errors.unknown_modify_operation(op)
        names = []
        resolved = []
        for op, name, values in changes:
            t = store.schema.get(name)
            if t is None:
                raise errors.unknown_attribute(name)
            names.append(t.name)
            resolved.append((op, name, self._dn_values(t, values)))
        self.svc.policy.check_modify(who, entry, names)
        store.modify(ndn, resolved)
        return ber.result(ber.APP_MODIFY_RESPONSE, Result.SUCCESS)

    def _op_add(self, msg_id: int, req: pureldap.LDAPAddRequest, controls) -> tuple[bytes, bytes]:
        self.svc.policy.check_admin(self._who())
        attributes = []
        for item in req.attributes:
            name_obj, values_obj = item[0], item[1]
            name = _text(getattr(name_obj, "value", name_obj))
            values = [_raw(v.value) for v in values_obj]
            attributes.append((name, self._dn_values(self.svc.store.schema.get(name), values)))
        self.svc.store.add(_text(req.entry), attributes)
        return ber.result(ber.APP_ADD_RESPONSE, Result.SUCCESS), b""

    def _op_delete(
        self, msg_id: int, req: pureldap.LDAPDelRequest, controls
    ) -> tuple[bytes, bytes]:
        self.svc.policy.check_admin(self._who())
        self.svc.store.delete(self._ndn(req.value))
        return ber.result(ber.APP_DEL_RESPONSE, Result.SUCCESS), b""

    def _op_moddn(
        self, msg_id: int, req: pureldap.LDAPModifyDNRequest, controls
    ) -> tuple[bytes, bytes]:
        self.svc.policy.check_admin(self._who())
        superior = self._superior(req.newSuperior) if req.newSuperior is not None else None
        self.svc.store.rename(
            self._ndn(req.entry), _text(req.newrdn), bool(req.deleteoldrdn), superior
        )
        return ber.result(ber.APP_MODDN_RESPONSE, Result.SUCCESS), b""

    def _op_compare(
        self, msg_id: int, req: pureldap.LDAPCompareRequest, controls
    ) -> tuple[bytes, bytes]:
        self._who()
        store = self.svc.store
        entry = store.require(self._ndn(req.entry))
        name = _text(req.ava.attributeDesc.value)
        t = store.schema.get(name)
        if t is None:
            raise errors.undefined_type(name)
        values = entry.values(t)
        if not values:
            raise errors.no_such_attribute(t.name)
        try:
            want = t.key(_raw(req.ava.assertionValue.value))
        except ValueError:
            raise errors.invalid_syntax(t.name) from None
        code = (
            Result.COMPARE_TRUE if any(t.key(v) == want for v in values) else Result.COMPARE_FALSE
        )
        return ber.result(ber.APP_COMPARE_RESPONSE, code), b""

    def _op_extended(self, msg_id: int, req: Any, controls: Any) -> tuple[bytes, bytes]:
        oid = _text(req.requestName)
        extended = EXTENDED_OPERATIONS.get(oid)
        if extended is None:
            raise errors.unknown_extended_operation(oid)
        answer: bytes = getattr(self, extended.method)()
        return answer, b""

    def _ext_starttls(self) -> bytes:
        """RFC 4511 4.14: answer in the clear, then negotiate TLS (after the answer is out)."""
        if self.factory.tls is None:
            raise errors.tls_unavailable()
        if _is_tls(self.transport) or self.buffer or self.state.binding is not None:
            raise errors.tls_already_active()  # 4.14.1: nothing may follow the request
        self.start_tls = True
        extra = ber.octets(STARTTLS_OID.encode(), ber.CTX_RESPONSE_NAME)
        return ber.result(ber.APP_EXTENDED_RESPONSE, Result.SUCCESS, extra=extra)

    def _negotiate_tls(self) -> None:
        self.start_tls = False
        self._flush(keep=self.pending is not None)  # the StartTLS response, in the clear
        transport = self._transport()
        # Data already written (the StartTLS response) goes out in the clear first.
        transport.startTLS(self.factory.tls)  # type: ignore[attr-defined]

    def _ext_whoami(self) -> bytes:
        p = self.state.principal
        authz = f"u:{self.svc.netbios}\\{p.sam}" if p else ""
        extra = ber.octets(authz.encode("utf-8"), 0x8B)
        return ber.result(ber.APP_EXTENDED_RESPONSE, Result.SUCCESS, extra=extra)


_SCOPES = {SCOPE_BASE: "base", ber.SCOPE_ONE: "one", ber.SCOPE_SUBTREE: "sub"}
_FLUSH_AT = 1 << 20  # bytes of held-back answers written at once


def _is_tls(transport: Any) -> bool:
    return transport is not None and interfaces.ISSLTransport.providedBy(transport)


def _request_dn(req: Any) -> str | None:
    """The DN a request names (bind, search base, modify, add, delete, rename, compare)."""
    for name in ("dn", "baseObject", "object", "entry"):
        value = getattr(req, name, None)
        if isinstance(value, bytes | str):
            return value.decode("utf-8", "replace") if isinstance(value, bytes) else value
    return None


def _result_of(op: bytes) -> tuple[int, str]:
    """(resultCode, diagnosticMessage) of an encoded LDAPResult-shaped response."""
    _, start, _ = ber.header(op, 0)
    code, _matched, diagnostic = ber.read_result(op, start)
    return code, diagnostic


AD_CAPABILITIES = (
    "1.2.840.113556.1.4.800",  # LDAP_CAP_ACTIVE_DIRECTORY_OID
    "1.2.840.113556.1.4.1670",  # LDAP_CAP_ACTIVE_DIRECTORY_V51_OID
    "1.2.840.113556.1.4.1791",  # LDAP_CAP_ACTIVE_DIRECTORY_LDAP_INTEG_OID
    "1.2.840.113556.1.4.1935",  # LDAP_CAP_ACTIVE_DIRECTORY_V60_OID
    "1.2.840.113556.1.4.2080",  # LDAP_CAP_ACTIVE_DIRECTORY_V61_R2_OID
    "1.2.840.113556.1.4.2237",  # LDAP_CAP_ACTIVE_DIRECTORY_W8_OID
)
_POLICY_NAMES = (
    "MaxPoolThreads", "MaxPercentDirSyncRequests", "MaxDatagramRecv", "MaxReceiveBuffer",
    "InitRecvTimeout", "MaxConnections", "MaxConnIdleTime", "MaxPageSize",
    "MaxBatchReturnMessages", "MaxQueryDuration", "MaxDirSyncDuration", "MaxTempTableSize",
    "MaxResultSetSize", "MinResultSets", "MaxResultSetsPerConn", "MaxNotificationPerConn",
    "MaxValRange", "MaxValRangeTransitive", "ThreadMemoryLimit", "SystemMemoryLimitPercent",
)  # fmt: skip


class DirectoryFactory(protocol.ServerFactory):
    def __init__(self, service: DirectoryService) -> None:
        self.service = service
        self.tls: Any = None  # twisted's TLS options: StartTLS is offered when set
        self.warming: IdleWork | None = None

    def startFactory(self) -> None:
        # Make the indexes AD keeps for ANR while no one asks anything (`Store.warm_steps`).
        if self.service.warm_indexes and self.warming is None:
            self.warming = IdleWork(self.service.store.warm_steps(), _reactor)
        if self.warming is not None:
            self.warming.start()

    def stopFactory(self) -> None:
        if self.warming is not None:
            self.warming.stop()

    def buildProtocol(self, addr) -> LdapProtocol:
        p = LdapProtocol(self.service)
        p.factory = self
        return p

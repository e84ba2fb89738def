"""Exchange's OPATH filter language, as the -Filter parameter of recipient cmdlets reads it.

The parser and evaluator are generic over records. The last section is Exchange's view of a
`CloudMailbox`: the property names -Filter can use (`RECIPIENT_PROPERTIES`), recipient types,
and the same names in a rendered record (`render_recipient`).

Grammar (operators and property names are case-insensitive)::

    filter     := ["{"] or_expr ["}"]
    or_expr    := and_expr ("-or" and_expr)*
    and_expr   := unary ("-and" unary)*
    unary      := "-not" unary | "(" or_expr ")" | comparison
    comparison := Property ("-eq" | "-ne" | "-like" | "-notlike") value
    value      := 'text' | "text" | bare-word | $true | $false | $null

Quotes inside a quoted value are doubled (``'O''Brien'``). ``-and`` binds tighter than ``-or``:
PowerShell's own operators have equal precedence and how Exchange's parser ranks them is not
documented, so filters that mix the two should use parentheses, as Microsoft's examples do.
``-not`` applies to the next comparison or group, so ``-not Alias -like 'x*'`` negates the
comparison (Microsoft's Get-CASMailbox example). `-like` knows one wildcard, ``*``.

Comparisons follow the directory: text is compared case-insensitively, ``$null`` (or ``''``)
means blank, and a multi-valued property matches when any value does (``-ne``/``-notlike``
when none does).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any, Generic, Literal, TypeVar

from harness.tenant.model import CloudMailbox
from harness.tenant.recipients import CLOUD_MAILBOX_TYPES, MAIL_USER

T = TypeVar("T")
Value = str | bool | None
Kind = Literal["text", "bool", "multi"]

SYNTAX = (
    "Invalid filter syntax. For a description of the filter parameter syntax see the command help."
)
_OPERATORS = frozenset({"eq", "ne", "like", "notlike"})
_SYSTEM_VALUES: dict[str, Value] = {"$true": True, "$false": False, "$null": None}
_TOKEN = re.compile(
    r"""(?P<space>\s+)
      | (?P<paren>[()])
      | (?P<op>-[A-Za-z]+)
      | (?P<system>\$[A-Za-z_]\w*)
      | (?P<quoted>'(?:[^']|'')*'|"(?:[^"]|"")*")
      | (?P<word>[^\s()'"$-][^\s()'"]*)""",
    re.VERBOSE,
)


class OpathError(ValueError):
    """A filter that cannot be used: `reason` in Exchange's words, 1-based `position`."""

    def __init__(self, reason: str, position: int) -> None:
        super().__init__(f"{reason} (at position {position})")
        self.reason = reason
        self.position = position

    def binding_message(self, text: str) -> str:
        """The error PowerShell reports when the -Filter parameter cannot take `text`."""
        return (
            "Cannot bind parameter 'Filter' to the target. Exception setting \"Filter\": "
            f'"{self.reason}\n"{text}" at position {self.position}."'
        )


# ---------------------------------------------------------------------- syntax tree
@dataclass(frozen=True, slots=True)
class Comparison:
    prop: str
    op: str  # eq | ne | like | notlike
    value: Value
    # 1-based positions of the property and the value, for error messages only.
    position: int = field(default=0, compare=False)
    value_position: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class And:
    left: Node
    right: Node


@dataclass(frozen=True, slots=True)
class Or:
    left: Node
    right: Node


@dataclass(frozen=True, slots=True)
class Not:
    operand: Node


Node = Comparison | And | Or | Not


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str  # paren | op | system | quoted | word | end
    text: str
    position: int  # 1-based


def tokenize(text: str) -> list[_Token]:
    """Split a filter into tokens; raises OpathError at the first character that fits none."""
    out: list[_Token] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise OpathError(SYNTAX, pos + 1)  # e.g. an unterminated quote
        kind = m.lastgroup or ""
        if kind != "space":
            out.append(_Token(kind, m.group(), pos + 1))
        pos = m.end()
    out.append(_Token("end", "", len(text) + 1))
    return out


def parse(text: str) -> Node:
    """Parse an OPATH filter into a tree; raises OpathError with Exchange's reason and position."""
    stripped = text.strip()
    if stripped.startswith("{") and stripped.endswith("}"):
        # Script-block braces around the whole filter; blanked out so positions stay true.
        start, end = text.index("{"), text.rindex("}")
        text = f"{text[:start]} {text[start + 1 : end]} {text[end + 1 :]}"
    parser = _Parser(tokenize(text))
    node = parser.or_expr()
    parser.expect_end()
    return node


class _Parser:
    def __init__(self, tokens: list[_Token]) -> None:
        self.tokens = tokens
        self.i = 0

    def peek(self) -> _Token:
        return self.tokens[self.i]

    def take(self) -> _Token:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def at_op(self, name: str) -> bool:
        tok = self.peek()
        return tok.kind == "op" and tok.text[1:].lower() == name

    def expect_end(self) -> None:
        if self.peek().kind != "end":
            raise OpathError(SYNTAX, self.peek().position)

    def or_expr(self) -> Node:
        node = self.and_expr()
        while self.at_op("or"):
            self.take()
            node = Or(node, self.and_expr())
        return node

    def and_expr(self) -> Node:
        node = self.unary()
        while self.at_op("and"):
            self.take()
            node = And(node, self.unary())
        return node

    def unary(self) -> Node:
        if self.at_op("not"):
            self.take()
            return Not(self.unary())
        tok = self.take()
        if tok.text == "(":
            node = self.or_expr()
            if self.take().text != ")":
                raise OpathError(SYNTAX, self.tokens[self.i - 1].position)
            return node
        if tok.kind != "word":
            raise OpathError(SYNTAX, tok.position)
        return self.comparison(tok)

    def comparison(self, prop: _Token) -> Comparison:
        op = self.take()
        if op.kind != "op" or op.text[1:].lower() not in _OPERATORS:
            raise OpathError(SYNTAX, op.position)
        tok = self.take()
        return Comparison(prop.text, op.text[1:].lower(), _value(tok), prop.position, tok.position)


def _value(tok: _Token) -> Value:
    if tok.kind == "quoted":
        quote = tok.text[0]
        return tok.text[1:-1].replace(quote * 2, quote)
    if tok.kind == "system" and tok.text.lower() in _SYSTEM_VALUES:
        return _SYSTEM_VALUES[tok.text.lower()]
    if tok.kind == "word":
        return tok.text
    raise OpathError(SYNTAX, tok.position)  # an operator, a paren, an unexpanded $variable, end


# ---------------------------------------------------------------------- evaluation
@dataclass(frozen=True, slots=True)
class Property(Generic[T]):
    """A filterable property of records of type T.

    `get` returns ``str | None`` for text, ``bool`` for bool and an iterable of ``str`` for
    multi. `choices` (casefolded) restricts what -eq/-ne accept, as an enum type does."""

    name: str
    kind: Kind
    get: Callable[[T], Any]
    type_name: str = ""  # .NET type named in conversion errors; by default from `kind`
    choices: frozenset[str] | None = None

    @property
    def type(self) -> str:
        return self.type_name or ("System.Boolean" if self.kind == "bool" else "System.String")


Predicate = Callable[[T], bool]


def compile_filter(text: str, properties: Mapping[str, Property[T]]) -> Predicate[T]:
    """Parse `text` and bind it to `properties` (keyed by casefolded name) as a predicate."""
    return bind(parse(text), properties)


def bind(node: Node, properties: Mapping[str, Property[T]]) -> Predicate[T]:
    """Turn a parsed filter into a predicate; unknown properties and bad values raise."""
    if isinstance(node, And):
        left, right = bind(node.left, properties), bind(node.right, properties)
        return lambda r: left(r) and right(r)
    if isinstance(node, Or):
        left, right = bind(node.left, properties), bind(node.right, properties)
        return lambda r: left(r) or right(r)
    if isinstance(node, Not):
        inner = bind(node.operand, properties)
        return lambda r: not inner(r)
    prop = properties.get(node.prop.casefold())
    if prop is None:
        raise OpathError(
            f'"{node.prop}" is not a recognized filterable property. '
            "For a list of filterable properties see the command help.",
            node.position,
        )
    test = _bind_comparison(prop, node)
    return (lambda r: not test(r)) if node.op in ("ne", "notlike") else test


def _bind_comparison(prop: Property[T], node: Comparison) -> Predicate[T]:
    """The positive test (-eq / -like) of a comparison; the caller negates -ne / -notlike."""
    like = node.op in ("like", "notlike")
    if prop.kind == "bool":
        if like:
            raise OpathError(
                f'The "-{node.op}" operator can\'t be used with property "{prop.name}" '
                f"of type {prop.type}.",
                node.position,
            )
        want = _boolean(node, prop)
        get_flag = prop.get
        return lambda r: get_flag(r) is want if want is not None else False
    value = "" if node.value is None else str(node.value).casefold()
    if not like and value and prop.choices is not None and value not in prop.choices:
        raise OpathError(
            f'The value "{node.value}" could not be converted to type {prop.type}.',
            node.value_position,
        )
    match = _matcher(value, like)
    get = prop.get
    if prop.kind == "multi":
        if not value:
            return lambda r: not any(True for _ in get(r))
        return lambda r: any(match(v.casefold()) for v in get(r))
    return lambda r: match((get(r) or "").casefold())


def _boolean(node: Comparison, prop: Property[Any]) -> bool | None:
    v = node.value
    if v is None or isinstance(v, bool):
        return v
    if v.casefold() in ("true", "false"):
        return v.casefold() == "true"
    raise OpathError(
        f'The value "{v}" could not be converted to type {prop.type}.', node.value_position
    )


def _matcher(value: str, like: bool) -> Callable[[str], bool]:
    if not like or "*" not in value:
        return value.__eq__
    pattern = re.compile(".*".join(re.escape(part) for part in value.split("*")), re.DOTALL)
    return lambda s: pattern.fullmatch(s) is not None


# ---------------------------------------------------------------------- Exchange recipients
# Exchange's RecipientTypeDetails enumeration: every name it accepts, though few exist here.
_RTD_NAMES = (
    "UserMailbox LinkedMailbox SharedMailbox LegacyMailbox RoomMailbox EquipmentMailbox "
    "MailContact MailUser MailUniversalDistributionGroup MailNonUniversalGroup "
    "MailUniversalSecurityGroup DynamicDistributionGroup PublicFolder SystemAttendantMailbox "
    "SystemMailbox MailForestContact User Contact UniversalDistributionGroup "
    "UniversalSecurityGroup NonUniversalGroup DisabledUser MicrosoftExchange ArbitrationMailbox "
    "MailboxPlan LinkedUser RoomList DiscoveryMailbox RoleGroup RemoteUserMailbox Computer "
    "RemoteRoomMailbox RemoteEquipmentMailbox RemoteSharedMailbox PublicFolderMailbox "
    "TeamMailbox RemoteTeamMailbox MonitoringMailbox GroupMailbox LinkedRoomMailbox "
    "AuditLogMailbox RemoteGroupMailbox SchedulingMailbox GuestMailUser"
)
RECIPIENT_TYPE_DETAILS = tuple(_RTD_NAMES.split())
RTD_TYPE = "Microsoft.Exchange.Data.Directory.Recipient.RecipientTypeDetails"
_GET_MAILBOX_TYPES = (
    "DiscoveryMailbox EquipmentMailbox GroupMailbox LegacyMailbox LinkedMailbox "
    "LinkedRoomMailbox RoomMailbox SchedulingMailbox SharedMailbox TeamMailbox UserMailbox"
)
GET_MAILBOX_TYPES = tuple(
    _GET_MAILBOX_TYPES.split()
)  # what Get-Mailbox -RecipientTypeDetails takes


def recipient_type(m: CloudMailbox) -> str:
    """Exchange's RecipientType: shared, room and equipment mailboxes are UserMailbox too."""
    return "UserMailbox" if m.recipient_type_details in CLOUD_MAILBOX_TYPES else MAIL_USER


def render_recipient(m: CloudMailbox) -> dict[str, Any]:
    """One recipient as Get-Mailbox / Get-Recipient show it (Exchange property names)."""
    rec: dict[str, Any] = m.to_json()
    rec.update(
        Identity=m.alias,
        Name=m.alias,
        Guid=m.id,
        ExternalDirectoryObjectId=m.id,
        RecipientType=recipient_type(m),
        PrimarySmtpAddress=m.primary_smtp_address,
    )
    return rec


def _address_forms(m: CloudMailbox) -> Iterator[str]:
    # EmailAddresses -eq matches an address with or without its smtp: prefix.
    for a in m.email_addresses:
        yield a
        if a[:5].casefold() == "smtp:":
            yield a[5:]


_EXT = "extension_custom_attributes"


def _recipient_properties() -> dict[str, Property[CloudMailbox]]:
    text: list[tuple[str, Callable[[CloudMailbox], str | None]]] = [
        ("Alias", attrgetter("alias")),
        ("Name", attrgetter("alias")),
        ("DisplayName", attrgetter("display_name")),
        ("UserPrincipalName", attrgetter("user_principal_name")),
        ("PrimarySmtpAddress", attrgetter("primary_smtp_address")),
        ("WindowsEmailAddress", attrgetter("windows_email_address")),
        ("ExternalDirectoryObjectId", attrgetter("id")),
        ("LegacyExchangeDN", attrgetter("legacy_exchange_dn")),
        ("RecipientType", recipient_type),
        *((f"CustomAttribute{i + 1}", _nth("custom_attributes", i)) for i in range(15)),
    ]
    flags = [
        ("IsExchangeCloudManaged", "is_exchange_cloud_managed"),
        ("IsDirSynced", "is_dir_synced"),
        ("HiddenFromAddressListsEnabled", "hidden_from_address_lists"),
    ]
    props: list[Property[CloudMailbox]] = [
        *(Property(name, "text", get) for name, get in text),
        *(Property(name, "bool", attrgetter(attr)) for name, attr in flags),
        Property("EmailAddresses", "multi", _address_forms),
        *(Property(f"ExtensionCustomAttribute{i + 1}", "multi", _nth(_EXT, i)) for i in range(5)),
        Property(
            "RecipientTypeDetails",
            "text",
            attrgetter("recipient_type_details"),
            RTD_TYPE,
            frozenset(n.casefold() for n in RECIPIENT_TYPE_DETAILS),
        ),
    ]
    return {p.name.casefold(): p for p in props}


def _nth(attr: str, index: int) -> Callable[[Any], Any]:
    return lambda r: getattr(r, attr)[index]


RECIPIENT_PROPERTIES = _recipient_properties()
"""What -Filter can name on Get-Mailbox / Get-Recipient, keyed by casefolded name."""

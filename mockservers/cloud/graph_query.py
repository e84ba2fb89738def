"""Graph's query options on ``/v1.0/users``: $filter, $search, $orderby and $count, as Graph's
directory objects answer them, served from the store's indexes.

`graph.list_users` and `graph.count_users` parse a request's options into a `UserQuery` with
`parse_user_query` (which raises Graph's errors for what Graph refuses) and get its result set
from `result_pool`: the matching ids in paging order.

What Graph accepts (Microsoft Learn, "Advanced query capabilities on Microsoft Entra ID
objects" and its per-property tables; "Use the $search query parameter"):

* ``eq``, ``in``, ``startswith`` (case-insensitive), ``and``, ``or``, and
  ``proxyAddresses/any(x:x eq '...')`` / ``any(x:startswith(x,'...'))`` work by default.
* ``ne``, ``not``, ``endswith`` (mail, userPrincipalName, proxyAddresses only) and comparisons
  with ``null`` are *advanced queries*: they need the ``ConsistencyLevel: eventual`` header and
  ``$count=true`` (or the ``/$count`` segment), else 400 ``Request_UnsupportedQuery``.
* ``$search`` needs ``ConsistencyLevel: eventual``; displayName is matched by tokens (words split
  at spaces, symbols, digits and lower-to-upper case changes; each search word a prefix of some
  word of the name, in any order), other properties by ``startswith``.
* ``$orderby`` works on displayName and userPrincipalName (``asc``/``desc``); together with
  ``$filter`` it is an advanced query ("Sorting not supported for current query." otherwise).
* ``$count=true`` without ``ConsistencyLevel: eventual`` is ignored, as Graph ignores it.

How it is served: `eq`, `in`, `startswith` and `any()` narrow the candidates through the store's
hash lookups and sorted indexes (`CloudStore.sorted_index`: a bisection, then the matching
range); `and` intersects, `or` unions. What an index cannot narrow (`ne`, `not`, `endswith`,
null, $search) is one linear pass over the users, which Graph also only allows as an advanced
query. Where every index lookup of a filter is exact (the keys are the casefolded values
`matches` compares) the candidates are the answer; otherwise each is checked by `matches`, the
reference evaluator. Result sets are cached per store until its next write, so paging through a
large result costs a slice per page.

No regular expression is built from request text: tokens are scanned with fixed patterns and
`startswith`/`endswith` are string methods (linear time, whatever the text). A filter is
bounded in length, comparisons and nesting.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from weakref import WeakKeyDictionary

from harness.tenant.model import CloudMailbox
from mockservers.cloud import delta, errors
from mockservers.cloud.store import CloudStore

MAX_FILTER_LENGTH = 16_384  # characters of one $filter or $search
MAX_TERMS = 500  # comparisons in one $filter (an `in` counts each value)
MAX_DEPTH = 40  # nesting of parentheses and not
_POOL_CACHE = 16  # result sets kept per store (until its next write)

DEFAULT, ADVANCED = "default", "advanced"


# ------------------------------------------------------------------------------ the syntax tree
@dataclass(frozen=True, slots=True)
class Compare:
    """``prop eq|ne value``; value a string, True/False, or None (null)."""

    prop: str
    op: str
    value: str | bool | None


@dataclass(frozen=True, slots=True)
class In:
    prop: str
    values: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Func:
    """``startswith(prop,'x')`` / ``endswith(prop,'x')``."""

    name: str
    prop: str
    value: str


@dataclass(frozen=True, slots=True)
class Any_:
    """``prop/any(x: x eq 'v')`` or ``any(x: startswith|endswith(x,'v'))``."""

    prop: str
    op: str  # eq | startswith | endswith
    value: str


@dataclass(frozen=True, slots=True)
class Not:
    node: Node


@dataclass(frozen=True, slots=True)
class And:
    parts: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Or:
    parts: tuple[Node, ...]


Node = Compare | In | Func | Any_ | Not | And | Or


# ------------------------------------------------------------------- filterable user properties
@dataclass(frozen=True, slots=True)
class Filterable:
    """One filterable user property: how its value reads (casefolded unless `exact`) and which
    operators Graph allows on it by default and in advanced queries."""

    kind: str  # string | boolean | collection
    get: Callable[[CloudMailbox], Any]
    ops: Mapping[str, str]  # operator -> DEFAULT | ADVANCED
    exact: bool = False  # compared as-is (onPremisesImmutableId is base64: case matters)


def _fold(value: str | None) -> str | None:
    return value.casefold() if value else None


_STRING_OPS = {"eq": DEFAULT, "in": DEFAULT, "startswith": DEFAULT, "ne": ADVANCED}
FILTERABLE: dict[str, Filterable] = {
    "id": Filterable(
        "string", lambda m: m.id.casefold(), {"eq": DEFAULT, "in": DEFAULT, "ne": ADVANCED}
    ),
    "userPrincipalName": Filterable(
        "string", lambda m: _fold(m.user_principal_name), {**_STRING_OPS, "endswith": ADVANCED}
    ),
    "displayName": Filterable(
        "string", lambda m: _fold(m.display_name), {**_STRING_OPS, "null": ADVANCED}
    ),
    "mail": Filterable(
        "string", lambda m: _fold(m.windows_email_address), {**_STRING_OPS, "endswith": ADVANCED}
    ),
    "mailNickname": Filterable(
        "string", lambda m: _fold(m.alias), {**_STRING_OPS, "null": ADVANCED}
    ),
    # Graph's table marks eq on onPremisesImmutableId advanced; the fake has always answered it
    # by default (the writeback engine's anchor lookup), and keeps doing so.
    "onPremisesImmutableId": Filterable(
        "string",
        lambda m: m.immutable_id or None,
        {"eq": DEFAULT, "in": DEFAULT, "ne": ADVANCED},
        exact=True,
    ),
    "onPremisesSyncEnabled": Filterable(
        "boolean",
        lambda m: True if m.is_dir_synced else None,
        {"eq": DEFAULT, "in": DEFAULT, "ne": ADVANCED},
    ),
    "proxyAddresses": Filterable(
        "collection",
        lambda m: tuple(a.casefold() for a in m.email_addresses),
        {"any-eq": DEFAULT, "any-startswith": DEFAULT, "any-endswith": ADVANCED},
    ),
}
# $search: displayName by tokens, these by startswith (Graph: other properties "default to
# $filter startsWith behavior"); givenName and surname are not modelled and never match.
SEARCHABLE = ("displayName", "givenName", "surname", "mail", "userPrincipalName", "mailNickname")
SORTABLE = ("displayName", "userPrincipalName")
# How Graph's message names an operator ("Operator 'endsWith' is not supported ...").
_OP_NAMES = {"endswith": "endsWith", "any-endswith": "endsWith"}


# ------------------------------------------------------------------------------------- tokens
def _tokenize(text: str) -> list[str]:
    """Quoted strings ('' doubles a quote), ( ) , and words; a linear scan."""
    tokens: list[str] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch.isspace():
            i += 1
        elif ch in "(),":
            tokens.append(ch)
            i += 1
        elif ch == "'":
            j = i + 1
            while True:
                j = text.find("'", j)
                if j < 0:
                    raise errors.invalid_filter()  # unterminated string
                if j + 1 < n and text[j + 1] == "'":
                    j += 2
                    continue
                break
            tokens.append(text[i : j + 1])
            i = j + 1
        else:
            j = i
            while j < n and not text[j].isspace() and text[j] not in "(),'":
                j += 1
            tokens.append(text[i:j])
            i = j
    return tokens


class FilterReader:
    """A $filter's tokens as a recursive-descent parser reads them, with the bounds every
    $filter has: `max_terms` comparisons, MAX_DEPTH nesting, MAX_FILTER_LENGTH characters.
    The users' parser below and the provisioning log's (provisioning.py) build on it."""

    max_terms = MAX_TERMS

    def __init__(self, text: str) -> None:
        if len(text) > MAX_FILTER_LENGTH:
            raise self.too_complex()
        self.tokens = _tokenize(text)
        self.pos = 0
        self.terms = 0
        self.depth = 0

    def too_complex(self) -> errors.CloudError:
        return errors.filter_too_complex(self.max_terms, MAX_FILTER_LENGTH, MAX_DEPTH)

    def at_end(self) -> None:
        if self.pos != len(self.tokens):
            raise errors.invalid_filter()

    def peek(self, offset: int = 0) -> str:
        i = self.pos + offset
        return self.tokens[i] if i < len(self.tokens) else ""

    def take(self, expected: str | None = None) -> str:
        token = self.peek()
        if not token or (expected is not None and token.lower() != expected):
            raise errors.invalid_filter()
        self.pos += 1
        return token

    def string(self) -> str:
        token = self.take()
        if len(token) < 2 or token[0] != "'":
            raise errors.invalid_filter()
        return token[1:-1].replace("''", "'")

    def count_term(self, n: int = 1) -> None:
        self.terms += n
        if self.terms > self.max_terms:
            raise self.too_complex()

    def nest(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.too_complex()


# ------------------------------------------------------------------------------------- parser
class _Parser(FilterReader):
    """or := and ("or" and)*; and := unary ("and" unary)*; unary := "not" unary | primary;
    primary := "(" or ")" | function | lambda | comparison. Keywords ignore case."""

    def parse(self) -> Node:
        if not self.tokens:
            raise errors.invalid_filter()
        node = self.disjunction()
        self.at_end()
        return node

    # -- grammar
    def disjunction(self) -> Node:
        parts = [self.conjunction()]
        while self.peek().lower() == "or":
            self.take()
            parts.append(self.conjunction())
        return parts[0] if len(parts) == 1 else Or(tuple(parts))

    def conjunction(self) -> Node:
        parts = [self.unary()]
        while self.peek().lower() == "and":
            self.take()
            parts.append(self.unary())
        return parts[0] if len(parts) == 1 else And(tuple(parts))

    def unary(self) -> Node:
        if self.peek().lower() == "not":
            self.take()
            self.nest()
            node = Not(self.unary())
            self.depth -= 1
            return node
        return self.primary()

    def primary(self) -> Node:
        token = self.peek()
        if token == "(":
            self.take()
            self.nest()
            node = self.disjunction()
            self.take(")")
            self.depth -= 1
            return node
        if not token or token in "()," or token.startswith("'"):
            raise errors.invalid_filter()
        lower = token.lower()
        if lower.endswith("/any") or lower.endswith("/all"):
            return self.lambda_()
        if self.peek(1) == "(":
            return self.function()
        return self.comparison()

    def property_(self, word: str) -> str:
        prop = delta.canonical_property(word)
        if prop is None:
            raise errors.unknown_property(word)
        return prop

    def function(self) -> Node:
        name = self.take().lower()
        if name not in ("startswith", "endswith"):
            raise errors.unsupported_query()  # contains(), length(), ...: not on directory objects
        self.take("(")
        prop = self.property_(self.take())
        self.take(",")
        value = self.string()
        self.take(")")
        self.count_term()
        return Func(name, prop, value)

    def comparison(self) -> Node:
        prop = self.property_(self.take())
        op = self.take().lower()
        if op == "in":
            self.take("(")
            values = [self.string()]
            while self.peek() == ",":
                self.take()
                values.append(self.string())
            self.take(")")
            self.count_term(len(values))
            return In(prop, tuple(values))
        if op not in ("eq", "ne"):
            if op in ("gt", "ge", "lt", "le"):
                raise errors.unsupported_filter(prop)
            raise errors.invalid_filter()
        token = self.peek()
        value: str | bool | None
        if token.startswith("'"):
            value = self.string()
        elif token.lower() in ("true", "false"):
            value = self.take().lower() == "true"
        elif token.lower() == "null":
            self.take()
            value = None
        else:
            raise errors.invalid_filter()
        self.count_term()
        return Compare(prop, op, value)

    def lambda_(self) -> Node:
        head = self.take()
        word, _, kind = head.rpartition("/")
        prop = self.property_(word)
        if kind.lower() != "any":
            raise errors.unsupported_query()  # all(): not on directory objects
        self.take("(")
        variable, colon, body = self.take().partition(":")
        if not variable or not colon:
            raise errors.invalid_filter()
        if not body:
            body = self.take()
        if self.peek() == "(":  # any(x:startswith(x,'smtp:'))
            name = body.lower()
            if name not in ("startswith", "endswith"):
                raise errors.unsupported_query()
            self.take("(")
            if self.take() != variable:
                raise errors.invalid_filter()
            self.take(",")
            value = self.string()
            self.take(")")
            op = name
        else:  # any(x:x eq 'smtp:a@b')
            if body != variable:
                raise errors.invalid_filter()
            op = self.take().lower()
            if op != "eq":
                raise errors.unsupported_filter(prop)
            value = self.string()
        self.take(")")
        self.count_term()
        return Any_(prop, op, value)


def parse_filter(text: str) -> Node:
    """The syntax tree of a $filter; raises Graph's 400 for what it cannot read. Which
    properties and operators are allowed is `check_filter`'s question."""
    return _Parser(text).parse()


# ------------------------------------------------------------------------- what Graph allows
_EDM = {"string": "Edm.String", "boolean": "Edm.Boolean", "collection": "Collection(Edm.String)"}


def _operator(node: Compare | In | Func | Any_) -> str:
    """The key in `Filterable.ops` a leaf needs."""
    if isinstance(node, Compare):
        return "null" if node.value is None else node.op
    if isinstance(node, In):
        return "in"
    if isinstance(node, Func):
        return node.name
    return f"any-{node.op}"


def check_filter(node: Node, advanced: bool) -> None:
    """Raise Graph's 400 for a property or operator Graph does not filter on, a literal of the
    wrong type, or an advanced-query operator without the advanced query parameters."""
    if isinstance(node, Not):
        if not advanced:
            raise errors.advanced_query_required("not")
        check_filter(node.node, advanced)
        return
    if isinstance(node, And | Or):
        for part in node.parts:
            check_filter(part, advanced)
        return
    spec = FILTERABLE.get(node.prop)
    if spec is None or (spec.kind == "collection") != isinstance(node, Any_):
        raise errors.unsupported_filter(node.prop)
    if isinstance(node, Compare) and node.value is not None:
        literal = "boolean" if isinstance(node.value, bool) else "string"
        if literal != spec.kind:
            kind = "Equal" if node.op == "eq" else "NotEqual"
            raise errors.incompatible_types(_EDM[spec.kind], _EDM[literal], kind)
    op = _operator(node)
    level = spec.ops.get(op)
    if level is None:
        raise errors.unsupported_filter(node.prop)
    if level == ADVANCED and not advanced:
        if op == "null":  # Graph names the property, not an operator, for null
            raise errors.unsupported_filter(node.prop)
        raise errors.advanced_query_required(_OP_NAMES.get(op, op))


# ------------------------------------------------------------------------ reference evaluator
def _literal(spec: Filterable, value: str) -> str:
    return value if spec.exact else value.casefold()


def _too_complex() -> errors.CloudError:
    return errors.filter_too_complex(MAX_TERMS, MAX_FILTER_LENGTH, MAX_DEPTH)


@lru_cache(maxsize=256)
def _literals(values: tuple[str, ...], exact: bool) -> frozenset[str]:
    """An `in` list's values as `matches` compares them: made once per list, not per user (500
    values against 200,000 users in a scan)."""
    return frozenset(values if exact else (v.casefold() for v in values))


def matches(node: Node, m: CloudMailbox) -> bool:
    """Whether a user satisfies a (checked) filter: the definition the indexes must agree with.

    Strings compare case-insensitively (except onPremisesImmutableId); a null value equals only
    null, and `ne` / `not` are the negation of `eq` / the operand, as in OData."""
    if isinstance(node, Or):
        return any(matches(p, m) for p in node.parts)
    if isinstance(node, And):
        return all(matches(p, m) for p in node.parts)
    if isinstance(node, Not):
        return not matches(node.node, m)
    spec = FILTERABLE[node.prop]
    actual = spec.get(m)
    if isinstance(node, Compare):
        if node.value is None or isinstance(node.value, bool):
            equal = actual is node.value or actual == node.value
        else:
            equal = actual is not None and actual == _literal(spec, node.value)
        return equal if node.op == "eq" else not equal
    if isinstance(node, In):
        return actual is not None and actual in _literals(node.values, spec.exact)
    if isinstance(node, Func):
        if actual is None:
            return False
        value = _literal(spec, node.value)
        return actual.startswith(value) if node.name == "startswith" else actual.endswith(value)
    value = _literal(spec, node.value)
    if node.op == "eq":
        return value in actual
    if node.op == "startswith":
        return any(a.startswith(value) for a in actual)
    return any(a.endswith(value) for a in actual)


# ---------------------------------------------------------------------------- index planning
def candidates(store: CloudStore, node: Node) -> tuple[set[str] | None, bool]:
    """(ids, exact): a superset of the ids matching `node` from indexes, None when only a scan
    can tell; `exact` when the set is the answer itself. Every index lookup here is exact (the
    keys are the casefolded values `matches` compares), so only an `and` that mixes in an
    operator no index serves needs `matches` on its candidates."""
    if isinstance(node, Or):
        found: set[str] = set()
        all_exact = True
        for part in node.parts:
            got, exact = candidates(store, part)
            if got is None:
                return None, False
            found |= got
            all_exact = all_exact and exact
        return found, all_exact
    if isinstance(node, And):
        parts = [candidates(store, p) for p in node.parts]
        narrowed = sorted((c for c, _ in parts if c is not None), key=len)
        if not narrowed:
            return None, False
        # Exact only when every part is: an inexact part's set holds users it does not match.
        return narrowed[0].intersection(*narrowed[1:]), all(
            c is not None and exact for c, exact in parts
        )
    ids = _leaf_candidates(store, node)
    return ids, ids is not None


def _leaf_candidates(store: CloudStore, node: Node) -> set[str] | None:
    if isinstance(node, Compare):
        if node.op != "eq" or node.value is None:
            return None
        if isinstance(node.value, bool):
            if node.value is False:
                return set()  # Graph renders true or null here: nobody is false
            index = store.sorted_index(node.prop)
            return set(index.ids(index.equal_range("true")))
        return _equal(store, node.prop, node.value)
    if isinstance(node, In):
        return {i for v in node.values for i in _equal(store, node.prop, v)}
    if isinstance(node, Func):
        if node.name != "startswith":
            return None
        index = store.sorted_index(node.prop)
        return set(index.ids(index.prefix_range(node.value.casefold())))
    if isinstance(node, Any_):
        if node.op == "endswith":
            return None
        index = store.sorted_index(node.prop)
        value = node.value.casefold()
        span = index.equal_range(value) if node.op == "eq" else index.prefix_range(value)
        return set(index.ids(span))
    return None  # ne, not, endswith, null: only a scan


def _equal(store: CloudStore, prop: str, value: str) -> set[str]:
    if prop == "id":
        m = store.get(value.casefold())
        return {m.id} if m is not None else set()
    if prop == "onPremisesImmutableId":
        m = store.by_anchor(value)
        return {m.id} if m is not None else set()
    index = store.sorted_index(prop)
    return set(index.ids(index.equal_range(value.casefold())))


# ------------------------------------------------------------------------------------ $search
@dataclass(frozen=True, slots=True)
class Clause:
    """One ``"property:text"`` of a $search."""

    prop: str
    text: str


@dataclass(frozen=True, slots=True)
class Joined:
    """Clauses joined with AND (`all`) or OR."""

    all: bool
    parts: tuple[Search, ...]


Search = Clause | Joined


@lru_cache(maxsize=1 << 18)
def search_tokens(text: str) -> frozenset[str]:
    """The words Graph's directory search sees in a value: split at whitespace, symbols, digit
    runs and lower-to-upper case changes, casefolded; words joined only by symbols also count
    as one (``hello.world`` has ``hello``, ``world`` and ``helloworld``)."""
    out: set[str] = set()
    for chunk in text.split():
        words: list[str] = []
        current: list[str] = []
        kind = ""
        previous = ""
        for ch in chunk:
            k = "a" if ch.isalpha() else "d" if ch.isdigit() else ""
            split = not k or (current and (k != kind or (previous.islower() and ch.isupper())))
            if split and current:
                words.append("".join(current))
                current = []
            if k:
                current.append(ch)
            kind, previous = k, ch
        if current:
            words.append("".join(current))
        out.update(w.casefold() for w in words)
        if len(words) > 1:
            out.add("".join(words).casefold())
    return frozenset(out)


class _SearchParser:
    """expr := and (OR and)*; and := term (AND term)*; term := '"prop:text"' | '(' expr ')'.
    AND and OR outside the quotes, upper case; \\" and \\\\ escape inside them."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.clauses = 0

    def error(self) -> errors.CloudError:
        return errors.invalid_search(self.text)

    def skip(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def keyword(self, word: str) -> bool:
        self.skip()
        end = self.pos + len(word)
        if self.text[self.pos : end] == word and (
            end == len(self.text) or not self.text[end].isalnum()
        ):
            self.pos = end
            return True
        return False

    def parse(self) -> Search:
        node = self.disjunction(0)
        self.skip()
        if self.pos != len(self.text):
            raise self.error()
        return node

    def disjunction(self, depth: int) -> Search:
        parts = [self.conjunction(depth)]
        while self.keyword("OR"):
            parts.append(self.conjunction(depth))
        return parts[0] if len(parts) == 1 else Joined(False, tuple(parts))

    def conjunction(self, depth: int) -> Search:
        parts = [self.term(depth)]
        while self.keyword("AND"):
            parts.append(self.term(depth))
        return parts[0] if len(parts) == 1 else Joined(True, tuple(parts))

    def term(self, depth: int) -> Search:
        self.skip()
        if depth > MAX_DEPTH:
            raise _too_complex()
        if self.text.startswith("(", self.pos):
            self.pos += 1
            node = self.disjunction(depth + 1)
            self.skip()
            if not self.text.startswith(")", self.pos):
                raise self.error()
            self.pos += 1
            return node
        if not self.text.startswith('"', self.pos):
            raise self.error()
        out: list[str] = []
        i = self.pos + 1
        while True:
            if i >= len(self.text):
                raise self.error()  # unterminated clause
            ch = self.text[i]
            if ch == "\\" and i + 1 < len(self.text):
                out.append(self.text[i + 1])
                i += 2
                continue
            if ch == '"':
                break
            out.append(ch)
            i += 1
        self.pos = i + 1
        name, colon, value = "".join(out).partition(":")
        if not colon or not name.strip():
            raise self.error()  # Graph's directory search needs "property:text"
        prop = delta.canonical_property(name.strip())
        if prop is None:
            raise errors.unknown_property(name.strip())
        if prop not in SEARCHABLE:
            raise errors.unsupported_filter(prop)
        self.clauses += 1
        if self.clauses > MAX_TERMS:
            raise _too_complex()
        return Clause(prop, value)


def parse_search(text: str) -> Search:
    if len(text) > MAX_FILTER_LENGTH:
        raise _too_complex()
    return _SearchParser(text).parse()


_SEARCH_VALUES: dict[str, Callable[[CloudMailbox], str | None]] = {
    "displayName": lambda m: m.display_name,
    "mail": lambda m: m.windows_email_address or None,
    "userPrincipalName": lambda m: m.user_principal_name,
    "mailNickname": lambda m: m.alias,
    "givenName": lambda m: None,
    "surname": lambda m: None,
}


def search_matches(node: Search, m: CloudMailbox) -> bool:
    """Whether a user matches a $search: displayName by words, the others by startswith."""
    if isinstance(node, Joined):
        test = all if node.all else any
        return test(search_matches(part, m) for part in node.parts)
    actual = _SEARCH_VALUES[node.prop](m)
    if actual is None:
        return False
    if node.prop == "displayName":
        wanted = search_tokens(node.text)
        have = search_tokens(actual)
        return bool(wanted) and all(any(h.startswith(w) for h in have) for w in wanted)
    return actual.casefold().startswith(node.text.strip().casefold())


# ------------------------------------------------------------------------------ the whole query
@dataclass(frozen=True, slots=True)
class UserQuery:
    """A checked /users query: what to match and in which order to page."""

    filter: Node | None
    search: Search | None
    order: str | None  # a SORTABLE property; None: by id
    descending: bool
    key: tuple[str, str, str]  # the raw texts, for caching


def parse_orderby(raw: str) -> tuple[str, bool]:
    """(property, descending) of ``$orderby=prop [asc|desc]``."""
    words = raw.split()
    if not words or len(words) > 2 or "," in raw:
        if "," in raw:
            raise errors.sorting_not_supported()
        raise errors.odata_syntax(len(raw), raw)
    prop = delta.canonical_property(words[0])
    if prop is None:
        raise errors.unknown_property(words[0])
    direction = words[1].lower() if len(words) == 2 else "asc"
    if direction not in ("asc", "desc"):
        raise errors.odata_syntax(len(words[0]) + 1, raw)
    if prop not in SORTABLE:
        raise errors.sorting_not_supported()
    return prop, direction == "desc"


def parse_user_query(
    raw_filter: str, raw_search: str, raw_orderby: str, *, eventual: bool, counted: bool
) -> UserQuery:
    """Check a /users query against Graph's rules; `eventual`: the ConsistencyLevel header says
    eventual; `counted`: $count=true or the /$count segment (advanced needs both)."""
    advanced = eventual and counted
    node = None
    if raw_filter:
        node = parse_filter(raw_filter)
        check_filter(node, advanced)
    search = None
    if raw_search:
        if not eventual:
            raise errors.search_needs_eventual()
        search = parse_search(raw_search)
    order, descending = (None, False)
    if raw_orderby:
        order, descending = parse_orderby(raw_orderby)
        if node is not None and not advanced:
            raise errors.sorting_not_supported()
    return UserQuery(node, search, order, descending, (raw_filter, raw_search, raw_orderby))


_ORDER_KEYS: dict[str, Callable[[CloudMailbox], str]] = {
    "displayName": lambda m: m.display_name.casefold(),
    "userPrincipalName": lambda m: m.user_principal_name.casefold(),
}
_pools: WeakKeyDictionary[CloudStore, OrderedDict[tuple[Any, ...], list[Any]]] = WeakKeyDictionary()


def result_pool(store: CloudStore, query: UserQuery) -> list[Any]:
    """The matching users in ascending paging order: sorted ids, or sorted (sort key, id) pairs
    with $orderby. Shared and cached: callers must not modify it."""
    if query.filter is None and query.search is None:
        if query.order is None:
            return delta.ordered_ids(store)
        return store.sorted_index(query.order).entries  # already (casefolded key, id) in order
    cache = _pools.setdefault(store, OrderedDict())
    key = (store.seq, len(store), query.key, query.order)
    hit = cache.get(key)
    if hit is not None:
        cache.move_to_end(key)
        return hit
    pool = _evaluate(store, query)
    cache[key] = pool
    while len(cache) > _POOL_CACHE:
        cache.popitem(last=False)
    return pool


def _evaluate(store: CloudStore, query: UserQuery) -> list[Any]:
    node, search = query.filter, query.search
    found, exact = candidates(store, node) if node is not None else (None, False)
    if found is not None and exact and search is None and query.order is None:
        return sorted(found)  # the indexes answered: nothing to check
    if exact:
        node = None  # the candidates already satisfy the filter
    # No index narrows advanced operators and $search: then one pass over every user.
    users: Iterable[CloudMailbox] = (
        store if found is None else (m for i in found if (m := store.get(i)) is not None)
    )
    hits = [
        m
        for m in users
        if (node is None or matches(node, m)) and (search is None or search_matches(search, m))
    ]
    if query.order is None:
        return sorted(m.id for m in hits)
    order = _ORDER_KEYS[query.order]
    return sorted((order(m), m.id) for m in hits)


def page(pool: list[Any], after: Any, size: int, descending: bool) -> tuple[list[Any], bool]:
    """The `size` entries after the cursor `after` (None: from the start) in paging order, and
    whether more follow; descending walks the ascending pool backwards."""
    if not descending:
        return delta.page_after(pool, after, size)
    end = len(pool) if after is None else bisect_left(pool, after)
    start = max(0, end - size)
    return pool[start:end][::-1], start > 0


def entry_id(entry: Any) -> str:
    """The user id of a pool entry (an id, or a (sort key, id) pair)."""
    return entry if isinstance(entry, str) else str(entry[1])

"""A subset of Cloud Sync's attribute-mapping expression language, compiled to Python callables.

Syntax: attribute references in ``[brackets]``, string constants in double quotes (``\\"`` and
``\\\\`` escapes), unsigned integer constants, function calls (names case-sensitive, as the
service's are), nesting, and one infix comparison ``a = b`` / ``a <> b`` (case-sensitive) for
IIF conditions. Functions:

- ``Append(source, suffix)``, ``Join(separator, source1, ...)`` (list values are flattened)
- ``ToLower(source[, culture])``, ``ToUpper(source[, culture])``, ``Trim(source)``: map over
  lists; the culture argument is accepted and ignored (invariant case mapping)
- ``Left(source, n)``; ``Mid(source, start, length)`` with ``start`` 1-based, as documented
- ``Item(multiValued, index)``: ``index`` 1-based as documented (``Item([x], 1)`` is the
  first value); an index outside the values gives no value
- ``Replace(source, oldValue, regexPattern, , replacementValue, , )``: always seven slots;
  exactly one of ``oldValue`` (literal) or ``regexPattern`` (Python ``re`` syntax, close to .NET
  for plain patterns); regexGroupName, replacementAttributeName and template are unsupported
- ``IIF(condition, whenTrue, whenFalse)``, ``Not(condition)``, ``IsNull(x)``,
  ``IsNullOrEmpty(x)``, ``IsPresent(x)``

Values are ``str | list[str] | None``; conditions are booleans and are checked statically, so
``IIF("a", ...)`` fails at compile time rather than per record.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

Value = str | list[str] | None
_Eval = Callable[[Mapping[str, Any]], Any]


class ExpressionError(ValueError):
    """A bad expression: parse, arity or type error (``column`` is 1-based, 0 if unknown)."""

    def __init__(self, message: str, column: int = 0) -> None:
        super().__init__(f"column {column}: {message}" if column else message)
        self.message = message
        self.column = column


@dataclass(frozen=True, slots=True)
class CompiledExpression:
    """A compiled expression: call it with a source record to get its value."""

    text: str
    attributes: frozenset[str]
    _fn: _Eval

    def __call__(self, record: Mapping[str, Any]) -> Value:
        return _as_value(self._fn(record))


# --- tokenizer -------------------------------------------------------------------------------

_TOKEN = re.compile(
    r"""(?P<ws>\s+)|(?P<attr>\[[^\[\]]*\])|(?P<str>")|(?P<num>\d+)|(?P<name>[A-Za-z_]\w*)
    |(?P<op><>|[(),=])""",
    re.VERBOSE,
)


@dataclass(frozen=True, slots=True)
class _Tok:
    kind: str  # attr, str, num, name, op, end
    text: str
    col: int


def _string_end(src: str, start: int) -> tuple[str, int]:
    """Parse a string constant whose opening quote is at ``start``; return (value, end)."""
    out: list[str] = []
    i = start + 1
    while i < len(src):
        c = src[i]
        if c == "\\" and i + 1 < len(src):
            out.append(src[i + 1])  # the docs define \" and \\; any other escaped char is kept
            i += 2
        elif c == '"':
            return "".join(out), i + 1
        else:
            out.append(c)
            i += 1
    raise ExpressionError("unterminated string constant", start + 1)


def _tokens(src: str) -> list[_Tok]:
    toks: list[_Tok] = []
    pos = 0
    while pos < len(src):
        m = _TOKEN.match(src, pos)
        if m is None:
            if src[pos] == "[":
                raise ExpressionError("unterminated attribute reference", pos + 1)
            raise ExpressionError(f"unexpected character {src[pos]!r}", pos + 1)
        kind = m.lastgroup or ""
        if kind == "str":
            value, end = _string_end(src, pos)
            toks.append(_Tok("str", value, pos + 1))
            pos = end
            continue
        if kind == "attr":
            name = m.group()[1:-1].strip()
            if not name:
                raise ExpressionError("empty attribute reference", pos + 1)
            toks.append(_Tok("attr", name, pos + 1))
        elif kind != "ws":
            toks.append(_Tok(kind, m.group(), pos + 1))
        pos = m.end()
    toks.append(_Tok("end", "", len(src) + 1))
    return toks


# --- parser: nodes are (evaluator, is_boolean, column, constant-or-None) -----------------------


@dataclass(frozen=True, slots=True)
class _Node:
    fn: _Eval
    boolean: bool
    col: int
    const: str | None = None  # the literal, for arguments that must be constants


class _Parser:
    def __init__(self, src: str) -> None:
        self.toks = _tokens(src)
        self.i = 0
        self.attributes: set[str] = set()

    def peek(self) -> _Tok:
        return self.toks[self.i]

    def take(self) -> _Tok:
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def expect(self, text: str) -> _Tok:
        tok = self.take()
        if tok.kind != "op" or tok.text != text:
            raise ExpressionError(f"expected {text!r}, found {_describe(tok)}", tok.col)
        return tok

    def expression(self) -> _Node:
        left = self.primary()
        tok = self.peek()
        if tok.kind == "op" and tok.text in ("=", "<>"):
            self.take()
            right = self.primary()
            for side in (left, right):
                if side.boolean:
                    raise ExpressionError("cannot compare a condition", side.col)
            lf, rf, negate = left.fn, right.fn, tok.text == "<>"
            return _Node(lambda r: (_key(lf(r)) == _key(rf(r))) != negate, True, tok.col)
        return left

    def primary(self) -> _Node:
        tok = self.take()
        if tok.kind == "attr":
            name = tok.text
            self.attributes.add(name)
            return _Node(lambda r: r.get(name), False, tok.col)
        if tok.kind in ("str", "num"):
            text = tok.text
            return _Node(lambda _r: text, False, tok.col, text)
        if tok.kind == "name":
            return self.call(tok)
        raise ExpressionError(f"expected a value, found {_describe(tok)}", tok.col)

    def call(self, name: _Tok) -> _Node:
        spec = _FUNCTIONS.get(name.text)
        if spec is None:
            raise ExpressionError(f"unknown function {name.text!r}", name.col)
        self.expect("(")
        args: list[_Node | None] = []
        if not (self.peek().kind == "op" and self.peek().text == ")"):
            while True:
                tok = self.peek()
                if tok.kind == "op" and tok.text in (",", ")"):
                    args.append(None)  # an empty slot, as in Replace(x, "a", , , "b", , )
                else:
                    args.append(self.expression())
                if self.peek().kind == "op" and self.peek().text == ",":
                    self.take()
                    continue
                break
        self.expect(")")
        lo, hi, build = spec
        if not lo <= len(args) <= hi:
            want = str(lo) if lo == hi else f"{lo} to {hi}" if hi < 99 else f"at least {lo}"
            noun = "argument" if want == "1" else "arguments"
            raise ExpressionError(f"{name.text} takes {want} {noun}, got {len(args)}", name.col)
        return build(name, args)


def _describe(tok: _Tok) -> str:
    if tok.kind == "end":
        return "end of expression"
    if tok.kind == "attr":
        return f"'[{tok.text}]'"
    return repr(f'"{tok.text}"' if tok.kind == "str" else tok.text)


# --- value helpers ---------------------------------------------------------------------------


def _as_value(v: Any) -> Value:
    """Record values and booleans in expression form (bools as the service prints them)."""
    if v is None or isinstance(v, str):
        return v
    if isinstance(v, bool):
        return "True" if v else "False"
    if isinstance(v, list | tuple):
        return [str(x) for x in v]
    return str(v)


def _as_text(v: Any) -> str | None:
    """A single text value; a list gives its first value (arguments like a separator)."""
    v = _as_value(v)
    if isinstance(v, list):
        return v[0] if v else None
    return v


def _key(v: Any) -> str | tuple[str, ...] | None:
    """Comparison key: a one-value list equals its value, an empty list equals no value."""
    v = _as_value(v)
    if isinstance(v, list):
        return None if not v else v[0] if len(v) == 1 else tuple(v)
    return v


def _flat(v: Any) -> list[str]:
    v = _as_value(v)
    return [] if v is None else v if isinstance(v, list) else [v]


def _empty(v: Any) -> bool:
    v = _as_value(v)
    return v is None or len(v) == 0


def _each(f: Callable[[str], str]) -> Callable[[Any], Value]:
    def apply(v: Any) -> Value:
        v = _as_value(v)
        if v is None:
            return None
        return [f(x) for x in v] if isinstance(v, list) else f(v)

    return apply


def _int_arg(node: _Node, what: str) -> int:
    if node.const is None or not node.const.isdigit():
        raise ExpressionError(f"{what} must be an integer constant", node.col)
    return int(node.const)


# --- functions: name -> (min args, max args, builder) ----------------------------------------

_Builder = Callable[[_Tok, list[_Node | None]], _Node]


def _values(name: _Tok, args: list[_Node | None], booleans: bool = False) -> list[_Node]:
    """The arguments, refusing empty slots and (unless allowed) conditions."""
    out: list[_Node] = []
    for i, a in enumerate(args, 1):
        if a is None:
            raise ExpressionError(f"{name.text}: argument {i} is empty", name.col)
        if a.boolean != booleans:
            kind = "a condition" if booleans else "a value, not a condition"
            raise ExpressionError(f"{name.text}: argument {i} must be {kind}", a.col)
        out.append(a)
    return out


def _one(f: Callable[[Any], Any], boolean: bool = False) -> _Builder:
    """A function of its first argument (ToLower's culture argument is checked, then ignored)."""

    def build(name: _Tok, args: list[_Node | None]) -> _Node:
        src = _values(name, args)[0].fn
        return _Node(lambda r: f(src(r)), boolean, name.col)

    return build


def _join(name: _Tok, args: list[_Node | None]) -> _Node:
    sep, *rest = (a.fn for a in _values(name, args))

    def run(r: Mapping[str, Any]) -> str:
        return (_as_text(sep(r)) or "").join(x for f in rest for x in _flat(f(r)))

    return _Node(run, False, name.col)


def _append(name: _Tok, args: list[_Node | None]) -> _Node:
    src, suffix = (a.fn for a in _values(name, args))

    def run(r: Mapping[str, Any]) -> Value:
        tail = _as_text(suffix(r)) or ""
        return _each(lambda s: s + tail)(src(r)) if not _empty(src(r)) else tail

    return _Node(run, False, name.col)


def _left(name: _Tok, args: list[_Node | None]) -> _Node:
    src, count = _values(name, args)
    n = _int_arg(count, "Left: numChars")
    f = _each(lambda s: s[:n])
    return _Node(lambda r: f(src.fn(r)), False, name.col)


def _mid(name: _Tok, args: list[_Node | None]) -> _Node:
    src, start, length = _values(name, args)
    s0 = _int_arg(start, "Mid: start")
    if s0 < 1:
        raise ExpressionError("Mid: start is 1-based and must be at least 1", start.col)
    n = _int_arg(length, "Mid: length")
    f = _each(lambda s: s[s0 - 1 : s0 - 1 + n])
    return _Node(lambda r: f(src.fn(r)), False, name.col)


def _item(name: _Tok, args: list[_Node | None]) -> _Node:
    src, index = _values(name, args)
    i = _int_arg(index, "Item: index")
    if i < 1:
        raise ExpressionError("Item: index is 1-based and must be at least 1", index.col)

    def run(r: Mapping[str, Any]) -> str | None:
        vs = _flat(src.fn(r))
        return vs[i - 1] if i <= len(vs) else None

    return _Node(run, False, name.col)


def _replace(name: _Tok, args: list[_Node | None]) -> _Node:
    source, old, pattern, group, new, new_attr, template = args
    for slot, label in ((group, "regexGroupName"), (new_attr, "replacementAttributeName"),
                        (template, "template")):  # fmt: skip
        if slot is not None:
            raise ExpressionError(f"Replace: {label} is not supported", slot.col)
    if source is None or new is None:
        raise ExpressionError("Replace: source and replacementValue are required", name.col)
    if (old is None) == (pattern is None):
        raise ExpressionError("Replace: give exactly one of oldValue or regexPattern", name.col)
    src, repl = _values(name, [source, new])
    if old is not None:
        (old_node,) = _values(name, [old])
        old_f = old_node.fn

        def run(r: Mapping[str, Any]) -> Value:
            o, n = _as_text(old_f(r)), _as_text(repl.fn(r)) or ""
            return _each(lambda s: s.replace(o, n) if o else s)(src.fn(r))

        return _Node(run, False, name.col)
    assert pattern is not None
    if pattern.const is None:
        raise ExpressionError("Replace: regexPattern must be a string constant", pattern.col)
    try:
        rx = re.compile(pattern.const)
    except re.error as e:
        raise ExpressionError(f"Replace: bad regexPattern: {e}", pattern.col) from None

    def run_rx(r: Mapping[str, Any]) -> Value:
        n = (_as_text(repl.fn(r)) or "").replace("\\", "\\\\")  # literal replacement text
        return _each(lambda s: rx.sub(n, s))(src.fn(r))

    return _Node(run_rx, False, name.col)


def _iif(name: _Tok, args: list[_Node | None]) -> _Node:
    cond = _values(name, args[:1], booleans=True)[0].fn
    yes, no = (a.fn for a in _values(name, args[1:]))
    return _Node(lambda r: yes(r) if cond(r) else no(r), False, name.col)


def _not(name: _Tok, args: list[_Node | None]) -> _Node:
    cond = _values(name, args, booleans=True)[0].fn
    return _Node(lambda r: not cond(r), True, name.col)


_MANY = 99
_FUNCTIONS: dict[str, tuple[int, int, _Builder]] = {
    "Append": (2, 2, _append),
    "IIF": (3, 3, _iif),
    "IsNull": (1, 1, _one(lambda v: _as_value(v) in (None, []), True)),
    "IsNullOrEmpty": (1, 1, _one(_empty, True)),
    "IsPresent": (1, 1, _one(lambda v: not _empty(v), True)),
    "Item": (2, 2, _item),
    "Join": (2, _MANY, _join),
    "Left": (2, 2, _left),
    "Mid": (3, 3, _mid),
    "Not": (1, 1, _not),
    "Replace": (7, 7, _replace),
    "ToLower": (1, 2, _one(_each(str.lower))),
    "ToUpper": (1, 2, _one(_each(str.upper))),
    "Trim": (1, 1, _one(_each(str.strip))),
}
FUNCTION_NAMES: frozenset[str] = frozenset(_FUNCTIONS)


def compile_expression(text: str) -> CompiledExpression:
    """Parse and check ``text`` once; raises ExpressionError with the column of the fault."""
    p = _Parser(text)
    if p.peek().kind == "end":
        raise ExpressionError("empty expression", 1)
    node = p.expression()
    tok = p.peek()
    if tok.kind != "end":
        raise ExpressionError(f"unexpected {_describe(tok)} after the expression", tok.col)
    if node.boolean:
        raise ExpressionError("a condition is not a value; wrap it in IIF", node.col)
    return CompiledExpression(text, frozenset(p.attributes), node.fn)

"""Reading a YAML document node by node, so that every error names ``file:line``.

`yaml.compose` keeps each node's position, which `yaml.safe_load` throws away. `NodeReader`
walks the composed tree with typed accessors (mapping with known keys, string, integer,
Boolean, list) and raises the caller's error type with the node's line and an optional hint.
Mapping profiles (`harness.engine.rules`) and scenarios (`harness.scenario.loader`) both use it.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import ConstructorError, SafeConstructor

STR = "tag:yaml.org,2002:str"
INT = "tag:yaml.org,2002:int"
FLOAT = "tag:yaml.org,2002:float"
BOOL = "tag:yaml.org,2002:bool"
NULL = "tag:yaml.org,2002:null"

Fields = dict[str, tuple[yaml.Node, yaml.Node]]  # key -> (key node, value node)


def names(items: Iterable[str]) -> str:
    """`items` sorted, comma-separated: the "expected one of" part of a message."""
    return ", ".join(sorted(items))


def closest(word: str, choices: Iterable[str]) -> str | None:
    """The choice `word` was most likely meant to be (a typo), or None."""
    lowered = {c.casefold(): c for c in choices}
    match = difflib.get_close_matches(word.casefold(), list(lowered), n=1, cutoff=0.6)
    return lowered[match[0]] if match else None


class NodeReader:
    """Typed access to composed YAML nodes; every failure is `error_type("file:line: ...")`."""

    def __init__(self, path: Path, error_type: Callable[[str], Exception] = ValueError) -> None:
        self.path = path
        self.error_type = error_type

    @staticmethod
    def line(node: yaml.Node | None) -> int:
        return node.start_mark.line + 1 if node is not None else 1

    def error(self, node: yaml.Node | None, message: str, hint: str | None = None) -> Exception:
        suffix = f" (hint: {hint})" if hint else ""
        return self.error_type(f"{self.path}:{self.line(node)}: {message}{suffix}")

    def compose(self, text: str) -> yaml.Node | None:
        """The document's root node (None for an empty document); invalid YAML is an error."""
        try:
            return yaml.compose(text, Loader=yaml.SafeLoader)
        except yaml.MarkedYAMLError as e:
            mark = e.problem_mark
            line = mark.line + 1 if mark is not None else 1
            raise self.error_type(f"{self.path}:{line}: invalid YAML: {e.problem}") from None

    def mapping(self, node: yaml.Node, keys: Iterable[str] | None, what: str) -> Fields:
        """A YAML mapping as {key: (key node, value node)}, refusing unknown/duplicate keys.

        `keys` None accepts any string key (names the caller checks itself)."""
        allowed = frozenset(keys) if keys is not None else None
        if not isinstance(node, yaml.MappingNode):
            raise self.error(node, f"{what} must be a mapping")
        out: Fields = {}
        for k, v in node.value:
            key = k.value if isinstance(k, yaml.ScalarNode) and k.tag == STR else None
            if allowed is not None and key not in allowed:
                near = closest(str(key), allowed) if key is not None else None
                hint = f"did you mean {near!r}?" if near else f"expected one of {names(allowed)}"
                raise self.error(k, f"unknown key {key!r} in {what}", hint)
            if key is None:
                raise self.error(k, f"the keys of {what} must be strings")
            if key in out:
                raise self.error(k, f"duplicate key {key!r} in {what}")
            out[key] = (k, v)
        return out

    def require(self, fields: Fields, node: yaml.Node, key: str, what: str) -> yaml.Node:
        """The value node of a key that must be there."""
        if key not in fields:
            raise self.error(node, f"{what} needs {key!r}")
        return fields[key][1]

    def scalar(self, node: yaml.Node, what: str) -> str:
        if not isinstance(node, yaml.ScalarNode) or node.tag != STR:
            raise self.error(node, f"{what} must be a string")
        value: str = node.value
        return value

    def sequence(self, node: yaml.Node, what: str) -> list[yaml.Node]:
        if not isinstance(node, yaml.SequenceNode):
            raise self.error(node, f"{what} must be a list")
        return list(node.value)

    def is_null(self, node: yaml.Node) -> bool:
        return isinstance(node, yaml.ScalarNode) and node.tag == NULL

    def integer(
        self, node: yaml.Node, what: str, minimum: int | None = None, maximum: int | None = None
    ) -> int:
        if not isinstance(node, yaml.ScalarNode) or node.tag != INT:
            raise self.error(node, f"{what} must be a whole number")
        value = self.data(node)
        if minimum is not None and value < minimum:
            raise self.error(node, f"{what} must be at least {minimum:,} (got {value:,})")
        if maximum is not None and value > maximum:
            raise self.error(node, f"{what} must be at most {maximum:,} (got {value:,})")
        return int(value)

    def number(self, node: yaml.Node, what: str) -> float:
        if not isinstance(node, yaml.ScalarNode) or node.tag not in (INT, FLOAT):
            raise self.error(node, f"{what} must be a number")
        return float(self.data(node))

    def boolean(self, node: yaml.Node, what: str) -> bool:
        if not isinstance(node, yaml.ScalarNode) or node.tag != BOOL:
            raise self.error(node, f"{what} must be true or false")
        return bool(self.data(node))

    def data(self, node: yaml.Node) -> Any:
        """The node as plain Python data (what yaml.safe_load would have given)."""
        try:
            return SafeConstructor().construct_document(node)
        except ConstructorError as e:
            raise self.error(node, f"invalid YAML value: {e.problem}") from None

"""What AD's schema allows an object to be: its classes' attributes, its RDN and its parent.

AD checks every add and modify against the object's classes ([MS-ADTS] 3.1.1.5.2.2 and
3.1.1.5.3.2): each attribute must be in the mustContain or mayContain of one of its classes,
their superclasses or their auxiliary classes (system and non-system, inherited); every
mustContain attribute must be present; the RDN attribute must be the structural class's
rDNAttID; and the parent must be an instance of one of the class's possible superiors, which
a class inherits from its superclasses too.

The rules come from the classes the subschema entry publishes (`subschema.classes`), so what
the fake enforces is what it tells clients. Exchange's configuration classes are defined by the
harness, not by Microsoft's files (the Exchange schema files are not bundled): they may hold any
attribute, and where a child or its parent is one of them, the parent is not checked.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from harness.core.adschema import Schema
from mockservers.directory.ad_classes import AD_CLASSES, AdClass
from mockservers.directory.subschema import classes as published_classes

Values = tuple[bytes, ...]

# Attributes AD writes itself on add when the client leaves them out ([MS-ADTS] 3.1.1.5.2.2:
# objectCategory from defaultObjectCategory, objectSid from the RID pool, sAMAccountName
# generated, groupType defaulted, the RDN attribute from the DN): not required of the client.
STAMPED_ON_ADD: Final = frozenset(
    n.casefold()
    for n in ("objectCategory", "objectSid", "sAMAccountName", "groupType", "instanceType")
)
_CACHE_LIMIT: Final = 256  # distinct objectClass value lists; a directory holds a few dozen


@dataclass(frozen=True, slots=True)
class ClassRules:
    """The rules for one objectClass value list. Names are casefolded."""

    structural: str  # the most specific structural class, as the schema spells it
    classes: frozenset[str]  # every class the object is an instance of, superclasses included
    allowed: frozenset[str]
    must: frozenset[str]
    rdn: str  # rDNAttID of the structural class
    superiors: frozenset[str] | None  # None: not checked (a class Microsoft's files lack)


class UnknownClass(ValueError):
    """An objectClass value the schema does not define."""


class NoStructuralClass(ValueError):
    """objectClass values that name no structural class (only abstract or auxiliary ones)."""


class UnrelatedClasses(NoStructuralClass):
    """objectClass values that name two structural classes, neither a subclass of the other."""


class Structure:
    """The class rules of a schema, by objectClass value list (cached, bounded)."""

    def __init__(self, schema: Schema) -> None:
        self._classes = {c.name.casefold(): c for c in published_classes(schema)}
        self._from_ad = {c.name.casefold() for c in AD_CLASSES}
        self._cache: dict[Values, ClassRules] = {}

    def rules(self, object_classes: Values) -> ClassRules:
        """The rules for an object with these objectClass values; raises UnknownClass,
        NoStructuralClass or UnrelatedClasses."""
        hit = self._cache.get(object_classes)
        if hit is None:
            hit = self._build([c.decode("utf-8", "replace") for c in object_classes])
            if len(self._cache) < _CACHE_LIMIT:
                self._cache[object_classes] = hit
        return hit

    def class_closure(self, object_classes: Values) -> frozenset[str]:
        """Every class an object with these values is an instance of (unknown names kept)."""
        out: set[str] = set()
        for c in object_classes:
            out |= {s.name.casefold() for s in self._chain(c.decode("utf-8", "replace"))}
            out.add(c.decode("utf-8", "replace").casefold())
        return frozenset(out)

    def _chain(self, name: str) -> list[AdClass]:
        # The class and its superclasses up to top; an unknown name yields nothing.
        out: list[AdClass] = []
        c = self._classes.get(name.casefold())
        while c is not None and c not in out:
            out.append(c)
            c = self._classes.get(c.sup.casefold())
        return out

    def _build(self, names: Iterable[str]) -> ClassRules:
        chains: list[list[AdClass]] = []
        for n in names:
            chain = self._chain(n)
            if not chain:
                raise UnknownClass(n)
            chains.append(chain)
        instance = {c.name.casefold(): c for chain in chains for c in chain}
        structural = _most_specific(chains)
        # Auxiliary classes are inherited, and themselves have superclasses and auxiliaries.
        todo = [a for c in list(instance.values()) for a in c.aux]
        while todo:
            for c in self._chain(todo.pop()):
                if c.name.casefold() not in instance:
                    instance[c.name.casefold()] = c
                    todo.extend(c.aux)
        must = frozenset(a.casefold() for c in instance.values() for a in c.must)
        may = frozenset(a.casefold() for c in instance.values() for a in c.may)
        chain = self._chain(structural.name)
        superiors: frozenset[str] | None = None
        if all(c.name.casefold() in self._from_ad for c in chain):
            superiors = frozenset(s.casefold() for c in chain for s in c.superiors)
        return ClassRules(
            structural=structural.name,
            classes=frozenset(instance),
            allowed=must | may,
            must=must,
            rdn=structural.rdn,
            superiors=superiors,
        )

    def may_change(self, old: str, new: str) -> bool:
        """Whether a modify may turn structural class `old` into `new`: only user and
        inetOrgPerson into each other ([MS-ADTS] 3.1.1.5.3.5)."""
        pair = {old.casefold(), new.casefold()}
        return len(pair) == 1 or pair == {"user", "inetorgperson"}

    def superior_checked(self, parent_classes: frozenset[str]) -> bool:
        """Whether a parent with these classes is one Microsoft's files describe."""
        return bool(parent_classes) and parent_classes <= self._from_ad | {"top"}


def _most_specific(chains: list[list[AdClass]]) -> AdClass:
    # The structural class whose chain holds every other structural class listed (AD accepts
    # the class list in any order and from any depth: "user" alone names user).
    structural = [chain for chain in chains if chain[0].kind == "STRUCTURAL"]
    if not structural:
        raise NoStructuralClass("no structural class")
    best = max(structural, key=len)
    names = {c.name.casefold() for c in best}
    for chain in structural:
        if chain[0].name.casefold() not in names:
            raise UnrelatedClasses(f"{chain[0].name} and {best[0].name} are unrelated")
    return best[0]

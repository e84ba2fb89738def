"""How the writeback finds a cloud object's AD user: the profile's `match` rule.

Microsoft does not document which anchor the EXO -> AD writeback job matches on
(docs/microsoft-facts.md §1.3, §8.3), so the rule is a profile setting. Each rule is one
equality on an attribute AD indexes, so a delta page is matched with one OR search and a full
round with one paged read, at any tenant size:

- ``mS-DS-ConsistencyGuid`` (the default, what the engine has always done): the AD user whose
  mS-DS-ConsistencyGuid holds the bytes of the cloud object's onPremisesImmutableId (base64),
  the source anchor Entra Connect and Cloud Sync use by default.
- ``objectGUID``: the same through objectGUID, for directories synchronised with objectGUID as
  the source anchor (Entra Connect's default before mS-DS-ConsistencyGuid).
- ``msDS-ExternalDirectoryObjectId``: the AD user whose msDS-ExternalDirectoryObjectId is
  ``User_<cloud object id>``, as the sibling Entra -> AD provisioning engine matches (§8.3);
  Exchange hybrid writeback stamps it from cloudAnchor (§2.1, §2.2).

A cloud object's *key* is what the rule compares: its onPremisesImmutableId for the GUID rules,
its object id (case-folded: AD compares the string without case) for the last one. An AD user's
key is read from the rule's attribute; a user without it (or, for the last rule, with a value
that does not start ``User_``) cannot be matched.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from enum import StrEnum
from typing import Any

EXTERNAL_ID_PREFIX = "User_"  # msDS-ExternalDirectoryObjectId of a user: User_<object id>


class MatchRule(StrEnum):
    """The AD attribute a cloud object is matched on; the value is the attribute's name."""

    CONSISTENCY_GUID = "mS-DS-ConsistencyGuid"
    OBJECT_GUID = "objectGUID"
    EXTERNAL_ID = "msDS-ExternalDirectoryObjectId"

    @classmethod
    def parse(cls, text: str) -> MatchRule | None:
        """The rule an attribute name names (without case, as AD reads names), or None."""
        folded = text.casefold()
        return next((r for r in cls if r.value.casefold() == folded), None)

    @property
    def attribute(self) -> str:
        return self.value

    @property
    def through_immutable_id(self) -> bool:
        """Matched through onPremisesImmutableId (base64 of a GUID), not the object id."""
        return self is not MatchRule.EXTERNAL_ID

    def cloud_key(self, record: Mapping[str, Any]) -> str | None:
        """The key of one EXO-named record (`to_exo_record`), or None when it has none."""
        if self is MatchRule.EXTERNAL_ID:
            uid = record.get("id")
            return uid.casefold() if isinstance(uid, str) and uid else None
        anchor = record.get("onPremisesImmutableId")
        return anchor if isinstance(anchor, str) and anchor else None

    def ad_key(self, raw: bytes) -> str | None:
        """The key an AD value of the rule's attribute gives, or None (it matches nothing)."""
        if self.through_immutable_id:
            return base64.b64encode(raw).decode("ascii")
        text = raw.decode("utf-8", "replace")
        if text[: len(EXTERNAL_ID_PREFIX)].casefold() != EXTERNAL_ID_PREFIX.casefold():
            return None
        return text[len(EXTERNAL_ID_PREFIX) :].casefold() or None

    def assertion(self, key: str) -> bytes | None:
        """The AD value an equality search for `key` asks for; None when no AD value can be
        equal to it (an immutable id that is not base64)."""
        if self.through_immutable_id:
            try:
                return base64.b64decode(key, validate=True)
            except binascii.Error:
                return None
        return f"{EXTERNAL_ID_PREFIX}{key}".encode()

    def describe(self, key: str) -> str:
        """`key` as the log names it: ``mS-DS-ConsistencyGuid <base64>``,
        ``msDS-ExternalDirectoryObjectId User_<id>``."""
        shown = key if self.through_immutable_id else f"{EXTERNAL_ID_PREFIX}{key}"
        return f"{self.attribute} {shown}"


DEFAULT_MATCH = MatchRule.CONSISTENCY_GUID
